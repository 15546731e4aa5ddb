package oracle_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zkoracle/zkoracle/fixtures"
	"github.com/zkoracle/zkoracle/fixtures/mnist"
	"github.com/zkoracle/zkoracle/model"
	"github.com/zkoracle/zkoracle/oracle"
	"github.com/zkoracle/zkoracle/oracle/client"
	"github.com/zkoracle/zkoracle/prover"
	"github.com/zkoracle/zkoracle/verifier"
)

var storeDir string // shared artifact store: keys are set up once per run

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "zkoracle-oracle-store")
	if err != nil {
		panic(err)
	}
	storeDir = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

const apiKey = "test-key"

func models(t testing.TB, names ...string) []*model.Model {
	var ms []*model.Model
	for _, n := range names {
		m, err := fixtures.Load(n)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	return ms
}

func start(t *testing.T, dataDir string, slots int, tamper func(*prover.JobResult), names ...string) (*oracle.Stack, *client.Client) {
	t.Helper()
	s, err := oracle.Start(context.Background(), oracle.StackOptions{DataDir: dataDir, StoreDir: storeDir, Listen: "127.0.0.1:0",
		Slots: slots, APIKeys: map[string]string{apiKey: "tester"}, Models: models(t, names...), TamperProof: tamper, DevSetup: true})
	if err != nil {
		t.Fatal(err)
	}
	return s, &client.Client{URL: "http://" + s.Addr, Key: apiKey}
}

func pixels(t testing.TB, n int) []int {
	img, _, err := mnist.TestImage(n)
	if err != nil {
		t.Fatal(err)
	}
	p := make([]int, len(img))
	for i, v := range img {
		p[i] = int(v)
	}
	return p
}

func executor(t testing.TB, name string, n int) []int64 {
	img, _, _ := mnist.TestImage(n)
	tr, err := models(t, name)[0].Run(model.PixelsToInput(img))
	if err != nil {
		t.Fatal(err)
	}
	return tr.Output
}

func TestEndToEnd(t *testing.T) {
	var tampered sync.Map // request IDs whose proofs get corrupted
	stack, c := start(t, t.TempDir(), 0, func(r *prover.JobResult) {
		if _, ok := tampered.Load(r.ID); ok {
			r.Proof = slices.Clone(r.Proof)
			r.Proof[len(r.Proof)/2] ^= 0x10
		}
	}, "mnist-mlp", "mnist-cnn")
	defer stack.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	var callbacks sync.Map
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rec oracle.Request
		json.NewDecoder(r.Body).Decode(&rec)
		callbacks.Store(rec.ID, rec.State)
	}))
	defer cb.Close()

	type sent struct {
		id    string
		model string
		image int
	}
	var all []sent
	for i := range 10 {
		name := []string{"mnist-mlp", "mnist-cnn"}[i%2]
		req := oracle.InferenceRequest{Model: name, Pixels: pixels(t, i), IdempotencyKey: "k" + string(rune('a'+i))}
		if i == 0 {
			req.CallbackURL = cb.URL
		}
		r, err := c.Infer(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if r.State != oracle.StateQueued {
			t.Fatalf("new request in state %s", r.State)
		}
		all = append(all, sent{r.ID, name, i})
	}
	// The same idempotency key again: the same request, no new job.
	again, err := c.Infer(ctx, oracle.InferenceRequest{Model: "mnist-mlp", Pixels: pixels(t, 0), IdempotencyKey: "ka"})
	if err != nil || again.ID != all[0].id {
		t.Fatalf("idempotent resubmission: %v %v, want request %s", again, err, all[0].id)
	}
	// A job whose proof is corrupted on its way to the verifier.
	bad, err := c.Infer(ctx, oracle.InferenceRequest{Model: "mnist-mlp", Pixels: pixels(t, 11)})
	if err != nil {
		t.Fatal(err)
	}
	tampered.Store(bad.ID, true)

	for _, s := range all {
		r, err := c.Wait(ctx, s.id)
		if err != nil {
			t.Fatal(err)
		}
		if r.State != oracle.StateVerified {
			t.Fatalf("request %d (%s): state %s, error %s", s.image, s.model, r.State, r.Error)
		}
		if want := executor(t, s.model, s.image); !slices.Equal(r.Output, want) {
			t.Fatalf("request %d: output %v, executor %v", s.image, r.Output, want)
		}
		if len(r.Proof) == 0 || len(r.Public) == 0 || len(r.Acceptance) == 0 || r.Times[oracle.StateVerified].IsZero() {
			t.Fatalf("request %d: verified record incomplete: %+v", s.image, r)
		}
	}
	r, err := c.Wait(ctx, bad.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != oracle.StateRejected || !strings.Contains(r.Error, "verifier") {
		t.Fatalf("corrupted proof: state %s (%s), want rejected", r.State, r.Error)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if v, ok := callbacks.Load(all[0].id); ok {
			if v != oracle.StateVerified {
				t.Fatalf("callback carried state %v", v)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no callback")
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Bad requests.
	post := func(key string, body []byte) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, c.URL+"/v1/inferences", bytes.NewReader(body))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	good, _ := json.Marshal(oracle.InferenceRequest{Model: "mnist-mlp", Pixels: pixels(t, 3)})
	short, _ := json.Marshal(oracle.InferenceRequest{Model: "mnist-mlp", Pixels: pixels(t, 3)[:700]})
	unknown, _ := json.Marshal(oracle.InferenceRequest{Model: "mnist-transformer", Pixels: pixels(t, 3)})
	for _, tc := range []struct {
		name   string
		key    string
		body   []byte
		status int
		code   string
	}{
		{"bad input shape", apiKey, short, 400, "bad_shape"},
		{"unknown model", apiKey, unknown, 404, "unknown_model"},
		{"missing API key", "", good, 401, "unauthorized"},
		{"wrong API key", "nope", good, 401, "unauthorized"},
		{"oversized body", apiKey, bytes.Repeat([]byte("x"), oracle.MaxInferenceBody+1), 413, "too_large"},
		{"malformed JSON", apiKey, []byte(`{"model":`), 400, "bad_json"},
	} {
		if st, body := post(tc.key, tc.body); st != tc.status || !strings.Contains(body, tc.code) {
			t.Errorf("%s: got %d %s, want %d %s", tc.name, st, body, tc.status, tc.code)
		}
	}
	var ae *client.Error
	if _, err := c.Get(ctx, "missing"); !errors.As(err, &ae) || ae.Status != 404 {
		t.Errorf("unknown request: got %v, want 404", err)
	}
}

// TestRestart: requests accepted while no prover runs stay queued across a
// restart of the whole stack, then complete.
func TestRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	data := t.TempDir()
	stack, c := start(t, data, -1, nil, "mnist-mlp")
	var ids []string
	for i := range 3 {
		r, err := c.Infer(ctx, oracle.InferenceRequest{Model: "mnist-mlp", Pixels: pixels(t, 20+i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	time.Sleep(300 * time.Millisecond)
	if r, _ := c.Get(ctx, ids[0]); r.State != oracle.StateQueued {
		t.Fatalf("with no prover the request is %s", r.State)
	}
	stack.Close()

	stack, c = start(t, data, 0, nil, "mnist-mlp")
	defer stack.Close()
	for i, id := range ids {
		r, err := c.Wait(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.State != oracle.StateVerified || !slices.Equal(r.Output, executor(t, "mnist-mlp", 20+i)) {
			t.Fatalf("request %s after restart: %s %s", id, r.State, r.Error)
		}
	}
}

// TestModelUpload: a model file posted to /v1/models is prepared in the
// background (its progress visible), registered, and then serves
// inferences; a malformed file is refused with the decoder's message.
func TestModelUpload(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stack, c := start(t, t.TempDir(), 0, nil)
	defer stack.Close()
	lo, hi := int64(-128), int64(127)
	m := &model.Model{Format: model.Format, Version: model.Version, Name: "tiny",
		Input: model.Tensor{Name: "x", DType: model.Int8, Shape: []int{4}, Scale: 1, ZeroPoint: 0},
		Ops: []model.Op{
			{Kind: model.Dense, In: []string{"x"}, Out: model.Tensor{Name: "h", DType: model.Int32, Shape: []int{3}, Scale: 1},
				Weights: model.Int8s{1, -2, 3, 4, 5, -6, 7, 8, -9, 10, 11, 12}, Bias: []int32{1, 2, 3}},
			{Kind: model.Requantize, In: []string{"h"}, Out: model.Tensor{Name: "y", DType: model.Int8, Shape: []int{3}, Scale: 1, ZeroPoint: -128},
				Multiplier: []int64{3}, Shift: []int{4}, Min: &lo, Max: &hi},
		}, Output: "y"}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	body, _ := m.Encode()
	post := func(b []byte, contentType ...string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, c.URL+"/v1/models", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+apiKey)
		for _, ct := range contentType {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if st, out := post(body[:len(body)-20]); st != 400 || !strings.Contains(out["error"].(map[string]any)["message"].(string), "decode model") {
		t.Fatalf("truncated model: %d %v", st, out)
	}
	// ONNX: a float graph needs calibration (422), a truncated file is 400.
	if onnxFile, err := os.ReadFile("../model/onnx/testdata/lenet_bn_maxpool.onnx"); err != nil {
		t.Error(err)
	} else {
		msg := func(out map[string]any) string { return out["error"].(map[string]any)["message"].(string) }
		if st, out := post(onnxFile, "application/onnx"); st != 422 || !strings.Contains(msg(out), "calibrat") {
			t.Errorf("float onnx: %d %v", st, out)
		}
		if st, out := post(onnxFile[:len(onnxFile)/2], "application/onnx"); st != 400 || !strings.Contains(msg(out), "truncated") {
			t.Errorf("truncated onnx: %d %v", st, out)
		}
	}
	st, out := post(body)
	if st != http.StatusAccepted || out["model_id"] != m.ID() {
		t.Fatalf("upload: %d %v", st, out)
	}
	for {
		req, _ := http.NewRequest(http.MethodGet, c.URL+"/v1/models/"+m.ID(), nil)
		req.Header.Set("Authorization", "Bearer "+apiKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e oracle.ModelEntry
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if e.State == "ready" {
			if e.Constraints == 0 {
				t.Fatalf("ready model without a constraint count: %+v", e)
			}
			break
		}
		if e.State == "failed" || ctx.Err() != nil {
			t.Fatalf("model preparation: %+v", e)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r, err := c.Infer(ctx, oracle.InferenceRequest{Model: "tiny", Input: []int{5, -7, 100, -128}})
	if err != nil {
		t.Fatal(err)
	}
	if r, err = c.Wait(ctx, r.ID); err != nil || r.State != oracle.StateVerified {
		t.Fatalf("inference on the uploaded model: %+v %v", r, err)
	}
	tr, _ := m.Run([]int8{5, -7, 100, -128})
	if !slices.Equal(r.Output, tr.Output) {
		t.Fatalf("output %v, executor %v", r.Output, tr.Output)
	}
}

// TestRateLimit: a key over its rate gets 429 with Retry-After; another key
// is not affected.
func TestRateLimit(t *testing.T) {
	s, err := oracle.Start(context.Background(), oracle.StackOptions{DataDir: t.TempDir(), StoreDir: storeDir, Listen: "127.0.0.1:0", Slots: -1,
		APIKeys: map[string]string{"a": "client-a", "b": "client-b"}, RatePerSecond: 1, Burst: 3, DevSetup: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	get := func(key string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, "http://"+s.Addr+"/v1/models", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for i := range 3 {
		if r := get("a"); r.StatusCode != 200 {
			t.Fatalf("request %d within the burst: %d", i, r.StatusCode)
		}
	}
	r := get("a")
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("over the rate: %d, Retry-After %q", r.StatusCode, r.Header.Get("Retry-After"))
	}
	if r := get("b"); r.StatusCode != 200 {
		t.Fatalf("another key: %d", r.StatusCode)
	}
}

// TestCeremonyStack: without DevSetup the stack runs phase 1 (operator,
// in-process verifier) and each model's phase 2 with the verifier, which
// accepts the keys and then the results proven with them. A restart on the
// same store and verifier state reuses both ceremonies.
func TestCeremonyStack(t *testing.T) {
	if testing.Short() {
		t.Skip("a ceremony takes a minute under -race")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir := t.TempDir()
	var steps []string
	opts := oracle.StackOptions{DataDir: filepath.Join(dir, "data"), StoreDir: filepath.Join(dir, "store"), Listen: "127.0.0.1:0",
		VerifierState: filepath.Join(dir, "verifier.db"), Phase1Power: 12, APIKeys: map[string]string{apiKey: "tester"},
		Models: models(t, "mnist-mlp"), Progress: func(s string) { steps = append(steps, s) }}
	for run := range 2 {
		steps = nil
		s, err := oracle.Start(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		c := &client.Client{URL: "http://" + s.Addr, Key: apiKey}
		r, err := c.Infer(ctx, oracle.InferenceRequest{Model: "mnist-mlp", Pixels: pixels(t, 30+run)})
		if err == nil {
			r, err = c.Wait(ctx, r.ID)
		}
		if err != nil || r.State != oracle.StateVerified {
			t.Fatalf("run %d: %v %+v", run, err, r)
		}
		ms, err := c.Models(ctx)
		if err != nil || len(ms) != 1 || ms[0].Setup != prover.SetupMPC {
			t.Fatalf("run %d: models %+v %v", run, ms, err)
		}
		s.Close()
		ran := strings.Contains(strings.Join(steps, "\n"), "contribution")
		if ran != (run == 0) {
			t.Fatalf("run %d: ceremony steps %q", run, steps)
		}
		// Consumed ceremony blobs are gone from the verifier: only the SRS stays.
		vs, err := verifier.Open(verifier.Options{Path: opts.VerifierState})
		if err != nil {
			t.Fatal(err)
		}
		st, err := vs.Stats()
		vs.Close()
		if err != nil || st.Blobs != 1 {
			t.Fatalf("run %d: %d blobs kept (%v), want the SRS only", run, st.Blobs, err)
		}
	}
}
