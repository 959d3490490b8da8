// Package examplecheck reads a package's Example functions the way go test
// and go doc do, so tests can pin that every public entry point has a
// runnable example (issue 21) and that no example's "// Output:" comment
// is silently dropped.
package examplecheck

import (
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

// Examples parses the _test.go files in dir and returns, by Example
// function name ("ExampleNewBudget_custom"), whether go test runs it (go/doc
// finds its output comment, as go test does), and the Example functions
// whose body has an "Output:" line comment that go test does not see: a
// comment just above it merges into one group, and go test then compiles
// the example without running it.
func Examples(t testing.TB, dir string) (runs map[string]bool, unseen []string) {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool { return strings.HasSuffix(fi.Name(), "_test.go") }, parser.ParseComments)
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

// Documented reports whether go doc attaches a run example to name
// ("WithBudget", "Budget_NewStandard"): Example<name> or
// Example<name>_<suffix> with a lower-case suffix.
func Documented(runs map[string]bool, name string) bool {
	prefix := "Example" + name + "_"
	for ex, ok := range runs {
		if !ok {
			continue
		}
		if ex == "Example"+name {
			return true
		}
		if rest, found := strings.CutPrefix(ex, prefix); found && rest != "" && rest[0] >= 'a' && rest[0] <= 'z' {
			return true
		}
	}
	return false
}
