package middleware_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	smithymiddleware "github.com/aws/smithy-go/middleware"

	"github.com/streamstatus/streamstatus/backoff"
	"github.com/streamstatus/streamstatus/classify"
	"github.com/streamstatus/streamstatus/middleware"
)

// stackOf builds the stack of one bedrockruntime operation with the given
// API options, and stops before anything is sent.
func stackOf(t *testing.T, op string, apiOptions ...func(*smithymiddleware.Stack) error) (string, error) {
	t.Helper()
	var got string
	errStop := errors.New("stop before sending")
	record := func(s *smithymiddleware.Stack) error {
		got = s.String()
		return errStop
	}
	c := bedrockruntime.New(bedrockruntime.Options{Region: "us-east-1", Credentials: aws.AnonymousCredentials{}})
	opt := func(o *bedrockruntime.Options) { o.APIOptions = append(append(o.APIOptions, apiOptions...), record) }
	var err error
	ctx := context.Background()
	switch op {
	case "ConverseStream":
		_, err = c.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{ModelId: aws.String("m")}, opt)
	case "InvokeModelWithResponseStream":
		_, err = c.InvokeModelWithResponseStream(ctx, &bedrockruntime.InvokeModelWithResponseStreamInput{ModelId: aws.String("m")}, opt)
	case "InvokeModel":
		_, err = c.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{ModelId: aws.String("m")}, opt)
	case "Converse":
		_, err = c.Converse(ctx, &bedrockruntime.ConverseInput{ModelId: aws.String("m")}, opt)
	case "InvokeModelWithBidirectionalStream":
		// From bedrockruntime v1.50.0; called by reflection so that the tests
		// build on the older versions go.mod allows.
		m := reflect.ValueOf(c).MethodByName(op)
		if !m.IsValid() {
			t.Skipf("this bedrockruntime has no %s (added in v1.50.0)", op)
		}
		in := reflect.New(m.Type().In(1).Elem())
		in.Elem().FieldByName("ModelId").Set(reflect.ValueOf(aws.String("m")))
		err, _ = m.Call([]reflect.Value{reflect.ValueOf(ctx), in, reflect.ValueOf(opt)})[1].Interface().(error)
	default:
		t.Fatalf("unknown op %s", op)
	}
	if errors.Is(err, errStop) {
		err = nil
	}
	return got, err
}

func TestInstallPlacesBothMiddlewaresOnResponseStreams(t *testing.T) {
	for _, op := range []string{"ConverseStream", "InvokeModelWithResponseStream"} {
		t.Run(op, func(t *testing.T) {
			stack, err := stackOf(t, op, middleware.APIOption())
			if err != nil {
				t.Fatal(err)
			}
			// Placement: finalize right inside Retry; deserialize right inside
			// the SDK's event-stream deserializer, and the read-ahead's wait
			// right outside it. (What follows Retry's neighbour differs by
			// SDK version: InterceptAttempt from v1.32.)
			for _, seq := range [][]string{
				{"Retry", middleware.FinalizeID},
				{"streamstatus.AwaitReadAhead", "OperationEventStreamDeserializer", middleware.DeserializeID},
			} {
				if !strings.Contains(stack, strings.Join(seq, "\n\t\t")) {
					t.Errorf("stack lacks the sequence %v:\n%s", seq, stack)
				}
			}
		})
	}
}

func TestInstallStepsAsideWithoutAResponseStream(t *testing.T) {
	for _, op := range []string{"InvokeModel", "Converse", "InvokeModelWithBidirectionalStream"} {
		t.Run(op, func(t *testing.T) {
			stack, err := stackOf(t, op, middleware.APIOption())
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(stack, "streamstatus") {
				t.Fatalf("streamstatus installed on %s:\n%s", op, stack)
			}
		})
	}
}

func TestInstallTwiceInstallsOnce(t *testing.T) {
	stack, err := stackOf(t, "ConverseStream", middleware.APIOption(), middleware.APIOption())
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(stack, middleware.DeserializeID); n != 1 {
		t.Fatalf("%d deserialize middlewares, want 1", n)
	}
}

func TestInstallWithoutRetryFailsClearly(t *testing.T) {
	removeRetry := func(s *smithymiddleware.Stack) error {
		_, err := s.Finalize.Remove("Retry")
		return err
	}
	_, err := stackOf(t, "ConverseStream", removeRetry, middleware.APIOption())
	if err == nil || !strings.Contains(err.Error(), `no "Retry" finalize middleware`) {
		t.Fatalf("want a clear error naming the missing Retry middleware, got %v", err)
	}
}

func TestAppendMiddlewaresAddsOneAPIOption(t *testing.T) {
	var cfg aws.Config
	middleware.AppendMiddlewares(&cfg.APIOptions)
	if len(cfg.APIOptions) != 1 {
		t.Fatalf("%d API options, want 1", len(cfg.APIOptions))
	}
	stack, err := stackOf(t, "ConverseStream", cfg.APIOptions...)
	if err != nil || !strings.Contains(stack, middleware.DeserializeID) {
		t.Fatalf("AppendMiddlewares did not install: %v\n%s", err, stack)
	}
}

// TestInstallWithABudgetPutsTheBudgetOnEveryOperation: the budget is the
// client's retryer, so with WithBudget every operation gets the call state
// and the retryer check; only streaming ones get the stream middlewares.
// An earlier install without a budget, then one with, does the same; so do
// a later one that changes other options, and a later budget (which
// replaces the earlier one).
func TestInstallWithABudgetPutsTheBudgetOnEveryOperation(t *testing.T) {
	b := backoff.NewBudget()
	for _, tc := range []struct {
		name string
		opts []func(*smithymiddleware.Stack) error
	}{
		{"once", []func(*smithymiddleware.Stack) error{middleware.APIOption(middleware.WithBudget(b))}},
		{"after one without", []func(*smithymiddleware.Stack) error{middleware.APIOption(), middleware.APIOption(middleware.WithBudget(b))}},
		{"before one without", []func(*smithymiddleware.Stack) error{middleware.APIOption(middleware.WithBudget(b)),
			middleware.APIOption(middleware.WithClassifier(classify.New(classify.DefaultTables()...)))}},
		{"then another budget", []func(*smithymiddleware.Stack) error{middleware.APIOption(middleware.WithBudget(backoff.NewBudget())),
			middleware.APIOption(middleware.WithBudget(b))}},
	} {
		for _, op := range []string{"InvokeModel", "Converse", "InvokeModelWithBidirectionalStream", "ConverseStream"} {
			t.Run(tc.name+"/"+op, func(t *testing.T) {
				stack, err := stackOf(t, op, tc.opts...)
				if err != nil {
					t.Fatal(err)
				}
				for _, seq := range [][]string{{"Retry", middleware.FinalizeID}, {backoff.CallStartID}} {
					if strings.Count(stack, strings.Join(seq, "\n\t\t")) != 1 {
						t.Errorf("stack lacks one sequence %v:\n%s", seq, stack)
					}
				}
				streaming := op == "ConverseStream"
				if strings.Contains(stack, middleware.DeserializeID) != streaming {
					t.Errorf("stream middlewares installed: %v, want %v:\n%s", !streaming, streaming, stack)
				}
			})
		}
	}
}
