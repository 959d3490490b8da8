package middleware

import (
	"context"
	"errors"
	"io"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	smithy "github.com/aws/smithy-go"
	"github.com/aws/smithy-go/eventstream"
	smithymiddleware "github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/aws/smithy-go/transport/http/protocol/restjson1"

	"github.com/streamstatus/streamstatus/internal/framing"
	"github.com/streamstatus/streamstatus/internal/streamerr"
	"github.com/streamstatus/streamstatus/smithyext"
)

// deserializeMiddleware sits just inside the SDK's
// OperationEventStreamDeserializer, so it sees each response before the
// SDK's event reader starts on resp.Body; on its way in it hands the
// transport a request body without WriteTo (guardRequestBody). It does not
// read the body: it hands it on with the read-ahead still to run, and
// awaitMiddleware, just outside the SDK's deserializer, waits for it.
type deserializeMiddleware struct {
	opts *resolved
}

func (*deserializeMiddleware) ID() string { return DeserializeID }

func (m *deserializeMiddleware) HandleDeserialize(ctx context.Context, in smithymiddleware.DeserializeInput, next smithymiddleware.DeserializeHandler) (
	out smithymiddleware.DeserializeOutput, md smithymiddleware.Metadata, err error,
) {
	// The request-body guard (finalize.go): the deserialize step runs
	// after the whole finalize step, so after signing, and its input is the
	// request the transport sends.
	guardInput(&in)
	out, md, busy, err := m.send(ctx, in, next)
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

	info := streamerr.Stream{
		Service:   awsmiddleware.GetServiceID(ctx),
		Operation: awsmiddleware.GetOperationName(ctx),
		RequestID: resp.Header.Get("X-Amzn-Requestid"),
	}
	if info.RequestID == "" {
		info.RequestID, _ = awsmiddleware.GetRequestIDMetadata(md)
	}
	body := newStreamBody(ctx, resp.Body, info, m.opts)
	body.callerReads = busy
	body.obs = newStreamObserver(ctx, info, m.opts.classifier, reqOf(in))
	resp.Body = body
	md.Set(streamBodyKey{}, body) // for awaitMiddleware, which waits for the read-ahead
	return out, md, nil
}

// send hands the request on, counted among the installation's attempts
// waiting for their responses while it does (resolved.waiting), and
// reports whether the installation was busy as the response arrived: at
// least as many of its other attempts still waiting as the runtime has
// processors (GOMAXPROCS, read then, as the runtime may change it). A
// panic below is not caught here, but leaves the count as it found it.
func (m *deserializeMiddleware) send(ctx context.Context, in smithymiddleware.DeserializeInput, next smithymiddleware.DeserializeHandler) (
	out smithymiddleware.DeserializeOutput, md smithymiddleware.Metadata, busy bool, err error,
) {
	m.opts.waiting.Add(1)
	defer func() { // busy is set here, on every way out
		others := m.opts.waiting.Add(-1)
		busy = others > 0 && others >= int64(runtime.GOMAXPROCS(0))
	}()
	out, md, err = next.HandleDeserialize(ctx, in)
	return out, md, busy, err
}

// awaitReadAhead is the middleware that sits just outside the SDK's
// OperationEventStreamDeserializer: once the SDK has built the output and
// started its reader on the stream body, it waits for the body's
// read-ahead and fails the attempt with a failure before content, which
// every middleware outside it then sees, as it did when the read-ahead ran
// inside the deserialize middleware. It holds no options: one value serves
// every stack.
var awaitReadAhead = awaitMiddleware{}

type awaitMiddleware struct{}

func (awaitMiddleware) ID() string { return "streamstatus.AwaitReadAhead" }

func (awaitMiddleware) HandleDeserialize(ctx context.Context, in smithymiddleware.DeserializeInput, next smithymiddleware.DeserializeHandler) (
	out smithymiddleware.DeserializeOutput, md smithymiddleware.Metadata, err error,
) {
	out, md, err = next.HandleDeserialize(ctx, in)
	body := streamBodyOf(md)
	if body == nil {
		return out, md, err
	}
	// The handover is done: the attempt's metadata (which the SDK keeps
	// for every attempt of the call, retry.AttemptResults) does not hold
	// on to the body.
	md.Set(streamBodyKey{}, nil)
	if err != nil {
		_ = body.Close() // the SDK's deserializer failed after ours: nobody reads the body
		return out, md, err
	}
	resp, _ := out.RawResponse.(*smithyhttp.Response)
	if err = body.awaitAhead(resp != nil && resp.Body == io.ReadCloser(body)); err != nil {
		closeOutput(out.Result)
	}
	return out, md, err
}

// closeOutput closes the event stream of the output the SDK built for an
// attempt that failed before content, so that its reader goroutines end:
// those that read the stream body end at its failure anyway, but those
// that read a body another middleware put in its place would wait for
// ever to hand their events to a caller that never gets the output. Every
// generated output of an operation with a response event stream has a
// GetStream method returning a stream with Close; reflection finds it
// without naming each operation, on this failure path only.
func closeOutput(result any) {
	v := reflect.ValueOf(result)
	if !v.IsValid() || v.Kind() == reflect.Pointer && v.IsNil() {
		return // no output (a middleware dropped it): nothing was started on it
	}
	get := v.MethodByName("GetStream")
	if !get.IsValid() || get.Type().NumIn() != 0 || get.Type().NumOut() != 1 {
		return
	}
	stream := get.Call(nil)[0]
	if stream.Kind() == reflect.Pointer && stream.IsNil() {
		return
	}
	if c, ok := stream.Interface().(io.Closer); ok {
		_ = c.Close()
	}
}

// streamBodyKey is the metadata key under which the deserialize
// middleware hands an attempt's stream body to awaitMiddleware.
type streamBodyKey struct{}

// streamBodyOf returns the stream body of an attempt's metadata, or nil.
func streamBodyOf(md smithymiddleware.Metadata) *streamBody {
	b, _ := md.Get(streamBodyKey{}).(*streamBody)
	return b
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
// Once the stream has delivered content, an event frame longer than
// passWhole bytes is passed through in parts: the scanner reads its prelude,
// headers and the first passPrefix payload bytes (enough to rule out an
// error envelope), the body hands those on, then reads the payload from the
// connection straight into the SDK's buffer, then hands on the frame's CRC
// bytes: after checking the CRC of everything that passed, or, when
// WithBedrock's protocol decodes the stream (sdkChecksCRC), unchecked, for
// the SDK's decoder to check, whose checksum error becomes ours
// (crcFailed). So a large event is neither copied twice nor buffered, its
// CRC is computed once, and a damaged one still ends the stream with our
// error, never as an event. Exceptions, error messages and envelope
// candidates are read whole, as before content.
//
// The read-ahead (readAhead) runs on the SDK's reader goroutine, at its
// first read of the body (startAhead), while the operation's caller waits
// for it just outside the SDK's deserializer (awaitMiddleware,
// awaitAhead), so a failure before content still fails the attempt, for
// the retry loop. It runs there, not on the caller's goroutine before the
// SDK's deserializer, because that is when and where the SDK reads the
// first frame without the plugin: waiting on the connection as soon as the
// headers are in cost 1-event streams 2-5 % over a socket, as did the
// deeper stack of a read-ahead started from inside the SDK decoder's first
// read (the reader goroutine's stack grew for it), so under WithBedrock's
// protocol decode starts it before the decoder runs. Except on a busy
// installation (callerReads): when a response arrives while at least as
// many of the installation's other attempts wait for theirs as there are
// processors, the caller runs the read-ahead itself (awaitAhead), unless
// the reader holds the body already. Every processor then has work, the
// first frame has usually arrived by the time the caller gets to it, and
// handing the read-ahead to the reader would only add two goroutine
// switches to each stream: 8 and 64 concurrent 1-event streams ran about a
// point slower that way. BENCHMARKS.md has the figures.
//
// Read is called only by the SDK's reader goroutine; Close may be called
// from any goroutine. Under WithBedrock's protocol the reader goroutine
// holds mu for a whole message (decode) rather than for each Read. The
// SDK's reader keeps a reference to the body for as long as the caller
// holds the output, so the body lets go of its frame
// buffer as soon as it is no longer needed: the scanner's buffers come from
// a shared pool and go back before the body waits for the next frame, and
// at the stream's end, at a failure, or at Close, whichever comes first.
type streamBody struct {
	ctx  context.Context
	src  io.ReadCloser
	scan framing.Scanner
	info streamerr.Stream
	opts *resolved
	// envelope detects in-band error envelopes in events; nil when none
	// apply to this operation.
	envelope func(streamerr.Stream, *framing.Frame) *smithyext.StatusError

	// mu is held by Read for the whole call (under WithBedrock's protocol
	// by decode, for a whole message), and by Close only to release the
	// buffers (after closing src, which ends a Read blocked on it).
	mu      sync.Mutex
	closing atomic.Bool // Close was called: the next holder of mu releases
	pending []byte      // wire bytes not yet handed to the SDK's reader
	next    []byte      // after pending: the read-ahead's content frame, in the scanner's buffer
	err     error       // sticky: returned once pending and next are drained
	passing bool        // after pending: the rest of a frame passed through in parts
	// uncounted: the frame passed through last had its CRC left to the
	// SDK's decoder (sdkChecksCRC); it counts as an event once the decoder
	// accepted it (decode), not if it rejects it (crcFailed). Only the
	// SDK's reader goroutine touches it.
	uncounted bool
	// decoding: the SDK's reader goroutine is inside decode, which holds
	// mu; only that goroutine touches it.
	decoding bool

	closeOnce sync.Once
	closeErr  error

	// guard, when a stall timeout is set, is what the scanner reads src
	// through.
	guard stallGuard

	obs *streamObserver // nil unless the client traces, meters or logs retries
	// content: the stream delivered its first content event (one not in
	// the non-content set); kept only while observing.
	content bool

	// codec decodes this stream's events when WithBedrock isolated the
	// client's protocol (protocol.go): taken from codecs at the first
	// message (decode), given back at the stream's end (decode's error, or
	// release); codecDirty: it re-encoded an unknown event (not pooled
	// again). All three under mu.
	codec      *restjson1.Protocol
	codecs     *codecPools
	codecDirty bool

	// The read-ahead runs once (startAhead); ahead is done when it has
	// run, or when the body was closed before it could. Only
	// awaitMiddleware waits on it (a test that calls readAhead itself
	// leaves it undone, unwaited).
	ahead    sync.WaitGroup
	aheadRan bool  // under mu
	aheadErr error // the read-ahead's failure; written before ahead is done
	// aheadClosed: the body was closed before the read-ahead could run;
	// under mu.
	aheadClosed bool
	// callerReads: the operation's caller runs the read-ahead (awaitAhead)
	// rather than wait for the SDK's reader to run it; set when the body
	// is made, if the installation was busy as the response arrived
	// (deserializeMiddleware.send).
	callerReads bool
}

// Frames passed through in parts (see streamBody): longer than passWhole
// bytes; passPrefix payload bytes are read with the head. Below about 2 KiB
// the extra reads of a frame in parts cost more than the copy and CRC they
// save (BenchmarkSDKDecode: at 2 KiB, 4 KiB chunks spend ~2 % less CPU in
// the plugin than at 16 KiB).
const (
	passWhole  = 2 << 10
	passPrefix = 256
)

func newStreamBody(ctx context.Context, src io.ReadCloser, info streamerr.Stream, opts *resolved) *streamBody {
	b := &streamBody{ctx: ctx, src: src, info: info, opts: opts}
	b.ahead.Add(1) // done by endAhead, once (aheadRan)
	if opts.firstEvent > 0 || opts.idle > 0 {
		b.guard.start(src, b.closeSrc, opts.firstEvent, opts.idle)
		b.scan.Reset(&b.guard)
	} else {
		b.scan.Reset(src)
	}
	if opts.envelopes {
		b.envelope = opts.classifier.EnvelopeDetector(info.Service, info.Operation)
	}
	return b
}

// readAhead reads frames until the first content event. It returns a
// *smithyext.StatusError (or a canceled error) for a failure before content;
// the frames it read are then discarded with the attempt. On success the
// frames are queued for replay: the non-content ones copied (they are small
// and bounded by the read-ahead limit), the last one left in the scanner's
// buffer, so a stream never holds two copies of a large frame.
//
// The read-ahead ends at the first frame that is neither a failure nor a
// non-content event (content, or a message type the plugin does not
// know): the SDK reports unknown frames, and must see them as soon as it
// would without the plugin. It holds at most ReadAheadLimit bytes plus one
// frame.
func (b *streamBody) readAhead() error {
	b.aheadRan = true
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
			return b.readError(err)
		}
		if se := b.failure(f); se != nil {
			return se
		}
		if f.MessageType() != framing.MessageTypeEvent {
			b.next = f.Bytes() // not an event: the SDK reports it
			break
		}
		events++
		b.obs.event()
		_, nonContent := b.opts.nonContent[string(f.EventType())]
		if !nonContent {
			if !b.guard.markContent() {
				return b.readError(errStalled) // the guard cut the attempt before this frame was taken
			}
			b.firstContent()
		}
		if !nonContent || len(ahead)+len(f.Bytes()) > b.opts.readAheadLimit {
			b.next = f.Bytes() // the first content (or the limit's overflow): replayed from the scanner's buffer
			break
		}
		ahead = appendBounded(ahead, f.Bytes(), b.opts.readAheadLimit)
	}
	b.pending = ahead
	b.info.Events = events
	return nil
}

// startAhead runs the read-ahead, on the first read of the body (the
// SDK's reader goroutine), and lets awaitAhead go on. A failure ends the
// stream (recorded as a failure before content) and is returned to the
// reader, which then stops; the caller's attempt fails with it. The caller
// holds mu.
func (b *streamBody) startAhead() error {
	err := b.readAhead()
	if err != nil {
		b.obs.end(err, false, b.info.Events)
		b.err = err
		b.release()
	}
	b.endAhead(err)
	return err
}

// aheadOnce runs the read-ahead (startAhead) unless it has run, and
// returns its failure if it ran now. The caller holds mu.
func (b *streamBody) aheadOnce() error {
	if b.aheadRan {
		return nil
	}
	return b.startAhead()
}

// endAhead records the read-ahead's outcome and lets awaitAhead go on. The
// caller holds mu, and has set aheadRan.
func (b *streamBody) endAhead(err error) {
	b.aheadErr = ownCopy(err)
	b.ahead.Done()
}

// ownCopy returns a copy of a read-ahead's failure for the operation's
// caller: the SDK's reader goroutine holds the original as its stream's
// error, and the caller's side may change its copy (the finalize
// middleware fills in a missing request ID; so may the user) while
// something on the reader's side reads it (a body wrapped by another
// middleware, say).
func ownCopy(err error) error {
	switch e := err.(type) {
	case *smithyext.StatusError:
		c := *e
		return &c
	case *smithy.CanceledError:
		c := *e
		return &c
	}
	return err
}

// awaitAhead returns the read-ahead's failure, for awaitMiddleware to
// fail the attempt with, once the read-ahead has run. When the SDK's
// reader reads this body (readBySDK: the response the SDK built its output
// from still carries it), its first read runs the read-ahead, and
// awaitAhead waits for that, or for the body's Close; on a busy
// installation (callerReads) the caller runs it instead, if the body is
// free (the reader does not hold mu: it has not read yet, or is between
// reads); else it waits as on any other, never for more than the
// read-ahead. When another middleware took the body's place, its reader
// may read through this body or never read it at all: then the caller
// runs the read-ahead itself, unless a read already has (under mu, so the
// two never overlap), and never waits for a read that may not come; and
// if that middleware closed the body unread, there is nothing to report
// (the stream is the middleware's, as when the read-ahead ran before it
// saw the body). The SDK's reader ends at the same failure; the body is
// closed here too, so no SDK version's reader is relied on for that.
func (b *streamBody) awaitAhead(readBySDK bool) error {
	var err error
	switch {
	case !readBySDK:
		b.mu.Lock()
		err = b.aheadHere(false)
	case b.callerReads && b.mu.TryLock():
		err = b.aheadHere(true)
	default:
		// The reader runs the read-ahead; or, busy, it holds the body
		// already: it is running the read-ahead, or past it and waiting
		// for the next frame, which is no business of the caller's.
		b.ahead.Wait()
		err = b.aheadErr
	}
	if err != nil {
		_ = b.Close()
	}
	return err
}

// aheadHere runs the read-ahead on the caller's goroutine, unless it ran,
// and returns its failure for awaitAhead; the caller holds mu, which
// aheadHere releases. The read-ahead runs user code (a classifier rule, a
// meter): should that panic, the body is closed on the way out, so the
// SDK's reader, which may be waiting for mu, ends instead of waiting for
// ever, and the connection goes; the panic goes on to the caller.
func (b *streamBody) aheadHere(readBySDK bool) error {
	returned := false
	defer func() {
		if !returned {
			_ = b.Close() // mu is held: Close closes src and marks the body closing; the release is ours
			b.release()
		}
		b.mu.Unlock()
		b.releaseIfClosed()
	}()
	_ = b.aheadOnce()
	err := b.aheadErr
	if !readBySDK && b.aheadClosed {
		err = nil // the middleware that took the body's place closed it unread: the stream is its own
	}
	returned = true
	return err
}

// appendBounded appends frame to ahead, growing it to no more than limit
// (the caller keeps len(ahead)+len(frame) within limit): what the
// read-ahead holds is the capacity, not the length.
func appendBounded(ahead, frame []byte, limit int) []byte {
	if need := len(ahead) + len(frame); need > cap(ahead) {
		grown := make([]byte, len(ahead), min(max(2*cap(ahead), need, 512), limit))
		copy(grown, ahead)
		ahead = grown
	}
	return append(ahead, frame...)
}

// Read hands the SDK's reader the stream's bytes, a frame at a time.
func (b *streamBody) Read(p []byte) (int, error) {
	if b.decoding {
		return b.read(p) // inside decode, which holds mu for the whole message
	}
	b.mu.Lock()
	n, err := b.read(p)
	b.mu.Unlock()
	b.releaseIfClosed()
	return n, err
}

// releaseIfClosed releases the buffers when Close ran while mu was held
// (Close cannot release then; the holder does on its way out).
func (b *streamBody) releaseIfClosed() {
	if b.closing.Load() && b.mu.TryLock() {
		b.release()
		b.mu.Unlock()
	}
}

func (b *streamBody) read(p []byte) (int, error) {
	if err := b.aheadOnce(); err != nil {
		return 0, err
	}
	for len(b.pending) == 0 {
		switch {
		case b.next != nil:
			b.pending, b.next = b.next, nil
		case b.err != nil:
			b.obs.end(b.err, true, b.info.Events) // the one place the stream's end is seen; records once
			b.release()
			return 0, b.err
		case b.passing:
			if b.scan.PayloadLeft() > 0 {
				n, err := b.scan.ReadRest(p) // straight from the connection into the SDK's buffer
				if err != nil {
					b.passing = false
					b.err = b.readError(err)
					continue
				}
				return n, nil
			}
			crc, err := b.scan.Finish()
			b.passing = false
			if err != nil {
				b.err = b.readError(err) // a damaged frame: its CRC bytes are never handed on
				continue
			}
			b.pending = crc
			if b.sdkChecksCRC() {
				b.uncounted = true
				continue
			}
			b.countPassed()
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

// release drops every buffer of an ended stream: the scanner's frame
// buffer and what was still to be replayed. The caller holds mu.
func (b *streamBody) release() {
	if b.closing.Load() && b.err == nil {
		b.err = b.opts.classifier.ReadError(b.ctx, b.info, errBodyClosed)
	}
	if !b.aheadRan { // closed before the SDK's reader read it: the read-ahead never runs
		b.aheadRan, b.aheadClosed = true, true
		b.endAhead(b.err)
	}
	b.scan.Release()
	b.pending, b.next, b.passing = nil, nil, false
	b.guard.stop()
	if !b.decoding { // else decode gives the codec back once its decoder returned
		b.dropCodec()
	}
}

// dropCodec gives the stream's codec back (protocol.go), if it has one.
// The caller holds mu.
func (b *streamBody) dropCodec() {
	if b.codec != nil {
		b.codecs.putDecoder(b.codec, b.codecDirty)
		b.codec, b.codecDirty = nil, false
	}
}

// errBodyClosed is what a Read after Close reports.
var errBodyClosed = errors.New("streamstatus: read on a closed response body")

// nextFrame reads one frame into pending, or the head of one passed
// through in parts, or sets the sticky error.
func (b *streamBody) nextFrame() {
	var f *framing.Frame
	var err error
	if b.guard.awaitingContent() || (b.obs != nil && !b.content) {
		f, err = b.scan.Next() // content is decided on whole frames only
	} else if f, err = b.scan.NextHead(passWhole, passPrefix); err == nil && f.Partial() {
		if f.MessageType() == framing.MessageTypeEvent && (b.envelope == nil || !streamerr.MayCarryEnvelope(f)) {
			b.pending, b.passing = f.Bytes(), true // the head; read hands on the rest
			if b.sdkChecksCRC() {
				b.scan.LeaveCRC()
			}
			return
		}
		f, err = b.scan.Complete() // a failure, or a chunk to inspect: whole
	}
	switch {
	case err == io.EOF:
		b.err = io.EOF
	case err != nil:
		b.err = b.readError(err)
	default:
		if se := b.failure(f); se != nil {
			b.err = se
			return
		}
		if f.MessageType() == framing.MessageTypeEvent {
			content := false
			if b.guard.awaitingContent() || (b.obs != nil && !b.content) {
				_, nonContent := b.opts.nonContent[string(f.EventType())]
				content = !nonContent
			}
			if content && !b.guard.markContent() {
				b.err = b.readError(errStalled) // the guard cut the stream before this frame was taken
				return
			}
			b.info.Events++
			b.obs.event()
			if content {
				b.firstContent()
			}
		}
		b.pending = f.Bytes() // valid until the next scan, which waits for pending to drain
	}
}

// countPassed counts the frame passed through last as an event.
func (b *streamBody) countPassed() {
	b.uncounted = false
	b.info.Events++
	b.obs.event()
}

// sdkChecksCRC reports whether the CRC of a frame passed through may be
// left to the SDK: when WithBedrock's protocol decodes this stream (codec
// set, protocol.go), which turns the SDK decoder's checksum error into
// ours (crcFailed), so a damaged frame still ends the stream with a
// StatusError. On every other path the body checks the CRC as the bytes
// pass, and the SDK checks it again.
func (b *streamBody) sdkChecksCRC() bool { return b.codec != nil }

// decode decodes the stream's next message with the stream's codec
// (WithBedrock's, protocol.go), on the SDK's reader goroutine. It holds
// mu for the whole message, so the SDK decoder's many small reads of a
// frame (a prelude field, a header's name, its value, ...) skip the lock
// (Read, decoding), and Close, which cannot take mu meanwhile, leaves the
// release to it. A frame whose CRC the body left to the decoder counts as
// an event once the decoder returned it (before the SDK hands it to the
// consumer, so a span a Close ends after it counts it, and one ended
// before does not); a checksum error from the decoder becomes the body's
// own (crcFailed). The stream's codec comes from codecs at its first
// message and goes back at its end (dropCodec).
func (b *streamBody) decode(codecs *codecPools, schema *smithy.Schema, types *smithy.TypeRegistry) (smithy.Deserializable, error) {
	b.mu.Lock()
	if err := b.aheadOnce(); err != nil { // here rather than in the decoder's first Read: a shallower stack (see streamBody)
		b.mu.Unlock()
		return nil, err
	}
	if b.codec == nil {
		b.codec, b.codecs = codecs.decode.Get().(*restjson1.Protocol), codecs
	}
	b.decoding = true
	ev, err := b.codec.DeserializeEventMessage(schema, types, b)
	switch {
	case err == nil:
		if b.uncounted {
			b.countPassed()
		}
		b.codecDirty = b.codecDirty || reencoded(ev)
	case errors.As(err, new(eventstream.ChecksumError)):
		err = b.crcFailed(err)
	}
	b.decoding = false
	if err != nil { // the reader goroutine stops here (a Close releases instead: release)
		b.dropCodec()
	}
	b.mu.Unlock()
	b.releaseIfClosed()
	return ev, err
}

// crcFailed is called by decode when the SDK's decoder rejected a frame's
// checksum: a frame whose CRC the body left to it, so the frame passed
// through last. It ends the stream with the StatusError the body would
// have returned had it checked the CRC itself, and returns it. The caller
// holds mu.
func (b *streamBody) crcFailed(sdkErr error) error {
	if b.err != nil && b.err != io.EOF {
		return b.err
	}
	b.uncounted = false
	b.err = b.readError(&framing.FrameError{Offset: b.scan.FrameOffset(), Err: framing.ErrMessageCRC,
		Detail: "message CRC mismatch (found by the SDK's event-stream decoder: " + sdkErr.Error() + ")"})
	b.obs.end(b.err, true, b.info.Events)
	b.release()
	return b.err
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

// readError classifies a failed read: the caller's context first, then a
// stall the guard detected, then the read error itself.
func (b *streamBody) readError(err error) *smithyext.StatusError {
	if b.ctx.Err() == nil {
		if stall := b.guard.stalled(); stall != nil {
			return b.opts.classifier.Stalled(b.info, stall)
		}
	}
	return b.opts.classifier.ReadError(b.ctx, b.info, err)
}

// failure classifies a frame that ends the stream: an exception, an error
// message, or an event carrying an in-band error envelope. It returns nil
// for every other frame.
func (b *streamBody) failure(f *framing.Frame) *smithyext.StatusError {
	if f.MessageType() == framing.MessageTypeEvent {
		if b.envelope != nil {
			return b.envelope(b.info, f)
		}
		return nil
	}
	return b.opts.classifier.Frame(b.info, f)
}

// Close closes the underlying response body and releases the stream's
// buffers. Safe for concurrent calls, and with a Read in progress.
func (b *streamBody) Close() error {
	b.obs.closed()
	b.closeSrc()
	b.closing.Store(true)
	if b.mu.TryLock() { // else the Read holding mu releases on its way out
		b.release()
		b.mu.Unlock()
	}
	return b.closeErr
}

// closeSrc closes the response body once: from Close, or from the stall
// guard's timer, which thereby ends a Read blocked on the connection.
func (b *streamBody) closeSrc() {
	b.closeOnce.Do(func() { b.closeErr = b.src.Close() })
}
