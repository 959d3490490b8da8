package classify

import (
	"encoding/json"
	"strings"

	smithy "github.com/aws/smithy-go"
)

// Outcome is what a classification decides.
type Outcome struct {
	// Code is the modeled error code, for example "ThrottlingException".
	Code string
	// Status is the HTTP status the service documents for the failure.
	Status int
	// Retryable reports whether the same request may succeed if sent again.
	Retryable bool
	// Throttle reports whether the failure is a throttle.
	Throttle bool
	// Fault says whose fault the failure is.
	Fault smithy.ErrorFault
}

// Rule maps one exception type of one service to an Outcome.
type Rule struct {
	// Type is the exception type as it appears on the wire, in the
	// :exception-type (or :error-code) header, for example
	// "throttlingException". Lookups ignore case.
	Type string
	// Outcome is the classification of this exception.
	Outcome
	// Decode builds the modeled error (for example
	// *types.ThrottlingException) from the exception's payload;
	// StatusError.Unwrap returns it, so errors.As reaches the modeled type.
	// JSON builds the usual one. Nil for exceptions without a modeled Go
	// type. payload is Decode's own copy of the exception's payload: the
	// error may keep it.
	Decode func(payload []byte) error
	// Refine, when set, adjusts the outcome from the decoded modeled error.
	// Bedrock uses it to count a modelStreamErrorException whose
	// originalStatusCode is 429 as a throttle.
	Refine func(modeled error, o *Outcome)
}

// Table is the classification of one service's stream exceptions.
type Table struct {
	// ServiceID is the SDK service ID the table applies to, as reported by
	// awsmiddleware.GetServiceID (for example "Bedrock Runtime"). Empty for
	// the generic table that applies to every service.
	ServiceID string
	// Source names the documentation the rows come from.
	Source string
	// Rules are the table's rows.
	Rules []Rule
}

// JSON returns a Decode function that unmarshals a JSON payload into a new
// T. Modeled AWS exception shapes are plain structs whose field names match
// their JSON members case-insensitively (Message, OriginalStatusCode, ...),
// so encoding/json fills them without the SDK's generated deserializers,
// the same way across SDK generations. A payload that is not JSON leaves
// the fields empty.
//
//	Decode: classify.JSON[types.ThrottlingException]()
func JSON[T any, PT interface {
	*T
	error
}]() func(payload []byte) error {
	return func(payload []byte) error {
		v := PT(new(T))
		_ = json.Unmarshal(payload, v)
		return v
	}
}

// Classifier looks up rules by service and exception type; pass it to the
// middlewares with middleware.WithClassifier. A Classifier is immutable after
// New and safe for concurrent use. The middlewares use
// New(DefaultTables()...) when given none.
type Classifier struct {
	services map[string]map[string]Rule
	generic  map[string]Rule
}

// New returns a Classifier over the given tables. Rows of later tables
// override rows of earlier tables with the same service and type, so
//
//	classify.New(append(classify.DefaultTables(), myOverrides)...)
//
// keeps the built-in rows and replaces the ones you name. A table with an
// empty ServiceID extends the generic table, which is consulted for every
// service after the service's own table.
func New(tables ...Table) *Classifier {
	c := &Classifier{services: map[string]map[string]Rule{}, generic: map[string]Rule{}}
	for _, t := range tables {
		rows := c.generic
		if t.ServiceID != "" {
			rows = c.services[t.ServiceID]
			if rows == nil {
				rows = map[string]Rule{}
				c.services[t.ServiceID] = rows
			}
		}
		for _, r := range t.Rules {
			rows[strings.ToLower(r.Type)] = r
		}
	}
	return c
}

// DefaultTables returns new copies of the built-in tables, in this order
// (each table's Source names the documentation its rows come from):
//
//   - the generic AWS table (ServiceID ""): codes from the AWS common-errors
//     list and the SDK's throttle and retryable code sets, consulted for
//     every service after the service's own rows;
//   - "Bedrock Runtime" (ConverseStream, InvokeModelWithResponseStream):
//     internalServerException 500, serviceUnavailableException 503,
//     throttlingException 429 (throttle), modelStreamErrorException 424
//     (a throttle when its originalStatusCode is 429), modelTimeoutException
//     408, all retryable; validationException 400, not retryable;
//   - "SageMaker Runtime" (InvokeEndpointWithResponseStream): ModelStreamError
//     400, retried only with ErrorCode StreamBroken; InternalStreamFailure
//     500, retryable;
//   - "Bedrock Agent Runtime" (InvokeAgent, InvokeInlineAgent);
//   - AnthropicServiceID: the Anthropic error types found in error envelopes
//     inside Bedrock chunk events (rate_limit_error 429 and overloaded_error
//     529 are retryable throttles, api_error 500 is retryable, the 4xx types
//     are not).
//
// Append tables of your own to override rows (see New).
func DefaultTables() []Table {
	return []Table{genericTable(), bedrockRuntimeTable(), sageMakerRuntimeTable(), bedrockAgentRuntimeTable(), anthropicTable()}
}

// Rule returns the rule for an exception type (or error code) of a service:
// the service's own row if it has one, else the generic AWS row. The
// generic rows are AWS codes: they do not apply to AnthropicServiceID,
// whose types are a model provider's (an envelope type no Anthropic row
// knows has no rule, whatever AWS code it spells).
func (c *Classifier) Rule(serviceID, exceptionType string) (Rule, bool) {
	key := strings.ToLower(exceptionType)
	if r, ok := c.services[serviceID][key]; ok {
		return r, true
	}
	if serviceID == AnthropicServiceID {
		return Rule{}, false
	}
	r, ok := c.generic[key]
	return r, ok
}
