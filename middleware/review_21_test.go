package middleware

import (
	"context"
	"testing"

	"github.com/streamstatus/streamstatus/classify"
	"github.com/streamstatus/streamstatus/internal/examplecheck"
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
	runs, unseen := examplecheck.Examples(t, ".")
	if len(unseen) > 0 {
		t.Errorf("examples with an Output comment that go test never runs: %v", unseen)
	}
	for _, name := range []string{"WithBedrock", "APIOption", "AppendMiddlewares", "WithBudget", "WithClassifier",
		"WithFirstEventTimeout", "WithIdleTimeout", "WithReadAheadLimit", "WithDisableErrorEnvelopes"} {
		if !examplecheck.Documented(runs, name) {
			t.Errorf("middleware.%s has no runnable Example%s", name, name)
		}
	}
}
