package middleware

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
)

// TestAdaptiveSeesThroughTheSDKsWrappers: a client is adaptive when its
// RetryMode says so or its retryer is a retry.AdaptiveMode, alone or inside
// the SDK's wrappers, which embed what they wrap.
func TestAdaptiveSeesThroughTheSDKsWrappers(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    bedrockruntime.Options
		want bool
	}{
		{"RetryMode adaptive", bedrockruntime.Options{RetryMode: aws.RetryModeAdaptive}, true},
		{"NewAdaptiveMode", bedrockruntime.Options{Retryer: retry.NewAdaptiveMode()}, true},
		{"wrapped twice", bedrockruntime.Options{Retryer: retry.AddWithMaxAttempts(retry.AddWithErrorCodes(retry.NewAdaptiveMode(), "Busy"), 3)}, true},
		{"NewStandard wrapped", bedrockruntime.Options{Retryer: retry.AddWithMaxAttempts(retry.NewStandard(), 3)}, false},
		{"no retryer", bedrockruntime.Options{}, false},
		{"a retryer of another kind", bedrockruntime.Options{Retryer: aws.NopRetryer{}}, false},
	} {
		if got := adaptive(&tc.o); got != tc.want {
			t.Errorf("%s: adaptive = %v, want %v", tc.name, got, tc.want)
		}
	}
}
