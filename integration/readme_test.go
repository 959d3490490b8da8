package integration_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// readmePackages are the packages README snippets may use, by the name
// they use them by.
var readmePackages = map[string]string{
	"aws":              "github.com/aws/aws-sdk-go-v2/aws",
	"retry":            "github.com/aws/aws-sdk-go-v2/aws/retry",
	"config":           "github.com/aws/aws-sdk-go-v2/config",
	"bedrockruntime":   "github.com/aws/aws-sdk-go-v2/service/bedrockruntime",
	"types":            "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types",
	"sagemakerruntime": "github.com/aws/aws-sdk-go-v2/service/sagemakerruntime",
	"backoff":          "github.com/streamstatus/streamstatus/backoff",
	"classify":         "github.com/streamstatus/streamstatus/classify",
	"middleware":       "github.com/streamstatus/streamstatus/middleware",
	"smithyext":        "github.com/streamstatus/streamstatus/smithyext",
	"redis":            "github.com/redis/go-redis/v9",
	"context":          "context",
	"errors":           "errors",
	"fmt":              "fmt",
	"log":              "log",
	"time":             "time",
}

// readmeGivens are the variables a README snippet may use without
// declaring them, as the surrounding text introduces them.
var readmeGivens = []struct{ name, typ string }{
	{"client", "*bedrockruntime.Client"},
	{"input", "*bedrockruntime.ConverseStreamInput"},
	{"budget", "*backoff.Budget"},
}

var goFence = regexp.MustCompile("(?s)\n```go\n(.*?)\n```")

// TestReadmeSnippetsCompile extracts every ```go block of README.md and
// builds it, so the README cannot drift from the API. Each block becomes
// the body of a function with cfg (aws.Config) and ctx in scope, and
// client, input and budget when the block uses them undeclared; an import
// line in a block is allowed (and checked to name a known package);
// variables a block declares but does not use are fine.
func TestReadmeSnippetsCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the README's snippets with the go command")
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := goFence.FindAllSubmatch(readme, -1)
	if len(blocks) < 4 {
		t.Fatalf("found %d go blocks in README.md; the pattern no longer matches", len(blocks))
	}
	var src bytes.Buffer
	used := map[string]bool{"aws": true, "context": true}
	for i, b := range blocks {
		body, params, err := snippetBody(string(b[1]), used)
		if err != nil {
			t.Fatalf("README go block %d: %v\n%s", i+1, err, b[1])
		}
		fmt.Fprintf(&src, "\n// README go block %d\nfunc snippet%d(ctx context.Context, cfg aws.Config%s) {\n%s\n}\n", i+1, i+1, params, body)
	}
	var file bytes.Buffer
	file.WriteString("package readmesnippets\n\nimport (\n")
	names := make([]string, 0, len(used))
	for name := range used {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		fmt.Fprintf(&file, "\t%q\n", readmePackages[name])
	}
	file.WriteString(")\n")
	file.Write(src.Bytes())

	// Build it in the integration module (this directory) as if it were a
	// package of it, with an overlay: nothing is written into the source
	// tree. Running from here, not the repository root, keeps the build in
	// this module with or without the go.work (integration/compat.sh runs
	// with GOWORK=off).
	here, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gen := filepath.Join(dir, "snippets.go")
	if err := os.WriteFile(gen, file.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	overlay, _ := json.Marshal(map[string]any{"Replace": map[string]string{
		filepath.Join(here, "readmesnippets", "snippets.go"): gen}})
	overlayFile := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(overlayFile, overlay, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-overlay", overlayFile, "-o", os.DevNull, "./readmesnippets")
	cmd.Dir = here
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("README.md's go snippets do not compile: %v\n%s\ngenerated file:\n%s", err, out, numbered(file.String()))
	}
}

// snippetBody turns one README block into a function body: import lines
// are taken out (and their package names marked used), every package name
// the block refers to is marked used, and every variable it declares at
// its top level is used once, so the compiler checks what matters.
func snippetBody(block string, used map[string]bool) (body, params string, err error) {
	var lines []string
	for _, line := range strings.Split(block, "\n") {
		if path, ok := strings.CutPrefix(strings.TrimSpace(line), "import "); ok {
			path = strings.Trim(path, `"`)
			name := path[strings.LastIndex(path, "/")+1:]
			if readmePackages[name] != path {
				return "", "", fmt.Errorf("import %q is not one of the packages README snippets may use", path)
			}
			used[name] = true
			continue
		}
		lines = append(lines, line)
	}
	body = strings.Join(lines, "\n")
	f, err := parser.ParseFile(token.NewFileSet(), "", "package p\nfunc _() {\n"+body+"\n}", 0)
	if err != nil {
		return "", "", err
	}
	fn := f.Decls[0].(*ast.FuncDecl)
	var declared []string
	for _, st := range fn.Body.List {
		switch st := st.(type) {
		case *ast.AssignStmt:
			if st.Tok == token.DEFINE {
				for _, e := range st.Lhs {
					declared = append(declared, e.(*ast.Ident).Name)
				}
			}
		case *ast.DeclStmt:
			if g, ok := st.Decl.(*ast.GenDecl); ok && g.Tok == token.VAR {
				for _, s := range g.Specs {
					for _, n := range s.(*ast.ValueSpec).Names {
						declared = append(declared, n.Name)
					}
				}
			}
		}
	}
	refers := map[string]bool{}
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		if id, ok := n.(*ast.Ident); ok {
			refers[id.Name] = true
		}
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok && readmePackages[id.Name] != "" && !slices.Contains(declared, id.Name) {
				used[id.Name] = true
			}
		}
		return true
	})
	for _, name := range declared {
		if name != "_" {
			body += "\n_ = " + name
		}
	}
	for _, g := range readmeGivens {
		if refers[g.name] && !slices.Contains(declared, g.name) {
			params += ", " + g.name + " " + g.typ
			used[g.typ[1:strings.Index(g.typ, ".")]] = true
		}
	}
	return body, params, nil
}

func numbered(s string) string {
	lines := strings.Split(s, "\n")
	for i := range lines {
		lines[i] = fmt.Sprintf("%3d  %s", i+1, lines[i])
	}
	return strings.Join(lines, "\n")
}
