package fake

import "testing"

func TestPrompt(t *testing.T) {
	tests := []struct {
		name, op, body, want string
		wantErr              bool
	}{
		{"converse: last message's first text block", "ConverseStream",
			`{"messages":[{"role":"user","content":[{"text":"first"}]},{"role":"user","content":[{"image":{}},{"text":"last"}]}]}`, "last", false},
		{"invoke: the prompt field", "InvokeModelWithResponseStream", `{"prompt":"hi"}`, "hi", false},
		{"invoke without a prompt field", "InvokeModelWithResponseStream", `{"inputText":"hi"}`, "", true},
		{"converse without text", "ConverseStream", `{"messages":[]}`, "", true},
		{"not a model call", "", `{}`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Prompt(Call{N: 1, Operation: tt.op, Body: []byte(tt.body)})
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("Prompt = %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
