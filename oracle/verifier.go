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
	"github.com/zkoracle/zkoracle/verifier/ceremony"
)

// Verifier is what the oracle needs of a verifier: take part in ceremonies,
// register a model's key, and offer a result for acceptance.
type Verifier interface {
	Register(ctx context.Context, r verifier.RegisterRequest) error
	Submit(ctx context.Context, r verifier.SubmitRequest) (json.RawMessage, error)
	// Upload stores a blob (in chunks) and returns its SHA-256; Download
	// reads one back.
	Upload(ctx context.Context, blob []byte) (string, error)
	Download(ctx context.Context, sha string) ([]byte, error)
	Contribute(ctx context.Context, r verifier.ContributeRequest) (*verifier.OwnContribution, error)
	SetPhase1(ctx context.Context, r verifier.SetPhase1Request) (*verifier.Phase1Record, error)
	// Phase1 returns the verifier's phase 1, nil if it has none.
	Phase1(ctx context.Context) (*verifier.Phase1Record, error)
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

// Upload implements Verifier.
func (l Local) Upload(_ context.Context, blob []byte) (string, error) {
	sha := ceremony.Hash(blob)
	for off := 0; off < len(blob); off += verifier.MaxChunkBytes {
		done, _, err := l.Service.UploadChunk(l.Caller, sha, len(blob), off, blob[off:min(len(blob), off+verifier.MaxChunkBytes)])
		if err != nil || done {
			return sha, err
		}
	}
	return sha, nil
}

// Download implements Verifier.
func (l Local) Download(_ context.Context, sha string) ([]byte, error) {
	var out []byte
	for {
		b, size, err := l.Service.Blob(sha, len(out), verifier.MaxChunkBytes)
		if err != nil {
			return nil, err
		}
		if out = append(out, b...); len(out) >= size || len(b) == 0 {
			return out, nil
		}
	}
}

// Contribute implements Verifier.
func (l Local) Contribute(_ context.Context, r verifier.ContributeRequest) (*verifier.OwnContribution, error) {
	own, _, err := l.Service.Contribute(l.Caller, r)
	return own, err
}

// SetPhase1 implements Verifier.
func (l Local) SetPhase1(_ context.Context, r verifier.SetPhase1Request) (*verifier.Phase1Record, error) {
	rec, _, err := l.Service.SetPhase1(l.Caller, r)
	return rec, err
}

// Phase1 implements Verifier.
func (l Local) Phase1(context.Context) (*verifier.Phase1Record, error) { return l.Service.Phase1() }

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
	return r.do(req, path)
}

func (r Remote) get(ctx context.Context, path string) (json.RawMessage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL+path, nil)
	if err != nil {
		return nil, err
	}
	return r.do(req, path)
}

func (r Remote) do(req *http.Request, path string) (json.RawMessage, error) {
	c := r.HTTP
	if c == nil {
		c = &http.Client{Timeout: verifier.CeremonyTimeout}
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 2*verifier.MaxQueryReplyBytes))
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
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	return r.post(ctx, "/api/v1/update/submit_result", req, false)
}

// callTimeout bounds the calls that do no ceremony work (submit, blob
// chunks); the client's own timeout (verifier.CeremonyTimeout by default)
// bounds the others.
const callTimeout = time.Minute

// Upload implements Verifier.
func (r Remote) Upload(ctx context.Context, blob []byte) (string, error) {
	sha := ceremony.Hash(blob)
	for off := 0; off < len(blob); off += verifier.MaxChunkBytes {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		out, err := r.post(cctx, "/api/v1/update/upload_chunk", map[string]any{"sha256": sha, "size": len(blob), "offset": off,
			"data": blob[off:min(len(blob), off+verifier.MaxChunkBytes)]}, true)
		cancel()
		if err != nil {
			return "", err
		}
		var reply struct{ Complete bool }
		if json.Unmarshal(out, &reply); reply.Complete {
			return sha, nil
		}
	}
	return "", fmt.Errorf("upload %s: the verifier did not complete the blob", sha)
}

// Download implements Verifier.
func (r Remote) Download(ctx context.Context, sha string) ([]byte, error) {
	var out []byte
	for {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		raw, err := r.get(cctx, fmt.Sprintf("/api/v1/query/blob/%s?offset=%d", sha, len(out)))
		cancel()
		if err != nil {
			return nil, err
		}
		var chunk struct {
			Size int
			Data []byte
		}
		if err := json.Unmarshal(raw, &chunk); err != nil {
			return nil, fmt.Errorf("blob %s: %w", sha, err)
		}
		if out = append(out, chunk.Data...); len(out) >= chunk.Size || len(chunk.Data) == 0 {
			return out, nil
		}
	}
}

// Contribute implements Verifier.
func (r Remote) Contribute(ctx context.Context, req verifier.ContributeRequest) (*verifier.OwnContribution, error) {
	return decodeReply[verifier.OwnContribution](r.post(ctx, "/api/v1/update/contribute", req, true))
}

// SetPhase1 implements Verifier.
func (r Remote) SetPhase1(ctx context.Context, req verifier.SetPhase1Request) (*verifier.Phase1Record, error) {
	return decodeReply[verifier.Phase1Record](r.post(ctx, "/api/v1/update/set_phase1", req, true))
}

// Phase1 implements Verifier.
func (r Remote) Phase1(ctx context.Context) (*verifier.Phase1Record, error) {
	rec, err := decodeReply[verifier.Phase1Record](r.get(ctx, "/api/v1/query/phase1"))
	var rej *Rejection
	if errors.As(err, &rej) && rej.Code == "no_phase1" {
		return nil, nil
	}
	return rec, err
}

func decodeReply[T any](raw json.RawMessage, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	var t T
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("verifier reply: %w", err)
	}
	return &t, nil
}
