package verifier

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// The Internet Computer's message limits, which the HTTP interface keeps.
const (
	MaxRequestBytes     = 2 << 20 // ingress message
	MaxUpdateReplyBytes = 2 << 20
	MaxQueryReplyBytes  = 3 << 20
)

// Handler returns the HTTP interface of s:
//
//	POST /api/v1/update/register_model   controllers
//	POST /api/v1/update/retire_model     controllers
//	POST /api/v1/update/set_controllers  controllers
//	POST /api/v1/update/submit_result
//	POST /api/v1/update/upload_chunk     controllers (ceremony blobs)
//	POST /api/v1/update/contribute       controllers (the verifier's ceremony contribution)
//	POST /api/v1/update/set_phase1       controllers
//	POST /api/v1/query/verify
//	GET  /api/v1/query/get_result/{request_id}
//	GET  /api/v1/query/list_models
//	GET  /api/v1/query/stats
//	GET  /api/v1/query/blob/{sha256}?offset=&length=
//	GET  /api/v1/query/phase1
//	GET  /api/v1/query/transcript/{model_id}
//	GET  /healthz
//
// Bodies are JSON (byte fields base64), unknown fields refused, at most
// 2 MiB (413 beyond). Every reply carries the call's cost. Errors are
// {"error": {"code", "message"}} with a 4xx status; internal errors are
// logged and answered 500 without detail. Calls time out after 30 s,
// except those that run ceremony work (register_model, contribute,
// set_phase1): minutes for a large circuit.
func Handler(s *Service) http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			req.Body = http.MaxBytesReader(w, req.Body, MaxRequestBytes)
			next.ServeHTTP(w, req)
		})
	})
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	r.Route("/api/v1", func(top chi.Router) {
		long := top.With(middleware.Timeout(CeremonyTimeout))
		r := top.With(middleware.Timeout(30 * time.Second))
		long.Post("/update/register_model", s.call(true, func(c *call) (any, Cost, error) {
			var req RegisterRequest
			if err := c.decode(&req); err != nil {
				return nil, Cost{}, err
			}
			rec, cost, err := s.RegisterModel(c.caller, req)
			if err != nil {
				return nil, cost, err
			}
			return map[string]any{"model_id": rec.ID, "registered": rec.Registered}, cost, nil
		}))
		r.Post("/update/retire_model", s.call(true, func(c *call) (any, Cost, error) {
			var req struct {
				ModelID string `json:"model_id"`
			}
			if err := c.decode(&req); err != nil {
				return nil, Cost{}, err
			}
			cost, err := s.RetireModel(c.caller, req.ModelID)
			return map[string]any{"model_id": req.ModelID, "retired": err == nil}, cost, err
		}))
		r.Post("/update/set_controllers", s.call(true, func(c *call) (any, Cost, error) {
			var req struct {
				Controllers []Controller `json:"controllers"`
			}
			if err := c.decode(&req); err != nil {
				return nil, Cost{}, err
			}
			cost, err := s.SetControllers(c.caller, req.Controllers)
			return map[string]any{"controllers": len(req.Controllers)}, cost, err
		}))
		r.Post("/update/submit_result", s.call(true, func(c *call) (any, Cost, error) {
			var req SubmitRequest
			if err := c.decode(&req); err != nil {
				return nil, Cost{}, err
			}
			rec, cost, err := s.SubmitResult(c.callerOrAnon(), req, c.n)
			if err != nil {
				return nil, cost, err
			}
			return map[string]any{"accepted": true, "request_id": rec.RequestID, "class": rec.Class, "accepted_at": rec.Accepted}, cost, nil
		}))
		r.Post("/query/verify", s.call(false, func(c *call) (any, Cost, error) {
			var req VerifyRequest
			if err := c.decode(&req); err != nil {
				return nil, Cost{}, err
			}
			ok, reason, cost, err := s.Verify(req, c.n)
			if err != nil {
				return nil, cost, err
			}
			return map[string]any{"valid": ok, "reason": reason}, cost, nil
		}))
		r.Get("/query/get_result/{id}", s.call(false, func(c *call) (any, Cost, error) {
			rec, err := s.GetResult(chi.URLParam(c.req, "id"))
			if err != nil {
				return nil, Cost{}, err
			}
			return rec, plainCost(0), nil
		}))
		r.Get("/query/list_models", s.call(false, func(c *call) (any, Cost, error) {
			ms, err := s.ListModels()
			return map[string]any{"models": ms}, plainCost(0), err
		}))
		r.Get("/query/stats", s.call(false, func(c *call) (any, Cost, error) {
			st, err := s.Stats()
			return st, plainCost(0), err
		}))
		r.Post("/update/upload_chunk", s.call(true, func(c *call) (any, Cost, error) {
			var req struct {
				SHA256 string `json:"sha256"`
				Size   int    `json:"size"`
				Offset int    `json:"offset"`
				Data   []byte `json:"data"`
			}
			if err := c.decode(&req); err != nil {
				return nil, Cost{}, err
			}
			done, cost, err := s.UploadChunk(c.caller, req.SHA256, req.Size, req.Offset, req.Data)
			return map[string]any{"sha256": req.SHA256, "complete": done}, cost, err
		}))
		long.Post("/update/contribute", s.call(true, func(c *call) (any, Cost, error) {
			var req ContributeRequest
			if err := c.decode(&req); err != nil {
				return nil, Cost{}, err
			}
			return pass(s.Contribute(c.caller, req))
		}))
		long.Post("/update/set_phase1", s.call(true, func(c *call) (any, Cost, error) {
			var req SetPhase1Request
			if err := c.decode(&req); err != nil {
				return nil, Cost{}, err
			}
			return pass(s.SetPhase1(c.caller, req))
		}))
		r.Get("/query/blob/{sha}", s.call(false, func(c *call) (any, Cost, error) {
			q := c.req.URL.Query()
			offset, err1 := strconv.Atoi(cmp.Or(q.Get("offset"), "0"))
			length, err2 := strconv.Atoi(cmp.Or(q.Get("length"), strconv.Itoa(MaxChunkBytes)))
			if err1 != nil || err2 != nil {
				return nil, Cost{}, apiErr(http.StatusBadRequest, "bad_range", "offset and length must be integers")
			}
			data, size, err := s.Blob(chi.URLParam(c.req, "sha"), offset, length)
			return map[string]any{"size": size, "offset": offset, "data": data}, plainCost(len(data)), err
		}))
		r.Get("/query/phase1", s.call(false, func(c *call) (any, Cost, error) {
			rec, err := s.Phase1()
			if err == nil && rec == nil {
				err = apiErr(http.StatusNotFound, "no_phase1", "this verifier has no phase 1 yet")
			}
			return rec, plainCost(0), err
		}))
		r.Get("/query/transcript/{id}", s.call(false, func(c *call) (any, Cost, error) {
			t, err := s.CeremonyTranscript(chi.URLParam(c.req, "id"))
			return t, plainCost(0), err
		}))
	})
	return r
}

// CeremonyTimeout bounds the calls that run ceremony work.
const CeremonyTimeout = 30 * time.Minute

func pass[T any](v T, c Cost, err error) (any, Cost, error) { return v, c, err }

type call struct {
	req    *http.Request
	caller string
	body   []byte
	n      int
}

func (c *call) callerOrAnon() string {
	if c.caller == "" {
		return "anonymous"
	}
	return c.caller
}

// decode parses the body strictly into v.
func (c *call) decode(v any) error {
	dec := json.NewDecoder(bytes.NewReader(c.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apiErr(http.StatusBadRequest, "bad_json", "request body: %v", err)
	}
	if dec.More() {
		return apiErr(http.StatusBadRequest, "bad_json", "request body: trailing data")
	}
	return nil
}

// call adapts a method to HTTP: it reads the body within the ingress limit,
// resolves the caller, runs the method, logs the call, and writes the reply
// within the reply limit of its kind.
func (s *Service) call(update bool, method func(*call) (any, Cost, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		start := time.Now()
		c := &call{req: req}
		if tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok {
			c.caller = s.Caller(tok)
		}
		var body any
		var cost Cost
		var err error
		c.body, err = io.ReadAll(req.Body)
		if err == nil {
			c.n = len(c.body)
			body, cost, err = method(c)
		} else {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				err = apiErr(http.StatusRequestEntityTooLarge, "too_large", "request body over %d bytes (the IC ingress limit)", MaxRequestBytes)
			} else {
				err = apiErr(http.StatusBadRequest, "bad_body", "reading body: %v", err)
			}
		}
		status := http.StatusOK
		reply := map[string]any{"cost": cost}
		var ae *Error
		switch {
		case errors.As(err, &ae):
			status, reply["error"] = ae.Status, ae
		case err != nil:
			s.log.Error("internal error", "path", req.URL.Path, "err", err)
			status, reply["error"] = http.StatusInternalServerError, &Error{Code: "internal", Msg: "internal error"}
		default:
			reply["result"] = body
		}
		out, merr := json.Marshal(reply)
		limit := MaxQueryReplyBytes
		if update {
			limit = MaxUpdateReplyBytes
		}
		if merr != nil || len(out) > limit {
			s.log.Error("reply over limit", "path", req.URL.Path, "bytes", len(out), "err", merr)
			status, out = http.StatusInternalServerError, []byte(fmt.Sprintf(`{"error":{"code":"reply_too_large","message":"reply over %d bytes"}}`, limit))
		}
		kind := "query"
		if update {
			kind = "update"
		}
		s.log.Info("call", "kind", kind, "path", req.URL.Path, "caller", c.callerOrAnon(), "status", status,
			"instructions", cost.Instructions, "took", time.Since(start).Round(time.Microsecond), slog.Any("err", err))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(out)
	}
}
