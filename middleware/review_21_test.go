package middleware

import (
	"context"
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"

	"github.com/streamstatus/streamstatus/classify"
	"github.com/streamstatus/streamstatus/internal/streamerr"
	"github.com/streamstatus/streamstatus/smithyext"
)

// Issue 21, point 2 (one spelling per concept): where a stream failure came
// from is smithyext.StatusError.Kind ("exception", "error message",
// "transport", "corrupt frame", "error envelope"), and "source" is
// classify.Result.Source ("stream", "http", "transport", "canceled"). The
// metrics/span attribute streamstatus.source (and the log line's "source
// ...") carries a third spelling of the Kind: "error_message", "envelope",
// "corrupt_frame". A user who reads se.Kind or classify.Classify(err).Source
// cannot match it against the recorded attribute.
func TestDefect_SourceAttributeSpelledTwoWays(t *testing.T) {
	c := streamerr.New(classify.New(classify.DefaultTables()...))
	for _, k := range []smithyext.Kind{smithyext.KindException, smithyext.KindErrorMessage, smithyext.KindTransport, smithyext.KindCorrupt, smithyext.KindEnvelope} {
		span := &endCountingSpan{props: map[any]any{}}
		o := &streamObserver{ctx: context.Background(), span: span, classifier: c, service: "Bedrock Runtime", method: "InvokeModelWithResponseStream"}
		se := &smithyext.StatusError{Kind: k, Code: "InternalServerException", Status: 500, Retryable: true}
		o.failure(se, false)
		if got, ok := span.props["streamstatus.source"]; ok {
			t.Errorf("a %v failure still records streamstatus.source=%q, a second name for its Kind", k, got)
		}
		if got, kind := span.props["streamstatus.kind"], se.Kind.String(); got != kind {
			t.Errorf("a %v failure is recorded as streamstatus.kind=%q, not as its Kind spells itself (%q)", k, got, kind)
		}
	}
}

// Issue 21, point 4: every main entry point has a runnable Example. WithBudget
// is one of the entry points point 3 lists, and WithReadAheadLimit and
// WithDisableErrorEnvelopes are the options this change adds; go doc shows
// no example for any of them (ExampleWithClassifier uses the two new options
// but is attached to WithClassifier).
func TestDefect_MiddlewareEntryPointsWithoutExample(t *testing.T) {
	runs, unseen := examples(t)
	if len(unseen) > 0 {
		t.Errorf("examples with an Output comment that go test never runs: %v", unseen)
	}
	for _, name := range []string{"WithBedrock", "APIOption", "AppendMiddlewares", "WithBudget", "WithClassifier",
		"WithFirstEventTimeout", "WithIdleTimeout", "WithReadAheadLimit", "WithDisableErrorEnvelopes"} {
		if !documented(runs, name) {
			t.Errorf("middleware.%s has no runnable Example%s", name, name)
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
