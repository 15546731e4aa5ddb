package oracle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/zkoracle/zkoracle/verifier"
)

// Verifier is what the oracle needs of a verifier: register a model's key,
// and offer a result for acceptance.
type Verifier interface {
	Register(ctx context.Context, r verifier.RegisterRequest) error
	Submit(ctx context.Context, r verifier.SubmitRequest) (json.RawMessage, error)
}

// Rejection is the verifier's refusal of a result.
type Rejection struct{ Code, Message string }

func (r *Rejection) Error() string { return r.Code + ": " + r.Message }

// Local is a verifier.Service in this process.
type Local struct {
	Service *verifier.Service
	Caller  string // controller name used for registration
}

// Register implements Verifier.
func (l Local) Register(_ context.Context, r verifier.RegisterRequest) error {
	_, _, err := l.Service.RegisterModel(l.Caller, r)
	return err
}

// Submit implements Verifier.
func (l Local) Submit(_ context.Context, r verifier.SubmitRequest) (json.RawMessage, error) {
	b, _ := json.Marshal(r)
	rec, cost, err := l.Service.SubmitResult("oracle", r, len(b))
	var ve *verifier.Error
	if errors.As(err, &ve) && ve.Status < 500 {
		return nil, &Rejection{ve.Code, ve.Msg}
	}
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{"request_id": rec.RequestID, "class": rec.Class, "accepted_at": rec.Accepted, "cost": cost})
}

// Remote is a verifier reached over HTTP.
type Remote struct {
	URL   string
	Token string // controller token, for registration
	HTTP  *http.Client
}

func (r Remote) post(ctx context.Context, path string, body any, auth bool) (json.RawMessage, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL+path, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	c := r.HTTP
	if c == nil {
		c = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	var reply struct {
		Result json.RawMessage `json:"result"`
		Cost   json.RawMessage `json:"cost"`
		Error  *struct{ Code, Message string }
	}
	if err := json.Unmarshal(out, &reply); err != nil {
		return nil, fmt.Errorf("verifier %s: %s: %q", path, resp.Status, out)
	}
	if reply.Error != nil {
		if resp.StatusCode < 500 {
			return nil, &Rejection{reply.Error.Code, reply.Error.Message}
		}
		return nil, fmt.Errorf("verifier %s: %s", path, reply.Error.Message)
	}
	return reply.Result, nil
}

// Register implements Verifier.
func (r Remote) Register(ctx context.Context, req verifier.RegisterRequest) error {
	_, err := r.post(ctx, "/api/v1/update/register_model", req, true)
	return err
}

// Submit implements Verifier.
func (r Remote) Submit(ctx context.Context, req verifier.SubmitRequest) (json.RawMessage, error) {
	return r.post(ctx, "/api/v1/update/submit_result", req, false)
}
