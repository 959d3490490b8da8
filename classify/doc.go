// Package classify maps AWS event-stream exceptions, error messages, HTTP
// errors and transport failures to an HTTP status, an error code and a retry
// decision (retryable, throttle).
//
// Each service has a [Table] whose rows name the page of the service's API
// reference they come from; [DefaultTables] returns the built-in ones, and
// [New] builds a [Classifier] from them and tables of your own (later tables
// override earlier rows). Give it to the middlewares with
// middleware.WithClassifier; they use it to turn exception frames into
// *smithyext.StatusError values.
//
// [Classify] is the one error handler for every path of an SDK call: it
// accepts any error (a stream exception, an HTTP error, a transport error, a
// canceled context) and returns a [Result] with the status, code and retry
// decision.
//
//	go get github.com/streamstatus/streamstatus
//	r := classify.Classify(err) // r.Status, r.Code, r.Retryable, r.Throttle
//
// [StatusRetryable] and [StatusThrottle] plug into the SDK retryer's
// retry.StandardOptions.Retryables and .Throttles, in the same composable
// style as the SDK's own rules in aws/retry.
package classify
