package backoff_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/streamstatus/streamstatus/backoff"
)

// TestDefect_X2NegativeBudgetDurationsSilentlyAccepted: NewBudget promises
// that a budget it cannot use fails every retryer's first call "saying
// which field to fix" (it does so for a Jitter outside [0, 1]), and the
// house rule is no configuration that silently does less than it says. A
// negative MaxElapsed (a sign slip, or a computed deadline already past)
// silently means "no elapsed-time limit at all", and a negative
// Transient.Initial silently means no backoff: the retryer's first call
// goes through with no error for either.
func TestDefect_X2NegativeBudgetDurationsSilentlyAccepted(t *testing.T) {
	for field, fn := range map[string]func(*backoff.Budget){
		"MaxElapsed": func(b *backoff.Budget) { b.MaxElapsed = -30 * time.Second },
		"Transient.Initial": func(b *backoff.Budget) {
			b.Transient = backoff.Shape{Initial: -time.Second, Max: time.Second, Multiplier: 2}
		},
	} {
		b := backoff.NewBudget(fn)
		_, err := b.NewStandard().GetAttemptToken(context.Background())
		if err == nil || !strings.Contains(err.Error(), field) {
			d, _ := b.BackoffDelay(1, context.DeadlineExceeded)
			t.Errorf("budget with a negative %s: first GetAttemptToken err = %v (retry delay %v); want an error naming %s", field, err, d, field)
		}
	}
}
