// Package integration holds the end-to-end tests and benchmarks of
// streamstatus: they drive the real aws-sdk-go-v2 clients against the fake
// event-stream endpoint in package fake, which listens on 127.0.0.1 and
// speaks the real AWS event-stream framing. The runnable tool lives in
// cmd/streamcheck.
//
//	go test -race ./integration/...
//	go run ./integration/cmd/streamcheck
package integration
