package middleware

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"

	"github.com/streamstatus/streamstatus/backoff"
)

// w2Logged is a user's retryer wrapper held by value (value receivers), a
// common way to decorate the SDK's retryer.
type w2Logged struct{ aws.RetryerV2 }

// w2V1 is a user's wrapper written against aws.Retryer (the V1 interface):
// the SDK's retry.AddWithMaxAttempts wraps it in its own value-typed
// wrappedAsRetryerV2.
type w2V1 struct{ aws.Retryer }

// w2HoldsAdaptive reports whether v holds a *retry.AdaptiveMode through
// interface and pointer fields of any struct.
func w2HoldsAdaptive(v reflect.Value, depth int) bool {
	for depth < 32 && (v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer) {
		if v.IsNil() {
			return false
		}
		if v.Type() == reflect.TypeFor[*retry.AdaptiveMode]() {
			return true
		}
		v, depth = v.Elem(), depth+1
	}
	if v.Kind() != reflect.Struct || depth >= 32 {
		return false
	}
	for i := range v.NumField() {
		if f := v.Field(i); (f.Kind() == reflect.Interface || f.Kind() == reflect.Pointer) && w2HoldsAdaptive(f, depth+1) {
			return true
		}
	}
	return false
}

// TestDefect_AdaptiveWrappedByValueNotSeen: the README says WithBedrock
// installs budget.NewAdaptive() when the client has "a
// retry.NewAdaptiveMode() retryer, wrapped or not". A wrapper held by value
// (the user's own, or the SDK's wrappedAsRetryerV2 that
// retry.AddWithMaxAttempts puts around a V1 retryer) stops the reflection
// walk (it follows pointers only): the adaptive client gets
// budget.NewStandard(), its client-side rate limiter silently dropped.
func TestDefect_AdaptiveWrappedByValueNotSeen(t *testing.T) {
	b := backoff.NewBudget()
	for _, tc := range []struct {
		name string
		r    aws.Retryer
	}{
		{"user wrapper by value", w2Logged{retry.NewAdaptiveMode()}},
		{"V1 wrapper under retry.AddWithMaxAttempts", retry.AddWithMaxAttempts(&w2V1{retry.NewAdaptiveMode()}, 3)},
	} {
		if !w2HoldsAdaptive(reflect.ValueOf(tc.r), 0) {
			t.Fatalf("%s: the client's retryer holds no adaptive mode", tc.name)
		}
		o := bedrockruntime.Options{Retryer: tc.r}
		WithBedrock(WithBudget(b))(&o)
		if !w2HoldsAdaptive(reflect.ValueOf(o.Retryer), 0) {
			t.Errorf("%s: retry.NewAdaptiveMode() wrapped, WithBedrock(WithBudget(b)) installed %T without the adaptive mode; README: budget.NewAdaptive() for \"a retry.NewAdaptiveMode() retryer, wrapped or not\"", tc.name, o.Retryer)
		}
	}
}

// w2Base and w2Outer: a user's retryer that embeds a pointer to a struct
// that embeds aws.Retryer, the pointer nil (outer
// implements every method itself).
type w2Base struct{ aws.Retryer }

type w2Outer struct {
	*w2Base
	inner aws.RetryerV2
}

func (w *w2Outer) IsErrorRetryable(err error) bool { return w.inner.IsErrorRetryable(err) }
func (w *w2Outer) MaxAttempts() int                { return w.inner.MaxAttempts() }
func (w *w2Outer) RetryDelay(a int, err error) (time.Duration, error) {
	return w.inner.RetryDelay(a, err)
}
func (w *w2Outer) GetRetryToken(ctx context.Context, err error) (func(error) error, error) {
	return w.inner.GetRetryToken(ctx, err)
}
func (w *w2Outer) GetInitialToken() func(error) error { return w.inner.GetInitialToken() }
func (w *w2Outer) GetAttemptToken(ctx context.Context) (func(error) error, error) {
	return w.inner.GetAttemptToken(ctx)
}

// TestDefect_AdaptiveWalkPanicsOnNilEmbeddedPointer: the walk takes
// FieldByName("Retryer") and reads it with FieldByIndex, which panics when
// the field is promoted through a nil embedded pointer: WithBedrock panics
// while building the client (or on every call, per call).
func TestDefect_AdaptiveWalkPanicsOnNilEmbeddedPointer(t *testing.T) {
	o := bedrockruntime.Options{Retryer: &w2Outer{inner: retry.NewStandard()}}
	defer func() {
		if p := recover(); p != nil {
			t.Errorf("WithBedrock(WithBudget(b)) on a client whose retryer embeds a nil *struct with a Retryer field: panic: %v", p)
		}
	}()
	WithBedrock(WithBudget(backoff.NewBudget()))(&o)
}
