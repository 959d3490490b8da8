// Package middleware installs streamstatus into aws-sdk-go-v2 clients: two
// smithy middlewares that turn failures inside AWS event streams into typed,
// retryable status errors the SDK's own retryer respects.
//
//	go get github.com/streamstatus/streamstatus
//	client := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock())
//
// # Where the middlewares sit
//
// An SDK operation runs a smithy middleware stack. For a streaming operation
// (ConverseStream, InvokeModelWithResponseStream, ...) the parts that matter
// are, outermost first:
//
//	Finalize:    Retry                      one loop iteration per attempt
//	             -> streamstatus.Finalize   (this package, once per attempt)
//	             -> Signing
//	Deserialize: streamstatus.AwaitReadAhead        (this package: waits for the read-ahead)
//	             -> OperationEventStreamDeserializer   starts the SDK's event reader on resp.Body
//	             -> streamstatus.Deserialize        (this package: guards the request body on
//	                                                 the way in, wraps resp.Body on the way out)
//	             -> ResponseErrorWrapper, RequestIDRetriever, OperationDeserializer, ... -> transport
//
// # What each one does
//
// The deserialize middleware (deserialize.go) wraps the body of every 2xx
// event-stream response. The wrapped body reads frames ahead until the
// first event that carries content (see [Options.NonContentEvents]) when
// the SDK's event reader first reads it, and streamstatus.AwaitReadAhead,
// once the SDK has built the output and started its reader, waits for that
// read-ahead before the attempt goes on:
//
//   - an exception or error message before content closes the body and
//     fails the attempt with a *smithyext.StatusError, so the Retry
//     middleware retries it with the client's backoff, attempts and retry
//     quota;
//   - a transport failure before content (reset, truncated frame) does the
//     same, as a retryable StatusError; a corrupt frame is not retryable;
//   - a frame of a message type the plugin does not know ends the
//     read-ahead: the SDK gets it as soon as it would without the plugin,
//     and reports it;
//   - otherwise the frames read ahead are replayed to the SDK's reader byte
//     for byte, followed by the rest of the stream.
//
// The read-ahead runs on the SDK's reader goroutine, not on the caller's
// before the SDK's deserializer: that is when and where the SDK reads the
// first frame without the plugin, and reading it earlier cost 1-event
// streams a few percent (BENCHMARKS.md). When, as a response arrives, at
// least as many of the installation's other attempts still wait for theirs
// as there are processors (GOMAXPROCS), the operation's caller runs it
// instead, unless the SDK's reader is at it already: with every processor
// busy, that saves two goroutine switches per stream. So a failure before
// content leaves the deserialize step from streamstatus.AwaitReadAhead: every
// finalize middleware, and every deserialize middleware outside the SDK's
// event-stream deserializer, sees it as the attempt's error; a middleware
// between that deserializer and streamstatus.Deserialize sees a success
// and a body whose first Read fails with it. When such a middleware puts
// a body of its own in the response, the read-ahead runs on the caller's
// goroutine instead, so nothing waits for a read that may never come.
//
// The read-ahead holds at most [Options.ReadAheadLimit] bytes plus one
// frame, and a stream holds no frame buffer once it has ended (its end, a
// failure, or Close), though the SDK's reader keeps the body referenced
// while the caller holds the output.
//
// An event whose payload is an in-band error envelope (an Anthropic
// {"type":"error"} chunk on InvokeModelWithResponseStream) counts as an
// exception, before and after content, and is never delivered; see
// [WithDisableErrorEnvelopes].
//
// After content, frames pass through one at a time. An exception, error
// message or transport failure then ends the body with a StatusError that
// counts the events already delivered; the SDK's reader reports it from
// stream.Err() (wrapped as "decode event: ...", or not: errors.As finds it
// either way). Nothing
// is re-sent behind the consumer's back. An event frame above 2 KiB then
// passes through in parts: its head (prelude, headers, the first 256
// payload bytes, enough to rule out an error envelope) from the frame
// scanner, its payload straight from the connection into the SDK's buffer,
// its CRC bytes last, so a large event is never copied twice nor held
// whole. Its CRC is computed once: under WithBedrock's protocol by the
// SDK's decoder alone, whose checksum error becomes the same StatusError
// (protocol.go); on the other install paths by the body as the bytes pass,
// which withholds the CRC bytes of a damaged frame (the SDK then checks it
// again). Smaller frames, and every frame before content (which must be
// checked before the call returns, so that a damaged one is retried), are
// read whole and checked by the body, and again by the SDK. The
// scanner's frame buffers come from a pool shared by all streams and go
// back before a stream waits for its next frame.
//
// The finalize middleware (finalize.go) runs once per attempt, inside the
// retry loop: it makes a StatusError the outermost error of a failed
// attempt, so its mapped status wins over any HTTP wrapper's 200. The
// deserialize middleware also guards the request body on its way in (after
// signing, so the payload hash still reads the original stream): it hands
// the transport a request body without a WriteTo method, which removes
// smithy-go's request-body race (closing the body after Do makes net/http
// close the connection under a still-streaming response).
//
// With [WithFirstEventTimeout] or [WithIdleTimeout], the stream body also
// watches for stalls (stall.go): one timer per stream closes the body when
// no content event arrived in time after the headers, or no byte arrived
// for the idle timeout while a frame was awaited. The read that was
// waiting then fails as a retryable StreamStalled StatusError, which
// follows the same rules as any other failure: retried before content,
// stream.Err() after. The caller's context keeps precedence: its
// cancellation is reported as such, never as a stall.
//
// An initialize middleware (backoff.CallStart) gives each call the state a
// retry budget measures it by: its start and its attempt count, which a
// budget's retryer reads from the context (the SDK keeps the retryer out of
// the stack's reach). With [WithBudget], the finalize middleware also
// checks that the attempt's retryer is the budget's, and fails the call
// before it is sent otherwise (a wrapper that replaces the budget's delays
// passes GetAttemptToken through and so this check: the budget's retryer
// refuses its first retry instead). A budget is the client's retryer, for every
// operation: with one, CallStart and the finalize middleware go on every
// operation of the client, streaming or not (Converse, InvokeModel, ...),
// so its limits hold there too; the stream middlewares go on streaming
// operations only.
//
// # Observability
//
// The middlewares record through the client's own providers, not options
// of their own (observe.go): metrics from the meter and the log mode the
// client gives its Retry middleware (*retry.Attempt OperationMeter and
// LogAttempts), spans from the operation's tracer on the context. Each 200
// event stream gets an EventStream span, a child of the SDK's Attempt span,
// that ends with the stream, so a failure after content, which comes after
// the operation's span ended, still has a span to land on. The stream body
// reports its end in one place (Read returning its sticky error, or the
// read-ahead's failure), so every failure, whatever made it, is recorded
// once. With the SDK's default no-op providers nothing is installed.
//
// Data flows one way: transport -> frame scanner (internal/framing) -> classifier
// (classify) -> typed error -> retryer or consumer.
//
// # Installing
//
// [WithBedrock] is the one option for bedrockruntime clients. [APIOption]
// is the same middlewares as a generic API option for any client, and
// [AppendMiddlewares] installs them on every client made from an
// aws.Config. Without a budget, operations without a response event
// stream are left untouched, at no cost per call: the install step looks
// for the SDK's OperationEventStreamDeserializer and steps aside when it is
// absent. Operations with an input event stream
// (InvokeModelWithBidirectionalStream) get no stream middlewares either.
// With a budget, all of them get the budget's two (see above). A second
// installation on the same stack (config-
// wide, then client, then call) installs nothing new; the options it sets
// take precedence over the earlier ones, and those it leaves unset keep
// their earlier values.
package middleware
