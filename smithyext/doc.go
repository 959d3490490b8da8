// Package smithyext holds [StatusError], the typed error that every failure
// inside an AWS event stream becomes, and its [Kind].
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
package smithyext
