package classify

import smithy "github.com/aws/smithy-go"

// AnthropicServiceID is the ServiceID of the table of Anthropic error types,
// the ones found in error envelopes inside Bedrock chunk events. Override
// its rows like any table's (see New).
const AnthropicServiceID = "Anthropic"

// anthropicSource names where the Anthropic rows come from.
const anthropicSource = "Anthropic API documentation, \"Errors\" (https://docs.anthropic.com/en/api/errors): " +
	"the HTTP status published for each error type; 429 and 529 are the rate-limit and overload answers " +
	"clients are told to retry with backoff, 500 api_error is an unexpected internal error"

// anthropicTable returns the Anthropic error types with a published status.
// Types without one (for example timeout_error, billing_error) are not
// listed and are classified like unknown exceptions.
//
//	error.type             HTTP  retry  throttle
//	invalid_request_error   400  no     no
//	authentication_error    401  no     no
//	permission_error        403  no     no
//	not_found_error         404  no     no
//	request_too_large       413  no     no
//	rate_limit_error        429  yes    yes
//	api_error               500  yes    no
//	overloaded_error        529  yes    yes
func anthropicTable() Table {
	client := func(t string, status int) Rule {
		return Rule{Type: t, Outcome: Outcome{Code: t, Status: status, Fault: smithy.FaultClient}}
	}
	return Table{
		ServiceID: AnthropicServiceID,
		Source:    anthropicSource,
		Rules: []Rule{
			client("invalid_request_error", 400),
			client("authentication_error", 401),
			client("permission_error", 403),
			client("not_found_error", 404),
			client("request_too_large", 413),
			{Type: "rate_limit_error", Outcome: Outcome{Code: "rate_limit_error", Status: 429, Retryable: true, Throttle: true, Fault: smithy.FaultClient}},
			{Type: "api_error", Outcome: Outcome{Code: "api_error", Status: 500, Retryable: true, Fault: smithy.FaultServer}},
			{Type: "overloaded_error", Outcome: Outcome{Code: "overloaded_error", Status: 529, Retryable: true, Throttle: true, Fault: smithy.FaultServer}},
		},
	}
}
