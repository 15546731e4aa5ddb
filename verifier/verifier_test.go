package verifier

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark/backend/groth16"

	"github.com/zkoracle/zkoracle/fixtures"
	"github.com/zkoracle/zkoracle/fixtures/mnist"
	"github.com/zkoracle/zkoracle/model"
	"github.com/zkoracle/zkoracle/prover"
	"github.com/zkoracle/zkoracle/verifier/core"
)

// The tests use the prover to make real proofs; the verifier package itself
// must not depend on it (TestDependencies).

type proved struct {
	reg    RegisterRequest
	claims []VerifyRequest // test images 0, 1, 2
	input  [][]int8
}

var (
	provedOnce sync.Once
	provedMods map[string]*proved
	provedErr  error
)

const token = "controller-secret"

func fixtureProofs(t testing.TB) map[string]*proved {
	t.Helper()
	provedOnce.Do(func() {
		provedMods = map[string]*proved{}
		dir, err := tempDir()
		if err != nil {
			provedErr = err
			return
		}
		store := &prover.Store{Dir: dir, DevSetup: true}
		for _, name := range fixtures.Names {
			m, err := fixtures.Load(name)
			if err != nil {
				provedErr = err
				return
			}
			meta, err := store.Prepare(context.Background(), m, nil)
			if err != nil {
				provedErr = err
				return
			}
			vk, err := readAll(store.Path(m.ID(), "vk.bin"))
			if err != nil {
				provedErr = err
				return
			}
			p := &proved{reg: RegisterRequest{ModelID: m.ID(), Name: m.Name, VerifyingKey: vk, LayoutVersion: meta.LayoutVersion,
				InputShape: meta.InputShape, OutputShape: meta.OutputShape, Setup: meta.Setup}}
			pr, _ := prover.New(prover.Options{Store: store, MaxConcurrent: 1})
			for i := range 3 {
				img, _, _ := mnist.TestImage(i)
				in := model.PixelsToInput(img)
				r, err := pr.Prove(context.Background(), m.ID(), in)
				if err != nil {
					provedErr = err
					return
				}
				vr := VerifyRequest{ModelID: m.ID(), Claim: core.Claim{Input: ints(in), Output: r.Output}, Proof: r.Proof}
				p.claims, p.input = append(p.claims, vr), append(p.input, in)
			}
			provedMods[name] = p
		}
	})
	if provedErr != nil {
		t.Fatal(provedErr)
	}
	return provedMods
}

func ints(in []int8) []int { return core.InputOf(in) }

// client talks to a verifier over HTTP.
type client struct {
	t   testing.TB
	url string
}

func (c client) do(method, path, tok string, body any) (int, map[string]any) {
	c.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, c.url+path, r)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		c.t.Fatalf("%s %s: reply %q is not JSON", method, path, b)
	}
	return resp.StatusCode, out
}

func newService(t testing.TB, path string, allowDev bool) (*Service, client) {
	t.Helper()
	s, err := Open(Options{Path: path, AllowDevKeys: allowDev, Bootstrap: &Controller{Name: "admin", TokenHash: HashToken(token)}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(s))
	t.Cleanup(func() { srv.Close(); s.Close() })
	return s, client{t, srv.URL}
}

func register(t *testing.T, c client, mods map[string]*proved) {
	t.Helper()
	for _, name := range fixtures.Names {
		if st, out := c.do("POST", "/api/v1/update/register_model", token, mods[name].reg); st != 200 {
			t.Fatalf("register %s: %d %v", name, st, out)
		}
	}
}

func submit(vr VerifyRequest, id string) SubmitRequest {
	return SubmitRequest{RequestID: id, VerifyRequest: vr}
}

// snapshot is the observable state: stats, models and a result lookup.
func snapshot(t *testing.T, c client) string {
	_, st := c.do("GET", "/api/v1/query/stats", "", nil)
	_, ms := c.do("GET", "/api/v1/query/list_models", "", nil)
	res := st["result"].(map[string]any)
	delete(res, "verifications") // process counters, not state
	delete(res, "rejections")
	delete(res, "updates")
	return fmt.Sprint(res, ms["result"])
}

func TestRegisterVerifySubmit(t *testing.T) {
	mods := fixtureProofs(t)
	_, c := newService(t, filepath.Join(t.TempDir(), "state.db"), true)
	register(t, c, mods)
	mlp := mods["mnist-mlp"]
	st, out := c.do("POST", "/api/v1/query/verify", "", mlp.claims[0])
	if st != 200 || out["result"].(map[string]any)["valid"] != true {
		t.Fatalf("verify: %d %v", st, out)
	}
	if cost := out["cost"].(map[string]any); cost["pairings"].(float64) < 3 || cost["ic_instructions_estimate"].(float64) <= 0 {
		t.Errorf("verify cost %v", cost)
	}
	st, out = c.do("POST", "/api/v1/update/submit_result", "", submit(mlp.claims[0], "req-1"))
	if st != 200 {
		t.Fatalf("submit: %d %v", st, out)
	}
	before := snapshot(t, c)
	if st, out = c.do("POST", "/api/v1/update/submit_result", "", submit(mlp.claims[0], "req-1")); st != 200 {
		t.Fatalf("same submission again: %d %v", st, out)
	}
	if after := snapshot(t, c); after != before {
		t.Fatalf("idempotent resubmission changed state:\n%s\n%s", before, after)
	}
	if st, out = c.do("POST", "/api/v1/update/submit_result", "", submit(mlp.claims[1], "req-1")); st != http.StatusConflict {
		t.Fatalf("another result under req-1: %d %v, want 409", st, out)
	}
	st, out = c.do("GET", "/api/v1/query/get_result/req-1", "", nil)
	if st != 200 || fmt.Sprint(out["result"].(map[string]any)["output"]) != fmt.Sprint(toAny(mlp.claims[0].Output)) {
		t.Fatalf("get_result: %d %v", st, out)
	}
	if st, _ = c.do("GET", "/api/v1/query/get_result/nope", "", nil); st != 404 {
		t.Fatalf("unknown result: %d, want 404", st)
	}
}

func toAny(v []int64) []any {
	out := make([]any, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// rawProof re-encodes a compressed proof uncompressed, so tests can place
// chosen coordinates.
func rawProof(t *testing.T, b []byte) []byte {
	p, err := core.DecodeProof(b)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := p.WriteRawTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// nonSubgroupG2 is a point of the twist curve outside the r-torsion.
func nonSubgroupG2(t *testing.T) bn254.G2Affine {
	for i := uint64(1); ; i++ {
		var u bn254.E2
		u.A0.SetUint64(i)
		p := bn254.MapToCurve2(&u)
		if p.IsOnCurve() && !p.IsInSubGroup() {
			return p
		}
	}
}

func TestRejections(t *testing.T) {
	mods := fixtureProofs(t)
	_, c := newService(t, filepath.Join(t.TempDir(), "state.db"), true)
	register(t, c, mods)
	mlp, cnn := mods["mnist-mlp"], mods["mnist-cnn"]
	if st, out := c.do("POST", "/api/v1/update/submit_result", "", submit(mlp.claims[0], "kept")); st != 200 {
		t.Fatalf("submit: %d %v", st, out)
	}
	good := func() SubmitRequest {
		r := submit(mlp.claims[1], "r")
		r.Input = append([]int(nil), r.Input...)
		r.Output = append([]int64(nil), r.Output...)
		r.Proof = append([]byte(nil), r.Proof...)
		return r
	}
	raw := rawProof(t, mlp.claims[1].Proof)
	bad := nonSubgroupG2(t)
	cases := []struct {
		name   string
		body   func() any
		status int
		code   string
	}{
		// A flipped x coordinate is a valid point about half the time (the
		// proof is randomised per run): then it decodes and fails to verify.
		{"tampered proof byte", func() any { r := good(); r.Proof[5] ^= 0x40; return r }, 400, "bad_proof|422 invalid_proof"},
		{"tampered proof, valid points", func() any { r := good(); r.Proof = mlp.claims[2].Proof; return r }, 422, "invalid_proof"},
		{"proof for another input", func() any { r := good(); r.Input = mlp.claims[0].Input; r.Output = mlp.claims[1].Output; return r }, 422, "invalid_proof"},
		{"another output", func() any { r := good(); r.Output[4]++; return r }, 422, "invalid_proof"},
		{"another model", func() any { r := good(); r.ModelID = cnn.reg.ModelID; return r }, 422, "invalid_proof"},
		{"unknown model", func() any { r := good(); r.ModelID = strings.Repeat("ab", 32); return r }, 404, "unknown_model"},
		{"wrong public-input count", func() any { r := good(); r.Output = r.Output[:9]; return r }, 400, "bad_claim"},
		{"input out of int8", func() any { r := good(); r.Input[0] = 128; return r }, 400, "bad_claim"},
		{"truncated proof", func() any { r := good(); r.Proof = r.Proof[:100]; return r }, 400, "bad_proof"},
		{"point off the curve", func() any {
			r := good()
			r.Proof = append([]byte(nil), raw...)
			r.Proof[63] ^= 1 // Ar's y coordinate
			return r
		}, 400, "bad_proof"},
		{"G2 point outside the subgroup", func() any {
			r := good()
			r.Proof = append([]byte(nil), raw...)
			b := bad.RawBytes()
			copy(r.Proof[64:64+len(b)], b[:])
			return r
		}, 400, "bad_proof"},
		{"truncated body", func() any { j, _ := json.Marshal(good()); return j[:len(j)/2] }, 400, "bad_json"},
		{"unknown field", func() any { j, _ := json.Marshal(good()); return append(j[:len(j)-1], []byte(`,"public":[1]}`)...) }, 400, "bad_json"},
		{"oversized body", func() any { return append([]byte(`{"request_id":"`), bytes.Repeat([]byte("a"), MaxRequestBytes)...) }, 413, "too_large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, c)
			st, out := c.do("POST", "/api/v1/update/submit_result", "", tc.body())
			e, _ := out["error"].(map[string]any)
			if e == nil || e["message"] == "" || !slices.Contains(strings.Split(fmt.Sprint(tc.status, " ", tc.code), "|"), fmt.Sprint(st, " ", e["code"])) {
				t.Fatalf("got %d %v, want %d %s", st, out, tc.status, tc.code)
			}
			if after := snapshot(t, c); after != before {
				t.Fatalf("state changed:\n%s\n%s", before, after)
			}
			// The same claim as a query: an answer, never an acceptance.
			if b, ok := tc.body().(SubmitRequest); ok {
				st, out := c.do("POST", "/api/v1/query/verify", "", b.VerifyRequest)
				if r, _ := out["result"].(map[string]any); st == 200 && r["valid"] == true {
					t.Fatalf("verify query called it valid: %v", out)
				}
			}
		})
	}
	// Admin calls and keys.
	reg := mlp.reg
	reg.ModelID = strings.Repeat("cd", 32)
	for _, tc := range []struct {
		name   string
		tok    string
		tamper func(*RegisterRequest)
		status int
		code   string
	}{
		{"no token", "", func(*RegisterRequest) {}, 401, "not_controller"},
		{"wrong token", "guess", func(*RegisterRequest) {}, 401, "not_controller"},
		{"malformed key", token, func(r *RegisterRequest) { r.VerifyingKey = r.VerifyingKey[:len(r.VerifyingKey)/2] }, 400, "bad_key"},
		{"garbage key", token, func(r *RegisterRequest) { r.VerifyingKey = bytes.Repeat([]byte{0xff}, 600) }, 400, "bad_key"},
		{"key for another shape", token, func(r *RegisterRequest) { r.OutputShape = []int{12} }, 400, "bad_key"},
		{"another key under a registered ID", token, func(r *RegisterRequest) { r.ModelID = mlp.reg.ModelID; r.VerifyingKey = cnn.reg.VerifyingKey }, 409, "model_exists"},
		{"bad model ID", token, func(r *RegisterRequest) { r.ModelID = "x" }, 400, "bad_model_id"},
	} {
		t.Run("register/"+tc.name, func(t *testing.T) {
			before := snapshot(t, c)
			r := reg
			tc.tamper(&r)
			st, out := c.do("POST", "/api/v1/update/register_model", tc.tok, r)
			if e, _ := out["error"].(map[string]any); st != tc.status || e == nil || e["code"] != tc.code {
				t.Fatalf("got %d %v, want %d %s", st, out, tc.status, tc.code)
			}
			if after := snapshot(t, c); after != before {
				t.Fatalf("state changed")
			}
		})
	}
}

func TestDevKeysRefusedByDefault(t *testing.T) {
	mods := fixtureProofs(t)
	_, c := newService(t, filepath.Join(t.TempDir(), "state.db"), false)
	st, out := c.do("POST", "/api/v1/update/register_model", token, mods["mnist-mlp"].reg)
	if e, _ := out["error"].(map[string]any); st != 403 || e["code"] != "dev_key_refused" {
		t.Fatalf("got %d %v, want 403 dev_key_refused", st, out)
	}
}

func TestRestart(t *testing.T) {
	mods := fixtureProofs(t)
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(Options{Path: path, AllowDevKeys: true, Bootstrap: &Controller{Name: "admin", TokenHash: HashToken(token)}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(s))
	c := client{t, srv.URL}
	register(t, c, mods)
	for i, vr := range mods["mnist-cnn"].claims {
		if st, out := c.do("POST", "/api/v1/update/submit_result", "", submit(vr, fmt.Sprint("cnn-", i))); st != 200 {
			t.Fatalf("submit: %d %v", st, out)
		}
	}
	before := snapshot(t, c)
	srv.Close()
	s.Close()

	// A new process on the same data: same state, keys decoded from it.
	_, c2 := newService(t, path, true)
	if after := snapshot(t, c2); after != before {
		t.Fatalf("state after restart:\n%s\nwant\n%s", after, before)
	}
	for i := range 3 {
		if st, _ := c2.do("GET", fmt.Sprint("/api/v1/query/get_result/cnn-", i), "", nil); st != 200 {
			t.Fatalf("result cnn-%d lost", i)
		}
	}
	if st, out := c2.do("POST", "/api/v1/query/verify", "", mods["mnist-mlp"].claims[2]); st != 200 || out["result"].(map[string]any)["valid"] != true {
		t.Fatalf("verify after restart: %d %v", st, out)
	}
	if st, _ := c2.do("POST", "/api/v1/update/retire_model", token, map[string]string{"model_id": mods["mnist-mlp"].reg.ModelID}); st != 200 {
		t.Fatal("retire failed")
	}
	if st, out := c2.do("POST", "/api/v1/update/submit_result", "", submit(mods["mnist-mlp"].claims[2], "late")); st != http.StatusGone {
		t.Fatalf("submit to a retired model: %d %v", st, out)
	}
}

// TestConcurrentClients: many clients submit and query at once; every
// result is accepted once and every query sees a consistent answer.
func TestConcurrentClients(t *testing.T) {
	mods := fixtureProofs(t)
	s, c := newService(t, filepath.Join(t.TempDir(), "state.db"), true)
	register(t, c, mods)
	var all []VerifyRequest
	for _, name := range fixtures.Names {
		all = append(all, mods[name].claims...)
	}
	const clients, rounds = 8, 6
	var wg sync.WaitGroup
	for k := range clients {
		wg.Go(func() {
			for r := range rounds {
				vr := all[(k+r)%len(all)]
				id := fmt.Sprintf("c%d-%d", (k+r)%len(all), r%2) // shared IDs: the same claim from several clients
				if st, out := c.do("POST", "/api/v1/update/submit_result", "", submit(vr, id)); st != 200 {
					t.Errorf("submit %s: %d %v", id, st, out)
				}
				if st, out := c.do("POST", "/api/v1/query/verify", "", vr); st != 200 || out["result"].(map[string]any)["valid"] != true {
					t.Errorf("verify: %d %v", st, out)
				}
				c.do("GET", "/api/v1/query/stats", "", nil)
			}
		})
	}
	wg.Wait()
	ids := map[string]bool{}
	for k := range clients {
		for r := range rounds {
			ids[fmt.Sprintf("c%d-%d", (k+r)%len(all), r%2)] = true
		}
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Results != len(ids) {
		t.Fatalf("%d results in state, %d distinct requests", st.Results, len(ids))
	}
	for id := range ids {
		if _, err := s.GetResult(id); err != nil {
			t.Errorf("result %s lost: %v", id, err)
		}
	}
}

// TestDependencies: the verifier stays small; it never links the circuits,
// the prover or the oracle.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"/zkoracle/circuits", "/zkoracle/prover", "/zkoracle/oracle"} {
			if strings.Contains(dep, banned) {
				t.Errorf("verifier depends on %s", dep)
			}
		}
	}
}

var _ = groth16.NewProof

func TestSetControllers(t *testing.T) {
	_, c := newService(t, filepath.Join(t.TempDir(), "state.db"), true)
	next := []Controller{{Name: "ops", TokenHash: HashToken("new-token")}}
	if st, out := c.do("POST", "/api/v1/update/set_controllers", "", map[string]any{"controllers": next}); st != 401 {
		t.Fatalf("without a token: %d %v", st, out)
	}
	if st, out := c.do("POST", "/api/v1/update/set_controllers", token, map[string]any{"controllers": []Controller{}}); st != 400 {
		t.Fatalf("empty list: %d %v", st, out)
	}
	if st, out := c.do("POST", "/api/v1/update/set_controllers", token, map[string]any{"controllers": next}); st != 200 {
		t.Fatalf("set: %d %v", st, out)
	}
	// The old token no longer works; the new one does.
	body := map[string]string{"model_id": strings.Repeat("ef", 32)}
	if st, _ := c.do("POST", "/api/v1/update/retire_model", token, body); st != 401 {
		t.Fatalf("old token: %d, want 401", st)
	}
	if st, _ := c.do("POST", "/api/v1/update/retire_model", "new-token", body); st != 404 {
		t.Fatalf("new token: %d, want 404 (authorised, unknown model)", st)
	}
}
