package main

import (
	"testing"

	"github.com/streamstatus/streamstatus/smithyext"
)

// TestReview20e_MutationMissesFailuresBeforeContent: mutateStatus must
// reach the call's error too: with faults before content only, a library
// whose call errors carry a wrong RequestID fails the check. (Once the
// read-ahead moved to the SDK's reader goroutine, a failure before content
// no longer passes the body wrapper inside the SDK's deserializer, so
// mutateStatus got a finalize middleware for the call's side.)
func TestReview20e_MutationMissesFailuresBeforeContent(t *testing.T) {
	code, out := runBroken(t, "throttling@0:attempts=all:p=0.5", nil,
		mutateStatus(func(se *smithyext.StatusError) { se.RequestID = "not-the-response-request-id" }))
	if code != exitFailed {
		t.Errorf("every StatusError before content carries a wrong RequestID; check exit %d, want %d:\n%.600s", code, exitFailed, out)
	}
}
