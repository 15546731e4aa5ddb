// Package api holds the types of zkoracle's client API, shared by the
// oracle (the server) and its Go client, so that a client imports nothing
// of the server.
package api

import (
	"encoding/json"
	"time"
)

// Request body limits.
const (
	MaxInferenceBody = 1 << 20
	MaxModelBody     = 16 << 20
)

// Request states. A request only moves forward through them.
const (
	StateQueued    = "queued"
	StateProving   = "proving"
	StateVerifying = "verifying"
	StateVerified  = "verified"
	StateRejected  = "rejected"
	StateFailed    = "failed"
	StateExpired   = "expired"
)

// Terminal reports whether a state is final.
func Terminal(state string) bool {
	switch state {
	case StateVerified, StateRejected, StateFailed, StateExpired:
		return true
	}
	return false
}

// Request is an inference request and everything that happened to it.
type Request struct {
	ID             string               `json:"id"`
	ModelID        string               `json:"model_id"`
	ModelName      string               `json:"model_name"`
	Input          []int                `json:"input"`
	IdempotencyKey string               `json:"idempotency_key,omitempty"`
	Client         string               `json:"client"`
	Callback       string               `json:"callback_url,omitempty"`
	Deadline       time.Time            `json:"deadline,omitzero"`
	State          string               `json:"state"`
	Times          map[string]time.Time `json:"timestamps"`
	Output         []int64              `json:"output,omitempty"`
	Class          *int                 `json:"class,omitempty"`
	Proof          []byte               `json:"proof,omitempty"`
	Public         []byte               `json:"public_inputs,omitempty"`
	Acceptance     json.RawMessage      `json:"verifier_acceptance,omitempty"`
	Error          string               `json:"error,omitempty"`
	ProveMillis    int64                `json:"prove_ms,omitempty"`
	CallbackDone   bool                 `json:"callback_delivered,omitempty"`
}

// ModelEntry is a model the oracle serves (or is preparing).
type ModelEntry struct {
	ID           string `json:"model_id"`
	Name         string `json:"name"`
	State        string `json:"state"` // preparing, ready, failed
	Step         string `json:"step,omitempty"`
	Constraints  int    `json:"constraints,omitempty"`
	PublicInputs int    `json:"public_inputs,omitempty"`
	InputShape   []int  `json:"input_shape,omitempty"`
	Setup        string `json:"setup,omitempty"`
	Error        string `json:"error,omitempty"`
}

// InferenceRequest is the body of POST /v1/inferences. Give the input as
// int8 values (Input) or as 0..255 pixels (Pixels, mapped to p-128).
type InferenceRequest struct {
	Model          string    `json:"model"`
	Input          []int     `json:"input,omitempty"`
	Pixels         []int     `json:"pixels,omitempty"`
	IdempotencyKey string    `json:"idempotency_key,omitempty"`
	Deadline       time.Time `json:"deadline,omitzero"`
	CallbackURL    string    `json:"callback_url,omitempty"`
}
