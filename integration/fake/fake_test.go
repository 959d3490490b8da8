package fake

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/eventstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testModel = "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-v2:1"

// bareSDKDelay keeps the bare SDK's request-body race (see
// Options.ResponseDelay) out of these tests, which drive the SDK without
// streamstatus.
const bareSDKDelay = 5 * time.Millisecond

func newServer(t *testing.T, opts ...Option) *Server {
	t.Helper()
	srv, err := NewServer(append([]Option{WithResponseDelay(bareSDKDelay)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func newClient(srv *Server) *bedrockruntime.Client {
	return bedrockruntime.New(bedrockruntime.Options{
		Region: "us-east-1",
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDFAKE", SecretAccessKey: "secret"}, nil // any keys: the fake checks only that requests are signed
		}),
		BaseEndpoint: aws.String(srv.URL),
		Retryer:      aws.NopRetryer{},
	})
}

func converseInput() *bedrockruntime.ConverseStreamInput {
	return &bedrockruntime.ConverseStreamInput{
		ModelId: aws.String(testModel),
		Messages: []types.Message{{
			Role:    types.ConversationRoleUser,
			Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: "hi"}},
		}},
	}
}

// converse runs a ConverseStream call and drains its events.
func converse(t *testing.T, c *bedrockruntime.Client) ([]types.ConverseStreamOutput, error) {
	t.Helper()
	out, err := c.ConverseStream(context.Background(), converseInput())
	if err != nil {
		t.Fatalf("ConverseStream: %v", err)
	}
	st := out.GetStream()
	defer st.Close()
	var evs []types.ConverseStreamOutput
	for ev := range st.Events() {
		evs = append(evs, ev)
	}
	return evs, st.Err()
}

// describe renders ConverseStream events compactly for comparisons.
func describe(evs []types.ConverseStreamOutput) []string {
	var out []string
	for _, ev := range evs {
		switch v := ev.(type) {
		case *types.ConverseStreamOutputMemberMessageStart:
			out = append(out, "start:"+string(v.Value.Role))
		case *types.ConverseStreamOutputMemberContentBlockDelta:
			d, _ := v.Value.Delta.(*types.ContentBlockDeltaMemberText)
			if d == nil {
				out = append(out, "delta:?")
			} else {
				out = append(out, "delta:"+d.Value)
			}
		case *types.ConverseStreamOutputMemberContentBlockStop:
			out = append(out, "blockstop")
		case *types.ConverseStreamOutputMemberMessageStop:
			out = append(out, "stop:"+string(v.Value.StopReason))
		case *types.ConverseStreamOutputMemberMetadata:
			u := v.Value.Usage
			out = append(out, "meta:"+itoa(u.InputTokens)+"/"+itoa(u.OutputTokens)+"/"+itoa(u.TotalTokens))
		default:
			out = append(out, "other")
		}
	}
	return out
}

func itoa(p *int32) string {
	if p == nil {
		return "nil"
	}
	b, _ := json.Marshal(*p)
	return string(b)
}

func TestConverseStreamScripted(t *testing.T) {
	srv := newServer(t)
	srv.Enqueue(Response{Steps: ConverseText("Hello", ", world")})

	evs, err := converse(t, newClient(srv))
	if err != nil {
		t.Fatalf("stream error: %v", err)
	}
	got := strings.Join(describe(evs), " ")
	want := "start:assistant delta:Hello delta:, world blockstop stop:end_turn meta:1/2/3"
	if got != want {
		t.Fatalf("events\n got %s\nwant %s", got, want)
	}

	calls := srv.Calls()
	if len(calls) != 1 || srv.CallCount() != 1 {
		t.Fatalf("calls = %d, CallCount = %d, want 1", len(calls), srv.CallCount())
	}
	c := calls[0]
	if c.N != 1 || c.Method != "POST" || c.Operation != "ConverseStream" || c.ModelID != testModel {
		t.Errorf("call = N %d %s %s op %q model %q", c.N, c.Method, c.Path, c.Operation, c.ModelID)
	}
	if !strings.HasSuffix(c.Path, "/converse-stream") || !strings.Contains(c.Path, "%2F") {
		t.Errorf("path %q: want escaped model id and /converse-stream", c.Path)
	}
	if c.RequestID != "fake-00000001" {
		t.Errorf("RequestID = %q", c.RequestID)
	}
	sum := sha256.Sum256(c.Body)
	if c.BodySHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("BodySHA256 mismatch")
	}
	var body struct {
		Messages []struct {
			Role    string `json:"role"`
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(c.Body, &body); err != nil || len(body.Messages) != 1 ||
		body.Messages[0].Role != "user" || body.Messages[0].Content[0].Text != "hi" {
		t.Errorf("recorded body %s (err %v)", c.Body, err)
	}
	if !strings.HasPrefix(c.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		t.Errorf("Authorization header not recorded: %v", c.Header)
	}

	// Calls returns copies.
	calls[0].Body[0] = 'X'
	calls[0].Header.Set("X-Mutated", "1")
	again := srv.Calls()[0]
	if again.Body[0] == 'X' || again.Header.Get("X-Mutated") != "" {
		t.Errorf("Calls did not return copies")
	}
}

func TestInvokeModelWithResponseStream(t *testing.T) {
	srv := newServer(t)
	srv.Enqueue(Response{Steps: []Step{
		Chunk([]byte(`{"type":"a"}`)),
		Chunk([]byte(`{"type":"b"}`)),
		Chunk([]byte("\x00binary\xff")),
	}})

	out, err := newClient(srv).InvokeModelWithResponseStream(context.Background(),
		&bedrockruntime.InvokeModelWithResponseStreamInput{
			ModelId:     aws.String("anthropic.claude-v2"),
			Body:        []byte(`{"prompt":"hi"}`),
			ContentType: aws.String("application/json"),
		})
	if err != nil {
		t.Fatal(err)
	}
	st := out.GetStream()
	defer st.Close()
	var got []string
	for ev := range st.Events() {
		c, ok := ev.(*types.ResponseStreamMemberChunk)
		if !ok {
			t.Fatalf("unexpected event %T", ev)
		}
		got = append(got, string(c.Value.Bytes))
	}
	if err := st.Err(); err != nil {
		t.Fatalf("stream error: %v", err)
	}
	want := []string{`{"type":"a"}`, `{"type":"b"}`, "\x00binary\xff"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("chunks = %q, want %q", got, want)
	}
	c := srv.Calls()[0]
	if c.Operation != "InvokeModelWithResponseStream" || c.ModelID != "anthropic.claude-v2" ||
		string(c.Body) != `{"prompt":"hi"}` {
		t.Errorf("call = %+v", c)
	}
}

func TestInvokeModelBody(t *testing.T) {
	srv := newServer(t)
	srv.Enqueue(Response{Body: []byte(`{"completion":"ok"}`)})
	out, err := newClient(srv).InvokeModel(context.Background(), &bedrockruntime.InvokeModelInput{
		ModelId: aws.String("m"),
		Body:    []byte(`{}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if string(out.Body) != `{"completion":"ok"}` {
		t.Fatalf("body = %s", out.Body)
	}
	if op := srv.Calls()[0].Operation; op != "InvokeModel" {
		t.Fatalf("operation = %q", op)
	}
}

func TestExceptionSteps(t *testing.T) {
	srv := newServer(t)
	c := newClient(srv)

	t.Run("throttling", func(t *testing.T) {
		srv.Enqueue(Response{Steps: []Step{
			MessageStart(), TextDelta("par"), Exception("throttlingException", "slow down"), TextDelta("never"),
		}})
		evs, err := converse(t, c)
		if got := strings.Join(describe(evs), " "); got != "start:assistant delta:par" {
			t.Errorf("events = %s", got)
		}
		var te *types.ThrottlingException
		if !errors.As(err, &te) || te.ErrorMessage() != "slow down" {
			t.Fatalf("err = %T %v, want *types.ThrottlingException", err, err)
		}
	})

	t.Run("modelStreamError", func(t *testing.T) {
		srv.Enqueue(Response{Steps: []Step{
			MessageStart(),
			ExceptionPayload("modelStreamErrorException",
				[]byte(`{"message":"model broke","originalStatusCode":503,"originalMessage":"upstream"}`)),
		}})
		_, err := converse(t, c)
		var me *types.ModelStreamErrorException
		if !errors.As(err, &me) {
			t.Fatalf("err = %T %v, want *types.ModelStreamErrorException", err, err)
		}
		if me.OriginalStatusCode == nil || *me.OriginalStatusCode != 503 ||
			aws.ToString(me.OriginalMessage) != "upstream" || me.ErrorMessage() != "model broke" {
			t.Errorf("exception = %+v", me)
		}
	})

	t.Run("errorMessage", func(t *testing.T) {
		srv.Enqueue(Response{Steps: []Step{MessageStart(), ErrorMsg("InternalFailure", "boom")}})
		_, err := converse(t, c)
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "InternalFailure" || ae.ErrorMessage() != "boom" {
			t.Fatalf("err = %T %v", err, err)
		}
	})
}

func TestErrorResponse(t *testing.T) {
	srv := newServer(t)
	srv.Enqueue(Response{Status: http.StatusTooManyRequests, ErrorType: "ThrottlingException", ErrorMessage: "Too many requests"})

	_, err := newClient(srv).ConverseStream(context.Background(), converseInput())
	var te *types.ThrottlingException
	if !errors.As(err, &te) || te.ErrorMessage() != "Too many requests" {
		t.Fatalf("err = %T %v, want *types.ThrottlingException", err, err)
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != 429 || re.ServiceRequestID() != "fake-00000001" {
		t.Fatalf("response error = %v", re)
	}
}

func TestNoScriptedResponse(t *testing.T) {
	srv := newServer(t)
	_, err := newClient(srv).ConverseStream(context.Background(), converseInput())
	if err == nil || !strings.Contains(err.Error(), "fake: no scripted response for call 1") {
		t.Fatalf("err = %v", err)
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != 500 {
		t.Fatalf("want HTTP 500, got %v", err)
	}
}

func TestScriptAndDefaultOrder(t *testing.T) {
	srv := newServer(t)
	c := newClient(srv)
	srv.SetDefault(Response{Steps: ConverseText("default")})
	srv.SetScript(func(call Call) Response {
		if call.N == 2 {
			return Response{Steps: ConverseText("script", call.Operation)}
		}
		return Response{Status: 500, ErrorType: "InternalServerException", ErrorMessage: "scripted failure"}
	})
	srv.Enqueue(Response{Steps: ConverseText("queued")})

	first, err := converse(t, c)
	if err != nil || describe(first)[1] != "delta:queued" {
		t.Fatalf("call 1: %v %v", describe(first), err)
	}
	second, err := converse(t, c)
	if err != nil || strings.Join(describe(second)[1:3], " ") != "delta:script delta:ConverseStream" {
		t.Fatalf("call 2: %v %v", describe(second), err)
	}
	_, err = c.ConverseStream(context.Background(), converseInput())
	var ie *types.InternalServerException
	if !errors.As(err, &ie) || ie.ErrorMessage() != "scripted failure" {
		t.Fatalf("call 3: %v", err)
	}
	srv.SetScript(nil)
	fourth, err := converse(t, c)
	if err != nil || describe(fourth)[1] != "delta:default" {
		t.Fatalf("call 4: %v %v", describe(fourth), err)
	}
	if srv.CallCount() != 4 {
		t.Fatalf("CallCount = %d", srv.CallCount())
	}
}

func TestRequestIDOverride(t *testing.T) {
	srv := newServer(t)
	srv.Enqueue(Response{Status: 400, ErrorType: "ValidationException", ErrorMessage: "nope",
		Header: http.Header{"x-amzn-RequestId": {"custom-id"}}})
	_, err := newClient(srv).ConverseStream(context.Background(), converseInput())
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.ServiceRequestID() != "custom-id" {
		t.Fatalf("err = %v", err)
	}
	if id := srv.Calls()[0].RequestID; id != "custom-id" {
		t.Fatalf("recorded RequestID = %q", id)
	}
}

// rawPost sends a request with net/http and returns status, headers and body.
func rawPost(t *testing.T, method, url string, hdr map[string]string, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func TestValidation(t *testing.T) {
	srv := newServer(t)
	srv.Enqueue(Response{Steps: ConverseText("kept for the valid call")})
	auth := "AWS4-HMAC-SHA256 Credential=x, SignedHeaders=host, Signature=y"
	okBody := `{"messages":[{"role":"user","content":[{"text":"hi"}]}]}`
	js := map[string]string{"Authorization": auth, "Content-Type": "application/json"}

	cases := []struct {
		name, method, path string
		hdr                map[string]string
		body, wantMsg      string
	}{
		{"unknown path", "POST", "/model/m/unknown", js, okBody, "unknown operation path POST /model/m/unknown"},
		{"no model path", "POST", "/converse-stream", js, okBody, "unknown operation path"},
		{"empty model", "POST", "/model//converse-stream", js, okBody, "empty {modelId}"},
		{"wrong method", "GET", "/model/m/converse-stream", js, "", "method GET not allowed"},
		{"missing auth", "POST", "/model/m/converse-stream", map[string]string{"Content-Type": "application/json"}, okBody, "missing Authorization"},
		{"not sigv4", "POST", "/model/m/invoke", map[string]string{"Authorization": "Bearer x"}, "{}", "not SigV4"},
		{"wrong content type", "POST", "/model/m/converse", map[string]string{"Authorization": auth, "Content-Type": "text/plain"}, okBody, "Content-Type"},
		{"no messages", "POST", "/model/m/converse-stream", js, `{"system":[]}`, `no "messages" array`},
		{"messages not array", "POST", "/model/m/converse-stream", js, `{"messages":{}}`, `no "messages" array`},
		{"not json", "POST", "/model/m/converse", js, `hello`, "not a JSON object"},
	}
	for i, tc := range cases {
		status, hdr, body := rawPost(t, tc.method, srv.URL+tc.path, tc.hdr, tc.body)
		if status != 400 || hdr.Get("X-Amzn-Errortype") != "ValidationException" {
			t.Errorf("%s: status %d type %q body %s", tc.name, status, hdr.Get("X-Amzn-Errortype"), body)
			continue
		}
		var msg struct{ Message string }
		if err := json.Unmarshal([]byte(body), &msg); err != nil ||
			!strings.HasPrefix(msg.Message, "fake: ") || !strings.Contains(msg.Message, tc.wantMsg) {
			t.Errorf("%s: body %s, want message containing %q", tc.name, body, tc.wantMsg)
		}
		if want := fmt.Sprintf("fake-%08d", i+1); hdr.Get("X-Amzn-Requestid") != want {
			t.Errorf("%s: request id %q, want %q", tc.name, hdr.Get("X-Amzn-Requestid"), want)
		}
	}
	if n := srv.CallCount(); n != len(cases) {
		t.Fatalf("CallCount = %d, want %d (rejected calls are recorded)", n, len(cases))
	}
	if c := srv.Calls()[2]; c.Operation != "ConverseStream" || c.ModelID != "" {
		t.Errorf("empty-model call recorded as %+v", c)
	}

	// The queued response was not consumed by the rejected calls.
	evs, err := converse(t, newClient(srv))
	if err != nil || describe(evs)[1] != "delta:kept for the valid call" {
		t.Fatalf("valid call: %v %v", describe(evs), err)
	}
}

func TestNewServerAddr(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0", "[::]:0", "example.com:0", "nonsense"} {
		if srv, err := NewServer(WithAddr(addr)); err == nil {
			srv.Close()
			t.Errorf("NewServer(%q) succeeded, want error", addr)
		} else if !strings.Contains(err.Error(), "fake:") {
			t.Errorf("NewServer(%q) error %v", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0"} {
		srv, err := NewServer(WithAddr(addr))
		if err != nil {
			t.Fatalf("NewServer(%q): %v", addr, err)
		}
		if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
			t.Errorf("URL = %q", srv.URL)
		}
		srv.Close()
		srv.Close() // idempotent
	}
}

func TestStreamFaults(t *testing.T) {
	corrupt := Frame(eventMessage("contentBlockDelta", `{"contentBlockIndex":0,"delta":{"text":"x"}}`))
	corrupt[len(corrupt)-6] ^= 0xff // flip a payload byte: message CRC mismatch

	cases := []struct {
		name    string
		steps   []Step
		wantErr string
	}{
		{"reset", []Step{MessageStart(), TextDelta("a"), Reset()}, ""},
		{"reset mid-frame", []Step{MessageStart(), Raw(TextDelta("a").data[:20]), Reset()}, ""},
		// The generations' decoders reject it differently: "message prelude
		// length invalid" (per-operation), "decode event: message checksum
		// mismatch" (schema serde).
		{"garbage", []Step{MessageStart(), Raw([]byte("this is not an event-stream frame"))}, "length invalid|checksum mismatch"},
		{"crc", []Step{MessageStart(), Raw(corrupt)}, "checksum"},
	}
	srv := newServer(t)
	c := newClient(srv)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv.Enqueue(Response{Steps: tc.steps})
			evs, err := converse(t, c)
			if len(evs) == 0 {
				t.Errorf("no events before the fault")
			}
			if err == nil || !slices.ContainsFunc(strings.Split(tc.wantErr, "|"), func(w string) bool { return strings.Contains(err.Error(), w) }) {
				t.Fatalf("err = %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}

func eventMessage(eventType, payload string) (m eventstream.Message) {
	m.Headers.Set(":message-type", eventstream.StringValue("event"))
	m.Headers.Set(":event-type", eventstream.StringValue(eventType))
	m.Headers.Set(":content-type", eventstream.StringValue("application/json"))
	m.Payload = []byte(payload)
	return m
}

func TestCut(t *testing.T) {
	srv := newServer(t)
	srv.SetDefault(Response{Steps: []Step{MessageStart(), TextDelta("a"), Cut()}})

	// A plain HTTP client sees the unterminated chunked body.
	req, _ := http.NewRequest("POST", srv.URL+"/model/m/converse-stream",
		strings.NewReader(`{"messages":[]}`))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 x")
	req.Header.Set("Content-Type", "application/json")
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read err = %v, want io.ErrUnexpectedEOF", err)
	}
	if want := append(MessageStart().data, TextDelta("a").data...); !bytes.Equal(b, want) {
		t.Fatalf("body before cut = %q, want the two frames", b)
	}

	// Through the SDK the events before the cut arrive and the stream ends
	// without messageStop. (smithy-go's event-stream decoder treats
	// io.ErrUnexpectedEOF like io.EOF, so st.Err() may well be nil here:
	// truncation is only visible as the missing terminal events.)
	evs, err := converse(t, newClient(srv))
	if got := strings.Join(describe(evs), " "); got != "start:assistant delta:a" {
		t.Fatalf("events = %s", got)
	}
	t.Logf("SDK stream error after Cut: %v", err)
}

func TestPause(t *testing.T) {
	srv := newServer(t)
	srv.Enqueue(Response{Steps: []Step{MessageStart(), Pause(50 * time.Millisecond), TextDelta("late")}})
	start := time.Now()
	evs, err := converse(t, newClient(srv))
	if err != nil || strings.Join(describe(evs), " ") != "start:assistant delta:late" {
		t.Fatalf("events %v err %v", describe(evs), err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("pause not honoured: %v", d)
	}
}

// TestCloseEndsPauseAndHang checks that Close returns promptly while
// responses are paused or hung, and that the client streams then end.
func TestCloseEndsPauseAndHang(t *testing.T) {
	for _, last := range []Step{Pause(time.Hour), Hang()} {
		srv, err := NewServer()
		if err != nil {
			t.Fatal(err)
		}
		srv.Enqueue(Response{Steps: []Step{MessageStart(), last, TextDelta("never")}})
		out, err := newClient(srv).ConverseStream(context.Background(), converseInput())
		if err != nil {
			srv.Close()
			t.Fatal(err)
		}
		st := out.GetStream()
		if ev := <-st.Events(); ev == nil {
			t.Fatalf("no first event")
		}
		closed := make(chan struct{})
		go func() { srv.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Fatalf("Close blocked by an in-flight paused/hung response")
		}
		for ev := range st.Events() {
			t.Errorf("unexpected event after Close: %T", ev)
		}
		// The body was cut, not finished; smithy-go reports that as a clean
		// end (see TestCut), so only log the error.
		t.Logf("stream error after Close: %v", st.Err())
		st.Close()
	}
}

// TestHangEndsOnClientDisconnect checks that a hung handler returns when the
// client goes away, before Close.
func TestHangEndsOnClientDisconnect(t *testing.T) {
	srv := newServer(t)
	srv.Enqueue(Response{Steps: []Step{MessageStart(), Hang()}})
	out, err := newClient(srv).ConverseStream(context.Background(), converseInput())
	if err != nil {
		t.Fatal(err)
	}
	st := out.GetStream()
	<-st.Events()
	st.Close()

	deadline := time.Now().Add(5 * time.Second)
	for {
		srv.mu.Lock()
		n := len(srv.conns)
		srv.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d server connections still open after the client went away", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestConverseHelpersPayloads(t *testing.T) {
	// The helpers produce exactly the documented JSON payloads.
	want := []string{
		`{"role":"assistant"}`,
		`{"contentBlockIndex":0,"delta":{"text":"a\"b"}}`,
		`{"contentBlockIndex":0}`,
		`{"stopReason":"end_turn"}`,
		`{"usage":{"inputTokens":1,"outputTokens":1,"totalTokens":2},"metrics":{"latencyMs":1}}`,
	}
	steps := ConverseText(`a"b`)
	if len(steps) != len(want) {
		t.Fatalf("%d steps", len(steps))
	}
	for i, st := range steps {
		p := st.data[len(st.data)-4-len(want[i]) : len(st.data)-4]
		if string(p) != want[i] {
			t.Errorf("step %d payload %s, want %s", i, p, want[i])
		}
	}
	if p := Chunk([]byte("hi")).data; !bytes.Contains(p, []byte(`{"bytes":"aGk="}`)) {
		t.Errorf("chunk frame %q", p)
	}
}

func TestResponseDelay(t *testing.T) {
	srv := newServer(t, WithResponseDelay(40*time.Millisecond))
	srv.SetDefault(Response{Body: []byte(`{}`)})
	c := newClient(srv)
	start := time.Now()
	if _, err := c.InvokeModel(context.Background(), &bedrockruntime.InvokeModelInput{ModelId: aws.String("m"), Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Fatalf("answered after %v, want >= 40ms", d)
	}

	// Close interrupts a pending delay.
	slow, err := NewServer(WithResponseDelay(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	slow.SetDefault(Response{Body: []byte(`{}`)})
	errc := make(chan error, 1)
	go func() {
		_, err := newClient(slow).InvokeModel(context.Background(), &bedrockruntime.InvokeModelInput{ModelId: aws.String("m"), Body: []byte(`{}`)})
		errc <- err
	}()
	for slow.CallCount() == 0 {
		time.Sleep(time.Millisecond)
	}
	slow.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("call succeeded although the server closed during the delay")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not interrupt the response delay")
	}
}

func TestMaxRecordedCallsKeepsTheMostRecent(t *testing.T) {
	srv := newServer(t, WithMaxRecordedCalls(2))
	srv.SetDefault(Response{Body: []byte(`{}`)})
	c := newClient(srv)
	for i := 0; i < 5; i++ {
		if _, err := c.InvokeModel(context.Background(), &bedrockruntime.InvokeModelInput{ModelId: aws.String("m"), Body: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	calls := srv.Calls()
	if srv.CallCount() != 5 || len(calls) != 2 || calls[0].N != 4 || calls[1].N != 5 || calls[1].RequestID != "fake-00000005" {
		t.Fatalf("count %d, recorded %d: %+v", srv.CallCount(), len(calls), calls)
	}
}
