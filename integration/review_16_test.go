package integration_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/middleware"
)

// Review of issue 16. stall.go: "time the consumer spends on an event,
// with no read waiting, never counts"; WithFirstEventTimeout: "no content
// event within d of its response headers". Here the server sends
// three non-content events and the first content event at once, the rest of a long
// answer a little later. The
// read-ahead hands over at the first messageStart (its limit is reached: a small
// ReadAheadLimit, or 64 KiB of non-content events with the default), so
// the content frame is still unread when the call returns. A consumer that
// starts reading 3 timeouts later (it was busy, exactly what the idle
// timeout forgives) finds the stream cut as "stalled": the first-event
// clock kept running while no read was waiting, the connection was closed
// under a healthy, complete answer, and the content is lost.
func TestDefect_FirstEventTimeoutCutsSlowConsumerAfterHandover(t *testing.T) {
	const timeout = 150 * time.Millisecond
	srv := newServer(t)
	tinyReadAhead := func(o *middleware.Options) { o.ReadAheadLimit = 1 }
	c := newClient(srv, clientOption, 1, tinyReadAhead, middleware.WithFirstEventTimeout(timeout))
	// A long answer: the first token at once, the rest a little later (the
	// pause is after content, which only an idle timeout may judge).
	clean, want := converseStream.healthy(2, "ok")
	// Two more messageStart events: the SDK's reader goroutines hold one
	// event each ahead of the consumer.
	extra := []fake.Step{fake.MessageStart(), fake.MessageStart()}
	want = append([]string{"start", "start"}, want...)
	srv.Enqueue(fake.Response{Steps: steps(extra, clean[:2], []fake.Step{fake.Pause(2 * timeout)}, clean[2:])})
	out, err := c.ConverseStream(context.Background(), &bedrockruntime.ConverseStreamInput{
		ModelId: aws.String("anthropic.claude-test"),
		Messages: []types.Message{{
			Role:    types.ConversationRoleUser,
			Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: "hello"}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * timeout) // the consumer is busy before its first Recv; the server was not slow
	res := collect(out.GetStream(), renderConverse)
	if res.streamErr != nil || !equalStrings(res.events, want) {
		t.Errorf("content sent with the headers, consumer busy %v: stream error %v, events %q; want no error, events %q", 3*timeout, res.streamErr, res.events, want)
	}
}

// Review of issue 16: WithFirstEventTimeout / WithIdleTimeout docs and the
// README: "a negative value fails the first call with an error naming the
// option". install returns before its error check on an operation without
// a response event stream, so a client whose first call is InvokeModel (or
// any non-streaming call) takes the invalid option silently; the error
// only comes, if ever, on a later streaming call.
func TestDefect_NegativeTimeoutFirstCallNonStreaming(t *testing.T) {
	for _, how := range installs {
		srv := newServer(t)
		srv.Enqueue(fake.Response{Body: []byte(`{"completion":"hi"}`)})
		c := newClient(srv, how, 1, middleware.WithIdleTimeout(-time.Second))
		_, err := c.InvokeModel(context.Background(), &bedrockruntime.InvokeModelInput{
			ModelId: aws.String("m"), Body: []byte(`{}`), ContentType: aws.String("application/json"),
		})
		if err == nil || !containsAll(err.Error(), "WithIdleTimeout", "-1s") {
			t.Errorf("%v: first call (InvokeModel) with WithIdleTimeout(-1s): error %v, %d server calls; want the call to fail naming the option", how, err, srv.CallCount())
		}
	}
}
