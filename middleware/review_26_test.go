// Tests from the review of the shared default classifier (ae80d30): it
// classifies as a freshly built one, nothing a caller does with what it
// returns changes it, and many installations use it concurrently.

package middleware

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"
	"testing"

	"github.com/aws/smithy-go/eventstream"

	"github.com/streamstatus/streamstatus/classify"
	"github.com/streamstatus/streamstatus/internal/framing"
	"github.com/streamstatus/streamstatus/internal/streamerr"
	"github.com/streamstatus/streamstatus/smithyext"
)

// defaultClassifierFingerprint renders every row of the shared default
// classifier (sorted by fmt), with the addresses of its functions.
func defaultClassifierFingerprint() string { return fmt.Sprintf("%+v", *defaultClassifier()) }

func r26frame(t testing.TB, hdr map[string]string, payload string) *framing.Frame {
	var m eventstream.Message
	for k, v := range hdr {
		m.Headers.Set(k, eventstream.StringValue(v))
	}
	m.Payload = []byte(payload)
	var buf bytes.Buffer
	if err := eventstream.NewEncoder().Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	f, err := framing.NewScanner(bytes.NewReader(buf.Bytes())).Next()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

var r26payloads = []string{``, `not json`, `{"message":"m"}`, `{"Message":"M","ErrorCode":"StreamBroken"}`,
	`{"Message":"M","ErrorCode":"ModelInvocationTimeExceeded"}`, `{"message":"m","originalStatusCode":429}`,
	`{"message":"m","originalStatusCode":500}`}

func r26services() []string {
	s := []string{"", "Unknown Svc"}
	for _, t := range classify.DefaultTables() {
		s = append(s, t.ServiceID)
	}
	return s
}

// every frame kind over every row of every table, plus unknowns
func r26frames(t testing.TB) (svc []string, frames []*framing.Frame) {
	types := []string{"nosuchException", "", "UPPERCASEthrottlingexception"}
	for _, tb := range classify.DefaultTables() {
		for _, r := range tb.Rules {
			types = append(types, r.Type)
		}
	}
	for _, ty := range types {
		for _, p := range r26payloads {
			frames = append(frames, r26frame(t, map[string]string{":message-type": "exception", ":exception-type": ty}, p))
		}
		frames = append(frames, r26frame(t, map[string]string{":message-type": "error", ":error-code": ty, ":error-message": "x"}, ""))
		env := `{"type":"error","error":{"type":"` + ty + `","message":"e"}}`
		frames = append(frames, r26frame(t, map[string]string{":message-type": "event", ":event-type": "chunk"},
			`{"bytes":"`+base64.StdEncoding.EncodeToString([]byte(env))+`"}`))
	}
	return r26services(), frames
}

func r26classify(c *streamerr.Classifier, svc string, f *framing.Frame) *smithyext.StatusError {
	s := streamerr.Stream{Service: svc, Operation: "InvokeModelWithResponseStream", RequestID: "r", Events: 1}
	if d := c.EnvelopeDetector("Bedrock Runtime", "InvokeModelWithResponseStream"); d != nil {
		if se := d(s, f); se != nil {
			return se
		}
	}
	return c.Frame(s, f)
}

// Shared default and freshly built classifier: same rows, same outcomes,
// same causes, for every table, frame kind and payload.
func TestReview26_SharedEqualsFresh(t *testing.T) {
	shared := resolve(nil).classifier
	fresh := streamerr.New(classify.New(classify.DefaultTables()...))
	for _, tb := range classify.DefaultTables() {
		for _, svc := range r26services() {
			for _, r := range tb.Rules {
				a, aok := shared.Rule(svc, r.Type)
				b, bok := fresh.Rule(svc, r.Type)
				if aok != bok || a.Type != b.Type || a.Outcome != b.Outcome || (a.Decode == nil) != (b.Decode == nil) || (a.Refine == nil) != (b.Refine == nil) {
					t.Errorf("%s/%s: shared %+v %v, fresh %+v %v", svc, r.Type, a, aok, b, bok)
				}
			}
		}
	}
	svcs, frames := r26frames(t)
	n := 0
	for _, svc := range svcs {
		for _, f := range frames {
			a, b := r26classify(shared, svc, f), r26classify(fresh, svc, f)
			if !reflect.DeepEqual(a, b) {
				t.Errorf("%s %s: shared %+v, fresh %+v", svc, f.ExceptionType(), a, b)
			}
			n++
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := streamerr.Stream{Service: "x"}
	for _, p := range []struct{ a, b any }{
		{shared.ReadError(context.Background(), s, io.ErrUnexpectedEOF), fresh.ReadError(context.Background(), s, io.ErrUnexpectedEOF)},
		{shared.ReadError(ctx, s, io.ErrUnexpectedEOF), fresh.ReadError(ctx, s, io.ErrUnexpectedEOF)},
		{shared.Stalled(s, errors.New("idle")), fresh.Stalled(s, errors.New("idle"))},
	} {
		if fmt.Sprintf("%+v", p.a) != fmt.Sprintf("%+v", p.b) {
			t.Errorf("shared %+v, fresh %+v", p.a, p.b)
		}
	}
	t.Logf("%d frame classifications compared", n)
}

// Whatever a caller does with a returned Rule, Outcome or StatusError (and
// through Refine's *Outcome), the shared rows are unchanged.
func TestReview26_NoWriteBack(t *testing.T) {
	before := defaultClassifierFingerprint()
	c := resolve(nil).classifier
	r, _ := c.Rule("Bedrock Runtime", "modelStreamErrorException")
	r.Outcome.Status, r.Throttle, r.Type, r.Decode = 1, true, "x", nil
	r2, _ := c.Rule("Bedrock Runtime", "modelStreamErrorException")
	o := r2.Outcome
	r2.Refine(r2.Decode([]byte(`{"originalStatusCode":429}`)), &o)
	sm, _ := c.Rule("SageMaker Runtime", "ModelStreamError")
	so := sm.Outcome
	sm.Refine(sm.Decode([]byte(`{"ErrorCode":"StreamBroken"}`)), &so)
	for _, svc := range r26services() {
		_, frames := r26frames(t)
		for _, f := range frames {
			if se := r26classify(c, svc, f); se != nil {
				se.Status, se.Retryable, se.Throttle, se.Code = 7, true, true, "mut"
				if e, ok := se.Err.(interface{ Error() string }); ok {
					_ = e.Error()
				}
			}
		}
	}
	if after := defaultClassifierFingerprint(); after != before {
		t.Fatalf("shared default changed:\nbefore %s\nafter  %s", before, after)
	}
	if got, _ := c.Rule("Bedrock Runtime", "modelStreamErrorException"); got.Throttle || got.Status != 424 {
		t.Fatalf("row changed: %+v", got)
	}
}

// Many clients (installations, merged per-call options, WithClassifier
// clients) classifying concurrently; run with -race.
func TestReview26_ConcurrentClients(t *testing.T) {
	svcs, frames := r26frames(t)
	own := classify.New(classify.DefaultTables()...)
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				var r *resolved
				switch (g + i) % 4 {
				case 0:
					r = resolve(nil)
				case 1:
					r = resolve([]Option{WithReadAheadLimit(1 << 10)}).over(resolve(nil))
				case 2:
					r = resolve([]Option{WithClassifier(own)}).over(resolve([]Option{WithDisableErrorEnvelopes()}))
				default:
					r = resolve(nil).over(resolve([]Option{WithClassifier(own)}))
				}
				for _, svc := range svcs {
					f := frames[(g*31+i*7)%len(frames)]
					se := r26classify(r.classifier, svc, f)
					if se != nil {
						se.Status = g
					}
				}
			}
		}()
	}
	wg.Wait()
}
