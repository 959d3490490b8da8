package backoff_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/streamstatus/streamstatus/backoff"
)

// wrapsDelay asks the budget's retryer for the delay with the error
// wrapped, and wraps its error: the delay is still the budget's.
type wrapsDelay struct{ aws.RetryerV2 }

func (w wrapsDelay) RetryDelay(attempt int, err error) (time.Duration, error) {
	d, err := w.RetryerV2.RetryDelay(attempt, fmt.Errorf("attempt %d: %w", attempt, err))
	if err != nil {
		return 0, fmt.Errorf("no delay: %w", err)
	}
	return d, nil
}

// refusesWrapped refuses every retry itself, with the error wrapped,
// never asking the budget.
type refusesWrapped struct{ aws.RetryerV2 }

func (refusesWrapped) RetryDelay(_ int, err error) (time.Duration, error) {
	return 0, fmt.Errorf("no retries: %w", err)
}

// TestOfSeesThroughWrappedErrors: Of finds the budget through a wrapper
// that asks the budget's RetryDelay with the error wrapped and wraps the
// answer, as the budget's retryer counts that delay as its own; not
// through one that answers RetryDelay itself, even with the error it was
// given.
func TestOfSeesThroughWrappedErrors(t *testing.T) {
	b := backoff.NewBudget()
	if got := backoff.Of(wrapsDelay{b.NewStandard()}); got != b {
		t.Errorf("Of(wrapper asking the budget with the error wrapped) = %p, want %p", got, b)
	}
	if got := backoff.Of(refusesWrapped{b.NewStandard()}); got != nil {
		t.Errorf("Of(wrapper answering RetryDelay itself) = %p, want nil", got)
	}
}
