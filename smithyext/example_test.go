package smithyext_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/aws/smithy-go/eventstream"

	"github.com/streamstatus/streamstatus/smithyext"
)

// Scan a raw event stream frame by frame; the frame's slices are valid until
// the next call to Next.
func ExampleScanner() {
	var wire bytes.Buffer
	enc := eventstream.NewEncoder()
	for _, m := range []eventstream.Message{
		{Headers: eventstream.Headers{
			{Name: ":message-type", Value: eventstream.StringValue("event")},
			{Name: ":event-type", Value: eventstream.StringValue("chunk")},
		}, Payload: []byte(`{"bytes":"aGk="}`)},
		{Headers: eventstream.Headers{
			{Name: ":message-type", Value: eventstream.StringValue("exception")},
			{Name: ":exception-type", Value: eventstream.StringValue("throttlingException")},
		}, Payload: []byte(`{"message":"slow down"}`)},
	} {
		_ = enc.Encode(&wire, m)
	}

	s := smithyext.NewScanner(&wire)
	for {
		f, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		switch f.MessageType() {
		case smithyext.MessageTypeEvent:
			fmt.Printf("event %s %s\n", f.EventType(), f.Payload())
		case smithyext.MessageTypeException:
			fmt.Printf("exception %s %s\n", f.ExceptionType(), f.Payload())
		}
	}
	// Output:
	// event chunk {"bytes":"aGk="}
	// exception throttlingException {"message":"slow down"}
}

// A corrupt frame is rejected with a *FrameError naming what failed.
func ExampleFrameError() {
	var wire bytes.Buffer
	_ = eventstream.NewEncoder().Encode(&wire, eventstream.Message{Payload: []byte("x")})
	b := wire.Bytes()
	b[len(b)-1] ^= 0xff // break the message CRC

	_, err := smithyext.NewScanner(bytes.NewReader(b)).Next()
	fmt.Println(errors.Is(err, smithyext.ErrMessageCRC))
	// Output: true
}

// StatusError reads as one line and answers the SDK's error interfaces.
func ExampleStatusError() {
	err := error(&smithyext.StatusError{
		Service: "Bedrock Runtime", Operation: "ConverseStream", Kind: smithyext.KindException,
		Code: "ThrottlingException", Message: "Too many requests", StatusCode: 429,
		Retryable: true, Throttle: true, RequestID: "1a2b", Events: 3,
	})
	fmt.Println(err)

	var status interface{ HTTPStatusCode() int }
	var retryable interface{ RetryableError() bool }
	fmt.Println(errors.As(err, &status), status.HTTPStatusCode(), errors.As(err, &retryable), retryable.RetryableError())
	// Output:
	// Bedrock Runtime ConverseStream: ThrottlingException (HTTP 429, retryable, throttle) after 3 events: Too many requests (request id 1a2b)
	// true 429 true true
}
