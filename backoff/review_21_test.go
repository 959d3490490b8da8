package backoff

import (
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

// Issue 21, point 4: every main entry point has a runnable Example.
// ExampleNewBudget_custom, the one example of a custom budget under
// middleware.WithBudget, has its "// Output:" line right under another
// comment: go test sees no output, compiles it and never runs it, so the
// result it documents ("Hi! <nil> 3 186") is checked by nothing.
func TestDefect_BackoffExampleNeverRuns(t *testing.T) {
	if _, unseen := examples(t); len(unseen) > 0 {
		t.Errorf("examples with an Output comment that go test never runs: %v", unseen)
	}
}

// Issue 21, point 4. The retryer constructors point 3 lists
// (Budget.NewStandard, Budget.NewAdaptive) have no example go doc attaches
// to them.
func TestDefect_BackoffEntryPointsWithoutExample(t *testing.T) {
	runs, _ := examples(t)
	for _, name := range []string{"NewBudget", "RetryStream", "NewTokenBucket", "Budget_NewStandard", "Budget_NewAdaptive"} {
		if !documented(runs, name) {
			t.Errorf("backoff.%s has no runnable Example%s", strings.Replace(name, "_", ".", 1), name)
		}
	}
}

// examples parses the package's test files and returns, by Example function
// name ("ExampleNewBudget_custom"), whether go test runs it (whether go/doc
// finds its output comment, as go test does), and the Example functions
// whose body has an "Output:" line comment that go test does not see: a
// comment just above it merges into one group, and go test then compiles
// the example without running it.
func examples(t *testing.T) (runs map[string]bool, unseen []string) {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi os.FileInfo) bool { return strings.HasSuffix(fi.Name(), "_test.go") }, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, p := range pkgs {
		for _, f := range p.Files {
			files = append(files, f)
		}
	}
	runs = map[string]bool{}
	for _, ex := range doc.Examples(files...) {
		runs["Example"+ex.Name] = ex.Output != "" || ex.EmptyOutput
	}
	for _, f := range files {
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || !strings.HasPrefix(fn.Name.Name, "Example") || fn.Recv != nil {
				continue
			}
			for _, cg := range f.Comments {
				if cg.Pos() < fn.Body.Lbrace || cg.End() > fn.Body.Rbrace {
					continue
				}
				for _, c := range cg.List {
					if s := strings.TrimSpace(strings.TrimPrefix(c.Text, "//")); strings.HasPrefix(s, "Output:") && !runs[fn.Name.Name] {
						unseen = append(unseen, fn.Name.Name)
					}
				}
			}
		}
	}
	return runs, unseen
}

// documented reports whether go doc attaches a run example to name
// ("WithBudget", "Budget_NewStandard"): Example<name> or
// Example<name>_<suffix>.
func documented(runs map[string]bool, name string) bool {
	for ex, ok := range runs {
		if ok && (ex == "Example"+name || strings.HasPrefix(ex, "Example"+name+"_") && len(ex) > len("Example"+name+"_") && ex[len("Example"+name+"_")] >= 'a' && ex[len("Example"+name+"_")] <= 'z') {
			return true
		}
	}
	return false
}
