// Package framing reads the AWS event-stream wire format
// (application/vnd.amazon.eventstream): a zero-allocation [Scanner] that
// validates every frame's lengths, CRCs and header block, the [Frame] and
// [Header] views into its buffer, the format's size limits, and the
// [FrameError] sentinels a rejected frame carries.
//
// It is internal: the middlewares read response streams with it, and the
// tests, fuzzers and tools of this module (integration/, streamcheck) look at
// raw streams with it. Users see its failures only through
// *smithyext.StatusError (Kind KindCorrupt or KindTransport, code
// classify.CodeCorruptFrame or CodeStreamInterrupted), whose message carries
// the frame error's one-line description.
package framing
