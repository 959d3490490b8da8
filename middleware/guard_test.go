package middleware

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	smithymiddleware "github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// TestRequestBodyGuard: the guarded request's stream has no WriteTo (what
// removes smithy-go's request-body race), sends the same bytes, rewinds for
// a retry, and keeps its length; for the SDK's own stream type (a
// *bytes.Reader) the guard allocates nothing beyond smithy-go's SetStream.
func TestRequestBodyGuard(t *testing.T) {
	const body = `{"prompt":"hello"}`
	for _, tc := range []struct {
		name   string
		stream func() io.Reader
	}{
		{"bytes.Reader", func() io.Reader { return bytes.NewReader([]byte(body)) }},
		{"strings.Reader", func() io.Reader { return strings.NewReader(body) }},
		{"plain reader", func() io.Reader { return io.MultiReader(strings.NewReader(body)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := smithyhttp.NewStackRequest().(*smithyhttp.Request).SetStream(tc.stream())
			if err != nil {
				t.Fatal(err)
			}
			guarded, err := guardRequestBody(req)
			if err != nil {
				t.Fatal(err)
			}
			s := guarded.GetStream()
			if _, ok := s.(io.WriterTo); ok {
				t.Fatalf("guarded stream %T still has WriteTo", s)
			}
			if n, ok, err := guarded.StreamLength(); err != nil || !ok || n != int64(len(body)) {
				if _, seekable := tc.stream().(io.Seeker); seekable {
					t.Fatalf("stream length %d, %v, %v; want %d", n, ok, err, len(body))
				}
			}
			got, _ := io.ReadAll(s)
			if string(got) != body {
				t.Fatalf("sent %q, want %q", got, body)
			}
			if guarded.IsStreamSeekable() {
				if err := guarded.RewindStream(); err != nil {
					t.Fatal(err)
				}
				if again, _ := io.ReadAll(guarded.GetStream()); string(again) != body {
					t.Fatalf("after rewind sent %q", again)
				}
			}
		})
	}
	t.Run("allocations", func(t *testing.T) {
		if raceEnabled {
			t.Skip("allocation counts are exact only without -race")
		}
		req, _ := smithyhttp.NewStackRequest().(*smithyhttp.Request).SetStream(bytes.NewReader([]byte(body)))
		sdk := testing.AllocsPerRun(100, func() { _, _ = req.SetStream(req.GetStream()) })
		guard := testing.AllocsPerRun(100, func() { _, _ = guardRequestBody(req) })
		if guard > sdk {
			t.Fatalf("the guard allocates %v per request, smithy-go's SetStream alone %v: want no more", guard, sdk)
		}
	})
}

// TestDeserializeGuardsTheRequestBody: what reaches the transport (the
// handler inside the deserialize middleware) is the guarded request.
func TestDeserializeGuardsTheRequestBody(t *testing.T) {
	req, _ := smithyhttp.NewStackRequest().(*smithyhttp.Request).SetStream(bytes.NewReader([]byte("body")))
	var sent io.Reader
	next := smithymiddleware.DeserializeHandlerFunc(func(ctx context.Context, in smithymiddleware.DeserializeInput) (smithymiddleware.DeserializeOutput, smithymiddleware.Metadata, error) {
		sent = in.Request.(*smithyhttp.Request).GetStream()
		return smithymiddleware.DeserializeOutput{}, smithymiddleware.Metadata{}, nil
	})
	m := &deserializeMiddleware{opts: resolve(nil)}
	if _, _, err := m.HandleDeserialize(context.Background(), smithymiddleware.DeserializeInput{Request: req}, next); err != nil {
		t.Fatal(err)
	}
	if _, ok := sent.(io.WriterTo); ok || sent == nil {
		t.Fatalf("the transport got a request stream %T with WriteTo", sent)
	}
}
