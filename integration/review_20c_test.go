package integration_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/smithy-go/logging"
	smithymiddleware "github.com/aws/smithy-go/middleware"

	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/middleware"
)

// bodyTypeRecorder is an aws.HTTPClient that records, per request, the
// type of the request body the transport is handed and whether it has a
// WriteTo method (what brings back smithy-go's request-body race).
type bodyTypeRecorder struct {
	next aws.HTTPClient
	mu   sync.Mutex
	seen []string // body types with WriteTo
	reqs int
}

func (r *bodyTypeRecorder) Do(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs++
	if _, ok := req.Body.(io.WriterTo); ok {
		r.seen = append(r.seen, typeName(req.Body))
	}
	r.mu.Unlock()
	return r.next.Do(req)
}

// TestDefect_LogRequestWithBodyUndoesBodyGuard: the request-body guard
// now runs in streamstatus.Deserialize, which sits just inside
// OperationEventStreamDeserializer; the SDK's RequestResponseLogger is
// *inside* it (added with middleware.After after the operation's
// deserializers). With aws.Config.ClientLogMode = aws.LogRequestWithBody
// the logger dumps the guarded body and sets the dump
// (io.NopCloser(*bytes.Buffer), which has WriteTo) as the request stream,
// so the transport gets smithy-go's safeWriteToReadCloser again: the body
// guard that "removes smithy-go's request-body race" (middleware/doc.go)
// is undone on every install path, for a user who only turned on request
// logging.
func TestDefect_LogRequestWithBodyUndoesBodyGuard(t *testing.T) {
	for _, how := range installs {
		for _, op := range ops {
			t.Run(how.String()+"/"+op.name, func(t *testing.T) {
				srv := newServer(t)
				healthy, want := op.healthy(3, "log")
				srv.SetDefault(fake.Response{Steps: healthy})
				cfg := testConfig(srv, 1)
				rec := &bodyTypeRecorder{next: awshttp.NewBuildableClient()}
				cfg.HTTPClient = rec
				cfg.ClientLogMode = aws.LogRequestWithBody
				cfg.Logger = logging.Nop{}
				var c *bedrockruntime.Client
				switch how {
				case clientOption:
					c = bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock())
				case apiOption:
					c = bedrockruntime.NewFromConfig(cfg, bedrockruntime.WithAPIOptions(middleware.APIOption()))
				case configWide:
					middleware.AppendMiddlewares(&cfg.APIOptions)
					c = bedrockruntime.NewFromConfig(cfg)
				}
				res := op.run(context.Background(), c)
				if res.callErr != nil || res.streamErr != nil || !equalStrings(res.events, want) {
					t.Fatalf("call %v stream %v: events %q, want %q", res.callErr, res.streamErr, res.events, want)
				}
				rec.mu.Lock()
				defer rec.mu.Unlock()
				if rec.reqs == 0 {
					t.Fatal("no request reached the transport")
				}
				if len(rec.seen) != 0 {
					t.Fatalf("with ClientLogMode LogRequestWithBody, %d of %d requests reached the transport with a body that has WriteTo (%v): the request-body guard is undone",
						len(rec.seen), rec.reqs, rec.seen)
				}
			})
		}
	}
}

// TestDefect_BenchmarksDocSaysGuardIsInFinalize: BENCHMARKS.md ("Removed
// on the way") still tells readers "The guard now runs last in the
// finalize step, after signing", but 488f438 removed that finalize
// middleware (and the exported BodyGuardID) and moved the guard into
// streamstatus.Deserialize. No streamstatus middleware follows Signing in
// the finalize step any more; nothing (README, doc.go, BENCHMARKS.md) says
// BodyGuardID is gone, which breaks any stack code placed against it.
func TestDefect_BenchmarksDocSaysGuardIsInFinalize(t *testing.T) {
	doc, err := os.ReadFile("../BENCHMARKS.md")
	if err != nil {
		t.Fatal(err)
	}
	const claim = "The guard now runs last in the finalize step"
	if !strings.Contains(string(doc), claim) {
		return // the claim is gone: nothing to check
	}
	var finalize []string
	errStop := errors.New("stop before sending")
	record := func(s *smithymiddleware.Stack) error {
		finalize = s.Finalize.List()
		return errStop
	}
	c := bedrockruntime.New(bedrockruntime.Options{Region: "us-east-1", Credentials: aws.AnonymousCredentials{}},
		bedrockruntime.WithAPIOptions(middleware.APIOption(), record))
	_, err = c.ConverseStream(context.Background(), &bedrockruntime.ConverseStreamInput{ModelId: aws.String("m")})
	if !errors.Is(err, errStop) {
		t.Fatalf("building the stack: %v", err)
	}
	signing := slices.Index(finalize, "Signing")
	if signing < 0 {
		t.Fatalf("no Signing in the finalize step %v", finalize)
	}
	var ours []string
	for _, id := range finalize[signing+1:] {
		if strings.HasPrefix(id, "streamstatus.") {
			ours = append(ours, id)
		}
	}
	if len(ours) == 0 {
		t.Fatalf("BENCHMARKS.md says %q, but the finalize step after Signing is %v: no streamstatus middleware there (the guard is in %s now)",
			claim, finalize[signing+1:], middleware.DeserializeID)
	}
}
