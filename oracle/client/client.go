// Package client is the Go client of the zkoracle client API.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/zkoracle/zkoracle/oracle/api"
)

// Client calls an oracle with an API key.
type Client struct {
	URL  string // e.g. http://127.0.0.1:8080
	Key  string
	HTTP *http.Client
}

// Error is an error reply of the API.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

func (c *Client) do(ctx context.Context, method, path string, body any, out any) (http.Header, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Key)
	req.Header.Set("Content-Type", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: time.Minute}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string }
		}
		json.Unmarshal(b, &e)
		return resp.Header, &Error{resp.StatusCode, e.Error.Code, e.Error.Message}
	}
	return resp.Header, json.Unmarshal(b, out)
}

// Infer submits an inference request and returns it as recorded (queued,
// or the earlier request with the same idempotency key).
func (c *Client) Infer(ctx context.Context, req api.InferenceRequest) (*api.Request, error) {
	var r api.Request
	_, err := c.do(ctx, http.MethodPost, "/v1/inferences", req, &r)
	return &r, err
}

// Models lists the oracle's models and their state.
func (c *Client) Models(ctx context.Context) ([]api.ModelEntry, error) {
	var out struct {
		Models []api.ModelEntry `json:"models"`
	}
	_, err := c.do(ctx, http.MethodGet, "/v1/models", nil, &out)
	return out.Models, err
}

// Get returns an inference request's current record.
func (c *Client) Get(ctx context.Context, id string) (*api.Request, error) {
	r, _, err := c.get(ctx, id)
	return r, err
}

func (c *Client) get(ctx context.Context, id string) (*api.Request, time.Duration, error) {
	var r api.Request
	h, err := c.do(ctx, http.MethodGet, "/v1/inferences/"+id, nil, &r)
	wait := 500 * time.Millisecond
	if s, err := strconv.Atoi(h.Get("Retry-After")); err == nil && s > 0 {
		wait = min(time.Duration(s)*time.Second, wait*4)
	}
	return &r, wait, err
}

// Wait polls until the request reaches a final state (honouring
// Retry-After, at most every 2 s) or ctx ends.
func (c *Client) Wait(ctx context.Context, id string) (*api.Request, error) {
	for {
		r, wait, err := c.get(ctx, id)
		if err != nil {
			return nil, err
		}
		if api.Terminal(r.State) {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(min(wait, 250*time.Millisecond)):
		}
	}
}
