package classify

import (
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	smithy "github.com/aws/smithy-go"
)

// bedrockRuntimeSource names where the Bedrock Runtime rows come from.
const bedrockRuntimeSource = "Amazon Bedrock API Reference, runtime data types ResponseStream " +
	"(https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ResponseStream.html) and " +
	"ConverseStreamOutput (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStreamOutput.html): " +
	"the HTTP status documented for each stream exception member; retry advice from the same pages " +
	"(modelStreamErrorException: \"Retry your request\")"

// bedrockRuntimeTable returns the table for Amazon Bedrock Runtime
// (ConverseStream, InvokeModelWithResponseStream).
//
//	:exception-type              HTTP  retry  throttle
//	internalServerException       500  yes    no
//	serviceUnavailableException   503  yes    no
//	throttlingException           429  yes    yes
//	modelStreamErrorException     424  yes    when originalStatusCode is 429
//	modelTimeoutException         408  yes    no
//	validationException           400  no     no
func bedrockRuntimeTable() Table {
	return Table{
		ServiceID: "Bedrock Runtime",
		Source:    bedrockRuntimeSource,
		Rules: []Rule{
			{
				Type:    "internalServerException",
				Outcome: Outcome{Code: "InternalServerException", Status: 500, Retryable: true, Fault: smithy.FaultServer},
				Decode:  JSON[types.InternalServerException](),
			},
			{
				Type:    "serviceUnavailableException",
				Outcome: Outcome{Code: "ServiceUnavailableException", Status: 503, Retryable: true, Fault: smithy.FaultServer},
				Decode:  JSON[types.ServiceUnavailableException](),
			},
			{
				Type:    "throttlingException",
				Outcome: Outcome{Code: "ThrottlingException", Status: 429, Retryable: true, Throttle: true, Fault: smithy.FaultClient},
				Decode:  JSON[types.ThrottlingException](),
			},
			{
				Type:    "modelStreamErrorException",
				Outcome: Outcome{Code: "ModelStreamErrorException", Status: 424, Retryable: true, Fault: smithy.FaultClient},
				Decode:  JSON[types.ModelStreamErrorException](),
				Refine: func(modeled error, o *Outcome) {
					if e, ok := modeled.(*types.ModelStreamErrorException); ok && e.OriginalStatusCode != nil && *e.OriginalStatusCode == 429 {
						o.Throttle = true
					}
				},
			},
			{
				Type:    "modelTimeoutException",
				Outcome: Outcome{Code: "ModelTimeoutException", Status: 408, Retryable: true, Fault: smithy.FaultClient},
				Decode:  JSON[types.ModelTimeoutException](),
			},
			{
				Type:    "validationException",
				Outcome: Outcome{Code: "ValidationException", Status: 400, Fault: smithy.FaultClient},
				Decode:  JSON[types.ValidationException](),
			},
		},
	}
}
