package classify

import (
	"encoding/json"

	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime/types"
	smithy "github.com/aws/smithy-go"
)

// sageMakerRuntimeSource names where the SageMaker Runtime rows come from.
const sageMakerRuntimeSource = "Amazon SageMaker API Reference, runtime data type ResponseStream " +
	"(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_ResponseStream.html): " +
	"ModelStreamError, HTTP 400, with error codes ModelInvocationTimeExceeded and StreamBroken; " +
	"InternalStreamFailure, HTTP 500, \"Try your request again\""

// sageMakerRuntimeTable returns the table for Amazon SageMaker Runtime
// (InvokeEndpointWithResponseStream).
//
//	:exception-type         HTTP  retry                         throttle
//	ModelStreamError         400  only with ErrorCode StreamBroken  no
//	InternalStreamFailure    500  yes                           no
//
// StreamBroken means the connection between SageMaker and the model was
// reset or closed: a transient fault, retried. ModelInvocationTimeExceeded
// means the model did not finish within SageMaker's time limit; sending the
// same request again costs another full invocation and usually times out
// again, so it is not retried (override the row to change that).
func sageMakerRuntimeTable() Table {
	return Table{
		ServiceID: "SageMaker Runtime",
		Source:    sageMakerRuntimeSource,
		Rules: []Rule{
			{
				Type:    "ModelStreamError",
				Outcome: Outcome{Code: "ModelStreamError", Status: 400, Fault: smithy.FaultClient},
				Decode: func(payload []byte) error {
					var body struct {
						Message   *string `json:"Message"`
						ErrorCode *string `json:"ErrorCode"`
					}
					_ = json.Unmarshal(payload, &body)
					return &types.ModelStreamError{Message: body.Message, ErrorCode_: body.ErrorCode}
				},
				Refine: func(modeled error, o *Outcome) {
					if e, ok := modeled.(*types.ModelStreamError); ok && e.ErrorCode_ != nil && *e.ErrorCode_ == "StreamBroken" {
						o.Retryable = true
						o.Fault = smithy.FaultServer
					}
				},
			},
			{
				Type:    "InternalStreamFailure",
				Outcome: Outcome{Code: "InternalStreamFailure", Status: 500, Retryable: true, Fault: smithy.FaultServer},
				Decode:  JSON[types.InternalStreamFailure](),
			},
		},
	}
}
