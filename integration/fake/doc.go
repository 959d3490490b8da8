// Package fake is a scriptable fake Amazon Bedrock Runtime endpoint for tests
// and local tooling.
//
// A [Server] listens on a loopback address only (127.0.0.1 by default; other
// loopback addresses via [WithAddr], never a routable interface) and speaks
// the real wire protocol: requests are routed by the same REST paths the AWS
// SDK uses (ConverseStream, InvokeModelWithResponseStream, InvokeModel,
// Converse), and streaming responses are framed with the AWS event-stream
// binary encoding from github.com/aws/smithy-go/eventstream. Point a real
// aws-sdk-go-v2 client at [Server.URL] through its BaseEndpoint option.
//
// Responses are scripted: [Server.Enqueue] queues responses consumed one per
// call, [Server.SetScript] computes one from the received [Call], and
// [Server.SetDefault] answers everything else. A streaming [Response] is a
// list of [Step] values written and flushed one at a time: well-formed events
// ([Event], [Chunk], [ConverseText], ...), modeled exceptions ([Exception]),
// error messages ([ErrorMsg]), arbitrary bytes ([Raw], [Frame]) and transport
// faults ([Pause], [Hang], [Reset], [Cut]).
//
// Requests are validated so that a client bug shows up as a clear HTTP 400
// ValidationException rather than a silent pass, and every request is
// recorded for later inspection with [Server.Calls].
//
// Answers go out at once unless [WithResponseDelay] sets a delay, which
// stands in for service latency; a few milliseconds also keep a client-side
// race in the bare SDK's request-body handling from breaking streams on
// loopback (see [Options.ResponseDelay]).
//
// [Server.Close] ends every in-flight response, including paused and hung
// ones, and waits for all server goroutines before returning.
package fake
