package classify

import smithy "github.com/aws/smithy-go"

// genericSource names where the generic rows come from.
const genericSource = "AWS common errors (https://docs.aws.amazon.com/bedrock/latest/APIReference/CommonErrors.html) " +
	"and aws-sdk-go-v2 aws/retry DefaultThrottleErrorCodes / DefaultRetryableErrorCodes"

// genericTable returns the rows that apply to every AWS service: codes from
// the AWS common-errors list and the SDK's own throttle and retryable code
// sets. They classify :error-code messages and exceptions of services that
// have no table of their own.
func genericTable() Table {
	server := func(code string, status int) Rule {
		return Rule{Type: code, Outcome: Outcome{Code: code, Status: status, Retryable: true, Fault: smithy.FaultServer}}
	}
	throttle := func(code string) Rule {
		return Rule{Type: code, Outcome: Outcome{Code: code, Status: 429, Retryable: true, Throttle: true, Fault: smithy.FaultClient}}
	}
	client := func(code string, status int) Rule {
		return Rule{Type: code, Outcome: Outcome{Code: code, Status: status, Fault: smithy.FaultClient}}
	}
	return Table{
		Source: genericSource,
		Rules: []Rule{
			server("InternalFailure", 500),
			server("InternalServerError", 500),
			server("InternalServerException", 500),
			server("ServiceUnavailable", 503),
			server("ServiceUnavailableException", 503),
			{Type: "RequestTimeout", Outcome: Outcome{Code: "RequestTimeout", Status: 408, Retryable: true, Fault: smithy.FaultServer}},
			{Type: "RequestTimeoutException", Outcome: Outcome{Code: "RequestTimeoutException", Status: 408, Retryable: true, Fault: smithy.FaultServer}},
			throttle("Throttling"),
			throttle("ThrottlingException"),
			throttle("ThrottledException"),
			throttle("RequestThrottledException"),
			throttle("TooManyRequestsException"),
			throttle("ProvisionedThroughputExceededException"),
			throttle("TransactionInProgressException"),
			throttle("RequestLimitExceeded"),
			throttle("BandwidthLimitExceeded"),
			throttle("LimitExceededException"),
			throttle("RequestThrottled"),
			throttle("SlowDown"),
			throttle("PriorRequestNotComplete"),
			throttle("EC2ThrottledException"),
			client("ValidationException", 400),
			client("ValidationError", 400),
			client("SerializationException", 400),
			client("AccessDeniedException", 403),
			client("UnrecognizedClientException", 403),
			client("ExpiredTokenException", 403),
			client("ResourceNotFoundException", 404),
			client("ServiceQuotaExceededException", 400),
		},
	}
}
