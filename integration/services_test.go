package integration_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentruntime"
	agenttypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentruntime/types"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemakerruntime/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	smithy "github.com/aws/smithy-go"
	smithymiddleware "github.com/aws/smithy-go/middleware"

	"github.com/streamstatus/streamstatus/classify"
	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/middleware"
	"github.com/streamstatus/streamstatus/smithyext"
)

// configWideFor returns a config with the middlewares installed config-wide
// (or not, for how == bare).
func configWideFor(srv *fake.Server, how install, opts ...middleware.Option) aws.Config {
	cfg := testConfig(srv, 3)
	if how != bare {
		middleware.AppendMiddlewares(&cfg.APIOptions, opts...)
	}
	return cfg
}

func runSageMaker(c *sagemakerruntime.Client) result {
	out, err := c.InvokeEndpointWithResponseStream(context.Background(), &sagemakerruntime.InvokeEndpointWithResponseStreamInput{
		EndpointName: aws.String("my-endpoint"), Body: []byte(`{"inputs":"hi"}`), ContentType: aws.String("application/json"),
	})
	if err != nil {
		return result{callErr: err}
	}
	return collect(out.GetStream(), renderPayloadPart)
}

func runAgent(c *bedrockagentruntime.Client) result {
	out, err := c.InvokeAgent(context.Background(), &bedrockagentruntime.InvokeAgentInput{
		AgentId: aws.String("AGENT1"), AgentAliasId: aws.String("ALIAS1"), SessionId: aws.String("session-1"), InputText: aws.String("hi"),
	})
	if err != nil {
		return result{callErr: err}
	}
	return collect(out.GetStream(), renderAgentChunk)
}

func TestSageMakerRuntimeConfigWide(t *testing.T) {
	t.Run("InternalStreamFailure before content is retried", func(t *testing.T) {
		srv := newServer(t)
		srv.Enqueue(
			fake.Response{Steps: []fake.Step{fake.Exception("InternalStreamFailure", "try again")}},
			fake.Response{Steps: []fake.Step{fake.PayloadPart([]byte("a")), fake.PayloadPart([]byte("b"))}},
		)
		res := runSageMaker(sagemakerruntime.NewFromConfig(configWideFor(srv, configWide)))
		if res.callErr != nil || res.streamErr != nil || strings.Join(res.events, ",") != "part:a,part:b" || srv.CallCount() != 2 {
			t.Fatalf("call %v stream %v events %q calls %d", res.callErr, res.streamErr, res.events, srv.CallCount())
		}
	})
	t.Run("ModelStreamError StreamBroken after content is typed", func(t *testing.T) {
		srv := newServer(t)
		srv.Enqueue(fake.Response{Steps: []fake.Step{fake.PayloadPart([]byte("a")), fake.PayloadPart([]byte("b")),
			fake.SageMakerModelStreamError("StreamBroken", "connection reset")}})
		res := runSageMaker(sagemakerruntime.NewFromConfig(configWideFor(srv, configWide)))
		var se *smithyext.StatusError
		var mse *smtypes.ModelStreamError
		if res.callErr != nil || !errors.As(res.streamErr, &se) || se.Status != 400 || !se.Retryable || se.Events != 2 ||
			se.Code != "ModelStreamError" || se.Service != "SageMaker Runtime" || !errors.As(res.streamErr, &mse) ||
			mse.ErrorCode_ == nil || *mse.ErrorCode_ != "StreamBroken" || srv.CallCount() != 1 {
			t.Fatalf("call %v stream %v (%+v) calls %d", res.callErr, res.streamErr, mse, srv.CallCount())
		}
	})
	t.Run("ModelInvocationTimeExceeded before content fails at once", func(t *testing.T) {
		srv := newServer(t)
		srv.SetDefault(fake.Response{Steps: []fake.Step{fake.SageMakerModelStreamError("ModelInvocationTimeExceeded", "too slow")}})
		res := runSageMaker(sagemakerruntime.NewFromConfig(configWideFor(srv, configWide)))
		if got, _ := statusOf(res.callErr); got != 400 || srv.CallCount() != 1 || classify.Classify(res.callErr).Retryable {
			t.Fatalf("err %v status %d calls %d", res.callErr, got, srv.CallCount())
		}
	})
	t.Run("bare SDK control", func(t *testing.T) {
		srv := serverFor(t, bare)
		srv.Enqueue(
			fake.Response{Steps: []fake.Step{fake.Exception("InternalStreamFailure", "try again")}},
			fake.Response{Steps: []fake.Step{fake.PayloadPart([]byte("a"))}},
		)
		res := runSageMaker(sagemakerruntime.NewFromConfig(configWideFor(srv, bare)))
		if res.callErr != nil || !as[*smtypes.InternalStreamFailure](res.streamErr) || srv.CallCount() != 1 {
			t.Fatalf("bare: call %v stream %v calls %d", res.callErr, res.streamErr, srv.CallCount())
		}
	})
}

func TestBedrockAgentRuntimeConfigWide(t *testing.T) {
	t.Run("throttlingException before content is retried", func(t *testing.T) {
		srv := newServer(t)
		srv.Enqueue(
			fake.Response{Steps: []fake.Step{fake.Exception("throttlingException", "slow down")}},
			fake.Response{Steps: []fake.Step{fake.AgentChunk("Hello "), fake.AgentChunk("agent")}},
		)
		res := runAgent(bedrockagentruntime.NewFromConfig(configWideFor(srv, configWide)))
		if res.callErr != nil || res.streamErr != nil || strings.Join(res.events, ",") != "chunk:Hello ,chunk:agent" || srv.CallCount() != 2 {
			t.Fatalf("call %v stream %v events %q calls %d", res.callErr, res.streamErr, res.events, srv.CallCount())
		}
	})
	t.Run("badGatewayException after content is typed", func(t *testing.T) {
		srv := newServer(t)
		srv.Enqueue(fake.Response{Steps: []fake.Step{fake.AgentChunk("Hel"), fake.Exception("badGatewayException", "upstream failed")}})
		res := runAgent(bedrockagentruntime.NewFromConfig(configWideFor(srv, configWide)))
		var se *smithyext.StatusError
		if res.callErr != nil || !errors.As(res.streamErr, &se) || se.Status != 502 || !se.Retryable || se.Events != 1 ||
			se.Service != "Bedrock Agent Runtime" || !as[*agenttypes.BadGatewayException](res.streamErr) || srv.CallCount() != 1 {
			t.Fatalf("call %v stream %v calls %d", res.callErr, res.streamErr, srv.CallCount())
		}
	})
	t.Run("bare SDK control", func(t *testing.T) {
		srv := serverFor(t, bare)
		srv.Enqueue(
			fake.Response{Steps: []fake.Step{fake.Exception("throttlingException", "slow down")}},
			fake.Response{Steps: []fake.Step{fake.AgentChunk("x")}},
		)
		res := runAgent(bedrockagentruntime.NewFromConfig(configWideFor(srv, bare)))
		if res.callErr != nil || !as[*agenttypes.ThrottlingException](res.streamErr) || srv.CallCount() != 1 {
			t.Fatalf("bare: call %v stream %v calls %d", res.callErr, res.streamErr, srv.CallCount())
		}
	})
}

// recordStack is an API option that records the operation's stack.
func recordStack(into *string) func(*smithymiddleware.Stack) error {
	return func(s *smithymiddleware.Stack) error { *into = s.String(); return nil }
}

// TestNonStreamingOperationsUnaffected: with the middlewares installed
// config-wide, InvokeModel and sts:GetCallerIdentity get none of them and
// answer exactly as without the plugin.
func TestNonStreamingOperationsUnaffected(t *testing.T) {
	invoke := func(how install, script fake.Response) (string, string, int, error) {
		srv := serverFor(t, how)
		srv.Enqueue(script)
		cfg := configWideFor(srv, how)
		var stack string
		cfg.APIOptions = append(cfg.APIOptions, recordStack(&stack))
		out, err := bedrockruntime.NewFromConfig(cfg).InvokeModel(context.Background(), &bedrockruntime.InvokeModelInput{
			ModelId: aws.String("m"), Body: []byte(`{}`), ContentType: aws.String("application/json"),
		})
		body := ""
		if out != nil {
			body = string(out.Body)
		}
		return body, stack, srv.CallCount(), err
	}
	for name, script := range map[string]fake.Response{
		"ok":        {Body: []byte(`{"completion":"hi"}`)},
		"throttled": {Status: 429, ErrorType: "ThrottlingException", ErrorMessage: "slow"},
	} {
		t.Run("InvokeModel/"+name, func(t *testing.T) {
			wantBody, _, wantCalls, wantErr := invoke(bare, script)
			body, stack, calls, err := invoke(configWide, script)
			if strings.Contains(stack, "streamstatus") {
				t.Fatalf("streamstatus middleware on a non-streaming operation:\n%s", stack)
			}
			ws, _ := statusOf(wantErr)
			gs, _ := statusOf(err)
			if body != wantBody || calls != wantCalls || gs != ws || (err == nil) != (wantErr == nil) {
				t.Fatalf("plugin: %q %d calls status %d err %v; bare: %q %d calls status %d err %v", body, calls, gs, err, wantBody, wantCalls, ws, wantErr)
			}
		})
	}
	t.Run("sts.GetCallerIdentity", func(t *testing.T) {
		srv := newServer(t)
		srv.Enqueue(fake.Response{Body: fake.CallerIdentityXML("123456789012"), Header: map[string][]string{"Content-Type": {"text/xml"}}})
		cfg := configWideFor(srv, configWide)
		var stack string
		cfg.APIOptions = append(cfg.APIOptions, recordStack(&stack))
		out, err := sts.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
		if err != nil || aws.ToString(out.Account) != "123456789012" {
			t.Fatalf("GetCallerIdentity: %v %+v", err, out)
		}
		if strings.Contains(stack, "streamstatus") {
			t.Fatalf("streamstatus middleware on sts:\n%s", stack)
		}
	})
}

// TestOverridePerClient: one exception, two clients from one config: the
// default table treats validationException as permanent, an override makes
// it retryable for the other client only.
func TestOverridePerClient(t *testing.T) {
	retryableValidation := classify.New(append(classify.DefaultTables(), classify.Table{
		ServiceID: "Bedrock Runtime",
		Source:    "test: this proxy's validation errors are transient",
		Rules: []classify.Rule{{Type: "validationException",
			Outcome: classify.Outcome{Code: "ValidationException", Status: 400, Retryable: true, Fault: smithy.FaultServer}}},
	})...)
	script := []fake.Response{{Steps: []fake.Step{fake.Exception("validationException", "flaky proxy")}}, {Steps: []fake.Step{fake.Chunk([]byte("ok"))}}}

	srv := newServer(t)
	srv.Enqueue(script...)
	res := invokeStream.run(context.Background(), newClient(srv, clientOption, 3))
	if got, _ := statusOf(res.callErr); got != 400 || srv.CallCount() != 1 {
		t.Fatalf("default: err %v calls %d", res.callErr, srv.CallCount())
	}

	srv2 := newServer(t)
	srv2.Enqueue(script...)
	res = invokeStream.run(context.Background(), newClient(srv2, clientOption, 3, middleware.WithClassifier(retryableValidation)))
	if res.callErr != nil || !equalStrings(res.events, []string{"chunk:ok"}) || srv2.CallCount() != 2 {
		t.Fatalf("override: err %v events %q calls %d", res.callErr, res.events, srv2.CallCount())
	}
}
