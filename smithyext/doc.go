// Package smithyext holds the smithy-level pieces of streamstatus: a
// zero-allocation scanner for the AWS event-stream framing
// (application/vnd.amazon.eventstream) and [StatusError], the typed error
// that every stream failure becomes.
//
// Most programs never use this package directly: they install the
// middlewares and inspect errors with [errors.As]:
//
//	go get github.com/streamstatus/streamstatus
//	client := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock())
//
// and then, on any error from the call or from stream.Err():
//
//	var se *smithyext.StatusError
//	if errors.As(err, &se) {
//		log.Printf("status %d, retryable %v, %d events delivered", se.HTTPStatusCode(), se.RetryableError(), se.EventsDelivered())
//	}
//
// The scanner is exported for tools that need to look at raw event streams
// (the fake endpoint in integration/, fuzzers, debugging proxies).
package smithyext
