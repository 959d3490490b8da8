package fake

import (
	"encoding/json"
	"fmt"
)

// Prompt returns the prompt a Bedrock call sent, so a script can answer each
// call with events of its own (see [Server.SetScript]): for Converse and
// ConverseStream, the text of the last message's first text block; for
// InvokeModel and InvokeModelWithResponseStream, the "prompt" field of the
// JSON body. It returns an error naming what is missing otherwise.
func Prompt(c Call) (string, error) {
	switch c.Operation {
	case "Converse", "ConverseStream":
		var body struct {
			Messages []struct {
				Content []struct {
					Text *string `json:"text"`
				} `json:"content"`
			} `json:"messages"`
		}
		if err := json.Unmarshal(c.Body, &body); err != nil {
			return "", fmt.Errorf("fake: %s body of call %d is not JSON: %v", c.Operation, c.N, err)
		}
		if n := len(body.Messages); n > 0 {
			for _, block := range body.Messages[n-1].Content {
				if block.Text != nil {
					return *block.Text, nil
				}
			}
		}
		return "", fmt.Errorf("fake: %s call %d has no text block in its last message", c.Operation, c.N)
	case "InvokeModel", "InvokeModelWithResponseStream":
		var body struct {
			Prompt *string `json:"prompt"`
		}
		if err := json.Unmarshal(c.Body, &body); err != nil || body.Prompt == nil {
			return "", fmt.Errorf("fake: %s call %d has no JSON \"prompt\" field in its body", c.Operation, c.N)
		}
		return *body.Prompt, nil
	}
	return "", fmt.Errorf("fake: call %d (%s %s) is not a Bedrock model call", c.N, c.Method, c.Path)
}
