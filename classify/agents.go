package classify

import (
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentruntime/types"
	smithy "github.com/aws/smithy-go"
)

// bedrockAgentRuntimeSource names where the Agents for Amazon Bedrock
// Runtime rows come from.
const bedrockAgentRuntimeSource = "Amazon Bedrock API Reference, Agents for Amazon Bedrock Runtime data type ResponseStream " +
	"(https://docs.aws.amazon.com/bedrock/latest/APIReference/API_agent-runtime_ResponseStream.html): " +
	"the HTTP status documented for each stream exception member; retry advice from the same page " +
	"(dependencyFailedException: \"Check the resource configurations and retry the request\"; " +
	"modelNotReadyException: \"The AWS SDK will automatically retry the operation\")"

// bedrockAgentRuntimeTable returns the table for Agents for Amazon Bedrock
// Runtime (InvokeAgent, InvokeInlineAgent and their response streams).
//
//	:exception-type                HTTP  retry  throttle
//	internalServerException         500  yes    no
//	badGatewayException             502  yes    no
//	throttlingException             429  yes    yes
//	dependencyFailedException       424  yes    no
//	modelNotReadyException          424  yes    no
//	conflictException               409  no     no
//	serviceQuotaExceededException   400  no     no
//	validationException             400  no     no
//	accessDeniedException           403  no     no
//	resourceNotFoundException       404  no     no
func bedrockAgentRuntimeTable() Table {
	rule := func(t, code string, status int, retryable, throttle bool, fault smithy.ErrorFault, decode func([]byte) error) Rule {
		return Rule{Type: t, Outcome: Outcome{Code: code, Status: status, Retryable: retryable, Throttle: throttle, Fault: fault}, Decode: decode}
	}
	return Table{
		ServiceID: "Bedrock Agent Runtime",
		Source:    bedrockAgentRuntimeSource,
		Rules: []Rule{
			rule("internalServerException", "InternalServerException", 500, true, false, smithy.FaultServer, JSON[types.InternalServerException]()),
			rule("badGatewayException", "BadGatewayException", 502, true, false, smithy.FaultServer, JSON[types.BadGatewayException]()),
			rule("throttlingException", "ThrottlingException", 429, true, true, smithy.FaultClient, JSON[types.ThrottlingException]()),
			rule("dependencyFailedException", "DependencyFailedException", 424, true, false, smithy.FaultClient, JSON[types.DependencyFailedException]()),
			rule("modelNotReadyException", "ModelNotReadyException", 424, true, false, smithy.FaultClient, JSON[types.ModelNotReadyException]()),
			rule("conflictException", "ConflictException", 409, false, false, smithy.FaultClient, JSON[types.ConflictException]()),
			rule("serviceQuotaExceededException", "ServiceQuotaExceededException", 400, false, false, smithy.FaultClient, JSON[types.ServiceQuotaExceededException]()),
			rule("validationException", "ValidationException", 400, false, false, smithy.FaultClient, JSON[types.ValidationException]()),
			rule("accessDeniedException", "AccessDeniedException", 403, false, false, smithy.FaultClient, JSON[types.AccessDeniedException]()),
			rule("resourceNotFoundException", "ResourceNotFoundException", 404, false, false, smithy.FaultClient, JSON[types.ResourceNotFoundException]()),
		},
	}
}
