package middleware

import (
	"context"
	"io"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	smithy "github.com/aws/smithy-go"
	smithymiddleware "github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/aws/smithy-go/transport/http/protocol/restjson1"

	"github.com/streamstatus/streamstatus/classify"
	"github.com/streamstatus/streamstatus/smithyext"
)

// deserializeMiddleware sits just inside the SDK's
// OperationEventStreamDeserializer, so it sees each response before the
// SDK's event reader starts on resp.Body.
type deserializeMiddleware struct {
	opts *resolved
}

func (*deserializeMiddleware) ID() string { return DeserializeID }

func (m *deserializeMiddleware) HandleDeserialize(ctx context.Context, in smithymiddleware.DeserializeInput, next smithymiddleware.DeserializeHandler) (
	out smithymiddleware.DeserializeOutput, md smithymiddleware.Metadata, err error,
) {
	out, md, err = next.HandleDeserialize(ctx, in)
	if err != nil {
		// HTTP error answers: exactly as without the plugin, except that
		// the body is closed. The SDK's schema-serde generation
		// (bedrockruntime v1.63+, sagemakerruntime v1.50+) never closes the
		// error body of an event-stream operation: its
		// OperationDeserializer leaves event-stream bodies to the
		// event-stream deserializer, which returns early on error. Nobody
		// reads the body of a failed attempt again.
		if resp, ok := out.RawResponse.(*smithyhttp.Response); ok && resp.Body != nil {
			_ = resp.Body.Close()
		}
		return out, md, err
	}
	resp, ok := out.RawResponse.(*smithyhttp.Response)
	if !ok || resp.Body == nil || resp.StatusCode < 200 || resp.StatusCode > 299 {
		return out, md, nil
	}

	info := classify.Stream{
		Service:   awsmiddleware.GetServiceID(ctx),
		Operation: awsmiddleware.GetOperationName(ctx),
		RequestID: resp.Header.Get("X-Amzn-Requestid"),
	}
	if info.RequestID == "" {
		info.RequestID, _ = awsmiddleware.GetRequestIDMetadata(md)
	}
	body := newStreamBody(ctx, resp.Body, info, m.opts)
	body.obs = newStreamObserver(ctx, info, m.opts.classifier, reqOf(in))
	if err := body.readAhead(); err != nil {
		body.obs.end(err, false, body.info.Events)
		_ = body.Close()
		return out, md, err
	}
	resp.Body = body
	return out, md, nil
}

// reqOf returns the HTTP request of a deserialize input, or nil.
func reqOf(in smithymiddleware.DeserializeInput) *smithyhttp.Request {
	req, _ := in.Request.(*smithyhttp.Request)
	return req
}

// streamBody is the response body the SDK's event reader sees. It replays
// the frames read ahead, then passes frames through one at a time, and ends
// with a *smithyext.StatusError where the raw stream would have delivered an
// exception, an error message or a transport failure.
//
// Read is called only by the SDK's reader goroutine; Close may be called
// from any goroutine, so it is guarded.
type streamBody struct {
	ctx  context.Context
	src  io.ReadCloser
	scan smithyext.Scanner
	info classify.Stream
	opts *resolved
	// envelope detects in-band error envelopes in events; nil when none
	// apply to this operation.
	envelope func(classify.Stream, *smithyext.Frame) *smithyext.StatusError

	pending []byte // wire bytes not yet handed to the SDK's reader
	next    []byte // after pending: the read-ahead's content frame, in the scanner's buffer
	err     error  // sticky: returned once pending and next are drained

	obs *streamObserver // nil unless the client traces, meters or logs retries
	// content: the stream delivered its first content event (one not in
	// the non-content set); kept only while observing.
	content bool

	closeOnce sync.Once
	closeErr  error

	// codec decodes this stream's events when WithBedrock isolated the
	// client's protocol (protocol.go); used by the reader goroutine only.
	codec *restjson1.Protocol
}

func newStreamBody(ctx context.Context, src io.ReadCloser, info classify.Stream, opts *resolved) *streamBody {
	b := &streamBody{ctx: ctx, src: src, info: info, opts: opts}
	b.scan.Reset(src)
	if opts.envelopes {
		b.envelope = opts.classifier.EnvelopeDetector(info.Service, info.Operation)
	}
	return b
}

// readAhead reads frames until the first content event. It returns a
// *smithyext.StatusError (or a canceled error) for a failure before content;
// the frames it read are then discarded with the attempt. On success the
// frames are queued for replay: the non-content ones copied (they are small
// and bounded by the read-ahead limit), the content frame left in the
// scanner's buffer, so a stream never holds two copies of a large frame.
func (b *streamBody) readAhead() error {
	var ahead []byte
	var events int
	for {
		f, err := b.scan.Next()
		if err == io.EOF {
			b.err = io.EOF
			break
		}
		if err != nil {
			if ctxErr := b.ctx.Err(); ctxErr != nil {
				return &smithy.CanceledError{Err: ctxErr}
			}
			return b.opts.classifier.ReadError(b.ctx, b.info, err)
		}
		if se := b.failure(f); se != nil {
			return se
		}
		isEvent := f.MessageType() == smithyext.MessageTypeEvent
		if isEvent {
			events++
			b.obs.event()
		}
		_, nonContent := b.opts.nonContent[string(f.EventType())]
		if isEvent && (!nonContent || len(ahead)+len(f.Bytes()) > b.opts.readAheadLimit) {
			if !nonContent {
				b.firstContent()
			}
			b.next = f.Bytes() // the first content (or the limit's overflow): replayed from the scanner's buffer
			break
		}
		ahead = append(ahead, f.Bytes()...) // non-content events; unknown message types go to the SDK, which reports them
	}
	b.pending = ahead
	b.info.Events = events
	return nil
}

// Read hands the SDK's reader the stream's bytes, a frame at a time.
func (b *streamBody) Read(p []byte) (int, error) {
	for len(b.pending) == 0 {
		switch {
		case b.next != nil:
			b.pending, b.next = b.next, nil
		case b.err != nil:
			b.obs.end(b.err, true, b.info.Events) // the one place the stream's end is seen; records once
			return 0, b.err
		default:
			b.nextFrame()
		}
	}
	n := copy(p, b.pending)
	b.pending = b.pending[n:]
	if len(b.pending) == 0 {
		b.pending = nil // let the read-ahead copy go
	}
	return n, nil
}

// nextFrame reads one frame into pending, or sets the sticky error.
func (b *streamBody) nextFrame() {
	f, err := b.scan.Next()
	switch {
	case err == io.EOF:
		b.err = io.EOF
	case err != nil:
		b.err = b.opts.classifier.ReadError(b.ctx, b.info, err)
	default:
		if se := b.failure(f); se != nil {
			b.err = se
			return
		}
		if f.MessageType() == smithyext.MessageTypeEvent {
			b.info.Events++
			if b.obs != nil {
				b.obs.event()
				if !b.content {
					if _, nonContent := b.opts.nonContent[string(f.EventType())]; !nonContent {
						b.firstContent()
					}
				}
			}
		}
		b.pending = f.Bytes() // valid until the next scan, which waits for pending to drain
	}
}

// firstContent records, once, that the stream delivered its first content
// event. Non-content events (WithNonContentEvents) do not count, even the
// one the read-ahead limit hands over early: a stream that sends only those
// has no first chunk.
func (b *streamBody) firstContent() {
	if b.obs == nil || b.content {
		return
	}
	b.content = true
	b.obs.firstContent()
}

// failure classifies a frame that ends the stream: an exception, an error
// message, or an event carrying an in-band error envelope. It returns nil
// for every other frame.
func (b *streamBody) failure(f *smithyext.Frame) *smithyext.StatusError {
	if f.MessageType() == smithyext.MessageTypeEvent {
		if b.envelope != nil {
			return b.envelope(b.info, f)
		}
		return nil
	}
	return b.opts.classifier.Frame(b.info, f)
}

// Close closes the underlying response body. Safe for concurrent calls.
func (b *streamBody) Close() error {
	b.closeOnce.Do(func() { b.obs.closed(); b.closeErr = b.src.Close() })
	return b.closeErr
}
