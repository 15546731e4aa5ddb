package oracle

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/time/rate"

	"github.com/zkoracle/zkoracle/model"
	"github.com/zkoracle/zkoracle/model/onnx"
	"github.com/zkoracle/zkoracle/oracle/api"
	"github.com/zkoracle/zkoracle/verifier/core"
)

// Request body limits (see api).
const (
	MaxInferenceBody = api.MaxInferenceBody
	MaxModelBody     = api.MaxModelBody
)

// apiError is an error with its HTTP status, safe to show the client.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func fail(status int, code, format string, args ...any) *apiError {
	return &apiError{status, code, fmt.Sprintf(format, args...)}
}

// Handler returns the client API (see the OpenAPI document, oracle/openapi.yaml).
// gatherer serves /metrics (nil: prometheus.DefaultGatherer).
func (or *Oracle) Handler(gatherer prometheus.Gatherer) http.Handler {
	if gatherer == nil {
		gatherer = prometheus.DefaultGatherer
	}
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	r.Use(middleware.Timeout(60 * time.Second))
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	r.Get("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		select {
		case <-or.ready:
			w.Write([]byte("ready\n"))
		default:
			http.Error(w, "starting", http.StatusServiceUnavailable)
		}
	})
	r.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	r.Route("/v1", func(r chi.Router) {
		r.Use(or.authenticate)
		r.Post("/inferences", or.handle(MaxInferenceBody, or.createInference))
		r.Get("/inferences/{id}", or.handle(0, or.getInference))
		r.Post("/models", or.handle(MaxModelBody, or.uploadModel))
		r.Get("/models", or.handle(0, or.listModels))
		r.Get("/models/{id}", or.handle(0, or.getModel))
	})
	return r
}

type clientKey struct{}

// authenticate checks the bearer API key and the key's rate limit.
func (or *Oracle) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		tok, _ := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		name, ok := or.o.APIKeys[tok]
		if tok == "" || !ok {
			writeErr(w, fail(http.StatusUnauthorized, "unauthorized", "missing or unknown API key (Authorization: Bearer KEY)"))
			return
		}
		if !or.limits.allow(name) {
			w.Header().Set("Retry-After", "1")
			writeErr(w, fail(http.StatusTooManyRequests, "rate_limited", "rate limit of API key %q exceeded", name))
			return
		}
		next.ServeHTTP(w, req.WithContext(contextWith(req, clientKey{}, name)))
	})
}

type handlerFunc func(client string, body []byte, req *http.Request, w http.ResponseWriter) (int, any, error)

// handle reads the body within limit and writes the JSON reply or error.
func (or *Oracle) handle(limit int64, f handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		var body []byte
		if limit > 0 {
			b, err := io.ReadAll(http.MaxBytesReader(w, req.Body, limit))
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeErr(w, fail(http.StatusRequestEntityTooLarge, "too_large", "request body over %d bytes", limit))
				return
			}
			if err != nil {
				writeErr(w, fail(http.StatusBadRequest, "bad_body", "reading body: %v", err))
				return
			}
			body = b
		}
		client, _ := req.Context().Value(clientKey{}).(string)
		status, out, err := f(client, body, req, w)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				or.log.Error("internal error", "path", req.URL.Path, "err", err)
				ae = fail(http.StatusInternalServerError, "internal", "internal error")
			}
			writeErr(w, ae)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(out)
	}
}

func writeErr(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": e.code, "message": e.msg}})
}

func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fail(http.StatusBadRequest, "bad_json", "request body: %v", err)
	}
	if dec.More() {
		return fail(http.StatusBadRequest, "bad_json", "request body: trailing data")
	}
	return nil
}

func (or *Oracle) createInference(client string, body []byte, _ *http.Request, _ http.ResponseWriter) (int, any, error) {
	var in InferenceRequest
	if err := decodeStrict(body, &in); err != nil {
		return 0, nil, err
	}
	m, ok := or.model(in.Model)
	if !ok {
		return 0, nil, fail(http.StatusNotFound, "unknown_model", "no ready model %q (GET /v1/models lists them)", in.Model)
	}
	input := in.Input
	switch {
	case in.Input != nil && in.Pixels != nil:
		return 0, nil, fail(http.StatusBadRequest, "bad_input", "give input or pixels, not both")
	case in.Pixels != nil:
		input = make([]int, len(in.Pixels))
		for i, p := range in.Pixels {
			if p < 0 || p > 255 {
				return 0, nil, fail(http.StatusBadRequest, "bad_input", "pixel %d at %d is outside 0..255", p, i)
			}
			input[i] = p - 128
		}
	}
	if len(input) != m.Input.Size() {
		return 0, nil, fail(http.StatusBadRequest, "bad_shape", "input has %d values, model %s takes %d (shape %v)", len(input), m.Name, m.Input.Size(), m.Input.Shape)
	}
	for i, v := range input {
		if v < math.MinInt8 || v > math.MaxInt8 {
			return 0, nil, fail(http.StatusBadRequest, "bad_input", "input value %d at %d is outside int8", v, i)
		}
	}
	if in.CallbackURL != "" {
		u, err := url.Parse(in.CallbackURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return 0, nil, fail(http.StatusBadRequest, "bad_callback", "callback_url must be an http(s) URL")
		}
	}
	if len(in.IdempotencyKey) > 200 {
		return 0, nil, fail(http.StatusBadRequest, "bad_idempotency_key", "idempotency_key over 200 characters")
	}
	now := time.Now().UTC()
	r := &Request{ID: newID(), ModelID: m.ID(), ModelName: m.Name, Input: input, IdempotencyKey: in.IdempotencyKey, Client: client,
		Callback: in.CallbackURL, Deadline: in.Deadline, State: StateQueued, Times: map[string]time.Time{"created": now, StateQueued: now}}
	existing := ""
	or.mu.Lock()
	err := or.db.Update(func(tx *bolt.Tx) error {
		if in.IdempotencyKey != "" {
			k := []byte(client + "/" + in.IdempotencyKey)
			if v := tx.Bucket(bucketIdem).Get(k); v != nil {
				existing = string(v)
				return nil
			}
			if err := tx.Bucket(bucketIdem).Put(k, []byte(r.ID)); err != nil {
				return err
			}
		}
		return put(tx, bucketRequests, r.ID, r) // persisted before the reply
	})
	or.mu.Unlock()
	if err != nil {
		return 0, nil, err
	}
	if existing != "" {
		prev, err := or.get(existing)
		if err != nil || prev == nil {
			return 0, nil, fmt.Errorf("idempotency key points at missing request %s: %v", existing, err)
		}
		return http.StatusOK, prev, nil
	}
	or.states.WithLabelValues(StateQueued).Inc()
	if err := or.submit(contextOf(), r); err != nil {
		or.log.Error("submit to queue (will retry)", "id", r.ID, "err", err)
	}
	return http.StatusAccepted, r, nil
}

func (or *Oracle) getInference(_ string, _ []byte, req *http.Request, w http.ResponseWriter) (int, any, error) {
	r, err := or.get(chi.URLParam(req, "id"))
	if err != nil {
		return 0, nil, err
	}
	if r == nil {
		return 0, nil, fail(http.StatusNotFound, "unknown_request", "no inference %q", chi.URLParam(req, "id"))
	}
	if !Terminal(r.State) {
		w.Header().Set("Retry-After", "1")
	}
	return http.StatusOK, r, nil
}

func (or *Oracle) uploadModel(client string, body []byte, req *http.Request, _ http.ResponseWriter) (int, any, error) {
	var m *model.Model
	var err error
	if ct := req.Header.Get("Content-Type"); strings.Contains(ct, "onnx") {
		m, err = importONNX(body, req.URL.Query().Get("name"))
	} else if m, err = model.Decode(bytes.NewReader(body)); err != nil {
		err = fail(http.StatusBadRequest, "bad_model", "%v", err)
	}
	if err != nil {
		return 0, nil, err
	}
	if e, _ := or.modelEntry(m.ID()); e != nil && e.State != "failed" {
		return http.StatusOK, e, nil
	}
	e := &ModelEntry{ID: m.ID(), Name: m.Name, State: "preparing", Step: "queued", InputShape: m.Input.Shape}
	or.putModel(e)
	or.log.Info("model upload", "client", client, "name", m.Name, "id", m.ID())
	or.wg.Go(func() {
		if _, err := or.AddModel(contextOf(), m); err != nil {
			or.log.Error("model preparation failed", "id", m.ID(), "err", err)
		}
	})
	return http.StatusAccepted, e, nil
}

// importONNX imports an uploaded ONNX model. Quantized (QDQ) graphs carry
// their own scales and import directly; float graphs need calibration data,
// which `zkoracle model import` takes.
func importONNX(body []byte, name string) (*model.Model, error) {
	g, err := onnx.Parse(body)
	if err != nil {
		return nil, fail(http.StatusBadRequest, "bad_onnx", "%v", err)
	}
	if !slices.ContainsFunc(g.Nodes, func(n *onnx.Node) bool { return n.Op == "QuantizeLinear" }) {
		return nil, fail(http.StatusUnprocessableEntity, "needs_calibration",
			"a float ONNX model needs calibration data: run `zkoracle model import FILE.onnx --calibrate DATA` and upload the model file it writes, or upload an int8 QDQ export (onnxruntime quantize_static)")
	}
	m, _, _, err := onnx.ImportQDQ(g, cmp.Or(name, g.Name, "onnx-model"), "uploaded QDQ ONNX model ("+g.Producer+")")
	if err != nil {
		return nil, fail(http.StatusBadRequest, "bad_onnx", "%v", err)
	}
	return m, nil
}

func (or *Oracle) modelEntry(id string) (*ModelEntry, error) {
	var e *ModelEntry
	err := or.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketModels).Get([]byte(id))
		if v == nil {
			return nil
		}
		e = new(ModelEntry)
		return json.Unmarshal(v, e)
	})
	return e, err
}

func (or *Oracle) getModel(_ string, _ []byte, req *http.Request, _ http.ResponseWriter) (int, any, error) {
	e, err := or.modelEntry(chi.URLParam(req, "id"))
	if err != nil {
		return 0, nil, err
	}
	if e == nil {
		return 0, nil, fail(http.StatusNotFound, "unknown_model", "no model %q", chi.URLParam(req, "id"))
	}
	return http.StatusOK, e, nil
}

func (or *Oracle) listModels(string, []byte, *http.Request, http.ResponseWriter) (int, any, error) {
	var out []ModelEntry
	err := or.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketModels).ForEach(func(_, v []byte) error {
			var e ModelEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			out = append(out, e)
			return nil
		})
	})
	return http.StatusOK, map[string]any{"models": out}, err
}

// limiter keeps one token bucket per API key.
type limiter struct {
	mu    sync.Mutex
	r     rate.Limit
	burst int
	by    map[string]*rate.Limiter
}

func newLimiter(perSecond float64, burst int) *limiter {
	return &limiter{r: rate.Limit(perSecond), burst: burst, by: map[string]*rate.Limiter{}}
}

func (l *limiter) allow(key string) bool {
	l.mu.Lock()
	lim, ok := l.by[key]
	if !ok {
		lim = rate.NewLimiter(l.r, l.burst)
		l.by[key] = lim
	}
	l.mu.Unlock()
	return lim.Allow()
}

func newID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func readFile(path string) ([]byte, error) { return os.ReadFile(path) }

func verifierClaim(input []int, output []int64) core.Claim {
	return core.Claim{Input: input, Output: output}
}
