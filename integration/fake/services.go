package fake

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/aws/smithy-go/eventstream"
)

// PayloadPart is an Amazon SageMaker Runtime InvokeEndpointWithResponseStream
// event: :event-type "PayloadPart" whose payload is data itself
// (application/octet-stream).
func PayloadPart(data []byte) Step {
	return frameStep(data,
		eventstream.EventTypeHeader, "PayloadPart",
		eventstream.ContentTypeHeader, "application/octet-stream",
		eventstream.MessageTypeHeader, eventstream.EventMessageType,
	)
}

// SageMakerModelStreamError is SageMaker Runtime's ModelStreamError
// exception with its ErrorCode ("StreamBroken",
// "ModelInvocationTimeExceeded").
func SageMakerModelStreamError(errorCode, message string) Step {
	return ExceptionPayload("ModelStreamError", mustJSON(map[string]string{"Message": message, "ErrorCode": errorCode}))
}

// AgentChunk is an Agents for Amazon Bedrock Runtime InvokeAgent "chunk"
// event: {"bytes":"<base64 of text>"}.
func AgentChunk(text string) Step {
	return Event("chunk", mustJSON(map[string]string{"bytes": base64.StdEncoding.EncodeToString([]byte(text))}))
}

// CallerIdentityXML is an sts:GetCallerIdentity answer body; send it with
// Response{Body: ..., Header: {"Content-Type": {"text/xml"}}}.
func CallerIdentityXML(account string) []byte {
	return []byte(fmt.Sprintf(`<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:iam::%[1]s:user/fake</Arn>
    <UserId>AIDAFAKE</UserId>
    <Account>%[1]s</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>fake-sts</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>`, account))
}

// validateJSON checks that a body, when present, is JSON.
func validateJSON(h http.Header, body []byte) error {
	if len(bytes.TrimSpace(body)) > 0 && !json.Valid(body) {
		return errors.New("request body is not valid JSON")
	}
	return nil
}

// validateQueryAction checks an AWS query-protocol form body names action.
func validateQueryAction(action string) func(http.Header, []byte) error {
	return func(h http.Header, body []byte) error {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return fmt.Errorf("query-protocol body is not a form: %v", err)
		}
		if got := form.Get("Action"); got != action {
			return fmt.Errorf("Action %q, want %q", got, action)
		}
		return nil
	}
}
