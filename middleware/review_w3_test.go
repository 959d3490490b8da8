package middleware

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"

	"github.com/streamstatus/streamstatus/backoff"
)

// w3Adaptive is a user's wrapper that embeds the adaptive retryer it wraps
// (by its concrete type).
type w3Adaptive struct{ *retry.AdaptiveMode }

// TestDefect_W3AdaptiveEmbeddedByTypeNotSeen: the doc says the adaptive
// mode is seen inside "wrappers that embed the retryer they wrap"; a
// wrapper embedding *retry.AdaptiveMode is not seen (the walk only follows
// fields named RetryerV2 or Retryer), so WithBedrock(WithBudget(b))
// installs the standard budget retryer and the client's adaptive rate
// limiter is silently dropped.
func TestDefect_W3AdaptiveEmbeddedByTypeNotSeen(t *testing.T) {
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		Retryer:     func() aws.Retryer { return &w3Adaptive{retry.NewAdaptiveMode()} },
	}
	b := backoff.NewBudget()
	c := bedrockruntime.NewFromConfig(cfg, WithBedrock(WithBudget(b)))
	o := c.Options()
	if backoff.Of(o.Retryer) != b {
		t.Fatalf("installed retryer is not the budget's: %T", o.Retryer)
	}
	if !adaptive(&o) {
		t.Errorf("client retryer %T wraps retry.AdaptiveMode, but WithBedrock(WithBudget(b)) installed a standard-mode budget retryer", &w3Adaptive{})
	}
}
