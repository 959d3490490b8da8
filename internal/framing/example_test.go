package framing_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/aws/smithy-go/eventstream"

	"github.com/streamstatus/streamstatus/internal/framing"
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

	s := framing.NewScanner(&wire)
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
		case framing.MessageTypeEvent:
			fmt.Printf("event %s %s\n", f.EventType(), f.Payload())
		case framing.MessageTypeException:
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

	_, err := framing.NewScanner(bytes.NewReader(b)).Next()
	fmt.Println(errors.Is(err, framing.ErrMessageCRC))
	// Output: true
}
