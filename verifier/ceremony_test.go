package verifier_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zkoracle/zkoracle/fixtures"
	"github.com/zkoracle/zkoracle/internal/testenv"
	"github.com/zkoracle/zkoracle/oracle"
	"github.com/zkoracle/zkoracle/prover"
	"github.com/zkoracle/zkoracle/verifier"
	"github.com/zkoracle/zkoracle/verifier/ceremony"
	"github.com/zkoracle/zkoracle/verifier/core"
)

// TestCeremony runs the ceremony the issue asks for on mnist-mlp: two
// phase-1 contributions (operator, verifier), three phase-2 contributions
// (operator, verifier, an outside contributor), keys that prove and verify;
// then the ways it must fail.
func TestCeremony(t *testing.T) {
	if testing.Short() {
		t.Skip("a full ceremony: 30 s")
	}
	testenv.SkipUnderRace(t)
	ctx := context.Background()
	svc, err := verifier.Open(verifier.Options{Path: filepath.Join(t.TempDir(), "v.db"),
		Bootstrap: &verifier.Controller{Name: "admin", TokenHash: verifier.HashToken("t")}})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	v := oracle.Local{Service: svc, Caller: "admin"}
	store := &prover.Store{Dir: t.TempDir(), Ceremony: &prover.Ceremony{Contributors: []prover.Contributor{
		prover.Operator{Label: "operator"}, oracle.VerifierContributor{V: v}, prover.Operator{Label: "auditor"}}}}

	p1, err := oracle.EnsurePhase1(ctx, store, v, 12, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := ceremony.Names(p1.Contributions); strings.Join(got, ",") != "operator,verifier" {
		t.Fatalf("phase 1 contributors %v", got)
	}
	m, err := fixtures.Load("mnist-mlp")
	if err != nil {
		t.Fatal(err)
	}
	meta, err := store.Prepare(ctx, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Setup != prover.SetupMPC {
		t.Fatalf("setup %q", meta.Setup)
	}
	req, err := oracle.RegisterRequest(ctx, store, v, meta)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("tampered contribution is rejected", func(t *testing.T) {
		// The auditor's state with two Z points swapped: every point is
		// valid, the update proof is not.
		st, err := os.ReadFile(store.CeremonyFile(m.ID(), ceremony.StateFile(2, 2)))
		if err != nil {
			t.Fatal(err)
		}
		p, err := ceremony.DecodePhase2(st)
		if err != nil {
			t.Fatal(err)
		}
		z := p.Parameters.G1.Z
		z[0], z[1] = z[1], z[0]
		var b bytes.Buffer
		p.WriteTo(&b)
		sha, err := v.Upload(ctx, b.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		bad := req
		c := *req.Ceremony
		c.Contributions = append(append([]string{}, c.Contributions[:2]...), sha)
		bad.Ceremony = &c
		wantCode(t, v.Register(ctx, bad), "bad_ceremony")
		// Contributions out of order break the chain too.
		c.Contributions = []string{req.Ceremony.Contributions[1], req.Ceremony.Contributions[0], req.Ceremony.Contributions[2]}
		wantCode(t, v.Register(ctx, bad), "bad_ceremony")
	})

	t.Run("a key that is not the ceremony's is refused", func(t *testing.T) {
		bad := req
		dev := &prover.Store{Dir: t.TempDir(), DevSetup: true}
		if _, err := dev.Prepare(ctx, m, nil); err != nil {
			t.Fatal(err)
		}
		bad.VerifyingKey, _ = os.ReadFile(dev.Path(m.ID(), "vk.bin"))
		wantCode(t, v.Register(ctx, bad), "key_mismatch")
	})

	if err := v.Register(ctx, req); err != nil {
		t.Fatalf("register: %v", err)
	}
	tr, err := svc.CeremonyTranscript(m.ID())
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Phase1.Contributions) != 2 || len(tr.Phase2.Contributions) != 3 || tr.OwnPhase1 != 1 || tr.OwnPhase2 != 1 {
		t.Fatalf("transcript: %d + %d contributions, own %d/%d", len(tr.Phase1.Contributions), len(tr.Phase2.Contributions), tr.OwnPhase1, tr.OwnPhase2)
	}

	t.Run("keys prove and verify", func(t *testing.T) {
		pr, err := prover.New(prover.Options{Store: store, MaxConcurrent: 1})
		if err != nil {
			t.Fatal(err)
		}
		in0, _, _ := fixtures.TestInput(0)
		in1, _, _ := fixtures.TestInput(1)
		r, err := pr.Prove(ctx, m.ID(), in0)
		if err != nil {
			t.Fatal(err)
		}
		claim := func(id string, in []int8) verifier.SubmitRequest {
			return verifier.SubmitRequest{RequestID: id, VerifyRequest: verifier.VerifyRequest{
				ModelID: m.ID(), Claim: core.Claim{Input: core.InputOf(in), Output: r.Output}, Proof: r.Proof}}
		}
		if _, err := v.Submit(ctx, claim("r0", in0)); err != nil {
			t.Fatalf("the proof of image 0 is refused: %v", err)
		}
		if _, err := v.Submit(ctx, claim("r1", in1)); err == nil {
			t.Fatal("the proof of image 0 was accepted for image 1")
		}
	})

	t.Run("the transcript checks from scratch, and not once tampered", func(t *testing.T) {
		tp := store.TranscriptPath(m.ID())
		dir := store.Phase1Dir(p1.SRS)
		_, key, err := prover.CheckCeremony(m, tp, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if vk, _ := os.ReadFile(store.Path(m.ID(), "vk.bin")); !bytes.Equal(vk, key) {
			t.Fatal("the ceremony yields another key than the store's")
		}
		// Another model file (same circuit, other name) is not this ceremony's.
		other := *m
		other.Name = "not-mnist-mlp"
		if _, _, err := prover.CheckCeremony(&other, tp, dir, nil); err == nil || !strings.Contains(err.Error(), "is for model") {
			t.Errorf("transcript for another model: %v", err)
		}
		// A transcript whose record of a contribution was edited.
		edited := filepath.Join(filepath.Dir(tp), "edited.json")
		b, _ := os.ReadFile(tp)
		pk := tr.Phase2.Contributions[2].PublicKey
		os.WriteFile(edited, bytes.Replace(b, []byte(pk), []byte(strings.Repeat("0", len(pk))), 1), 0o644)
		if _, _, err := prover.CheckCeremony(m, edited, dir, nil); err == nil || !strings.Contains(err.Error(), "phase 2: contribution 3 (auditor)") {
			t.Errorf("transcript with an edited public key: %v", err)
		}
		// A phase-1 state file replaced by another valid contribution.
		tamperedDir := t.TempDir()
		states, _ := os.ReadDir(dir)
		for _, e := range states {
			b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
			os.WriteFile(filepath.Join(tamperedDir, e.Name()), b, 0o644)
		}
		s0, _ := ceremony.NewPhase1(12)
		s1, _, _ := ceremony.ContributePhase1(s0, "impostor")
		os.WriteFile(filepath.Join(tamperedDir, ceremony.StateFile(1, 0)), s1, 0o644)
		if _, _, err := prover.CheckCeremony(m, tp, tamperedDir, nil); err == nil || !strings.Contains(err.Error(), "phase 1 contribution 2") {
			t.Errorf("transcript with a replaced phase-1 contribution: %v", err)
		}
	})

	t.Run("outside contributions from files", func(t *testing.T) {
		other := *m
		other.Name = "mnist-mlp-outside"
		s0, err := store.InitialPhase2(&other)
		if err != nil {
			t.Fatal(err)
		}
		s1, _, err := ceremony.ContributePhase2(s0, "alice")
		if err != nil {
			t.Fatal(err)
		}
		s2, _, _ := ceremony.ContributePhase2(s1, "bob")
		withOutside := func(states ...[]byte) {
			r := &prover.Replay{Label: "outside", States: states}
			store.Ceremony = oracle.CeremonyWith(v)
			store.Ceremony.Contributors = append(r.Replays(), store.Ceremony.Contributors...)
		}
		withOutside(s2, s1)
		if _, err := store.Prepare(ctx, &other, nil); err == nil || !strings.Contains(err.Error(), "does not build on") {
			t.Fatalf("contributions out of order: %v", err)
		}
		withOutside(s1, s2)
		meta, err := store.Prepare(ctx, &other, nil)
		if err != nil {
			t.Fatal(err)
		}
		req, err := oracle.RegisterRequest(ctx, store, v, meta)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Register(ctx, req); err != nil {
			t.Fatal(err)
		}
		tr, _ := svc.CeremonyTranscript(other.ID())
		if got := strings.Join(ceremony.Names(tr.Phase2.Contributions), ","); got != "outside 1,outside 2,operator,verifier" || tr.OwnPhase2 != 3 {
			t.Fatalf("phase 2 contributors %s, own %d", got, tr.OwnPhase2)
		}
	})

	t.Run("a chain without the verifier is refused", func(t *testing.T) {
		alone := *m
		alone.Name = "mnist-mlp-operator-only"
		store.Ceremony = &prover.Ceremony{Contributors: []prover.Contributor{prover.Operator{Label: "operator"}, prover.Operator{Label: "operator again"}}}
		meta, err := store.Prepare(ctx, &alone, nil)
		if err != nil {
			t.Fatal(err)
		}
		req, err := oracle.RegisterRequest(ctx, store, v, meta)
		if err != nil {
			t.Fatal(err)
		}
		wantCode(t, v.Register(ctx, req), "no_own_contribution")

		// Nor does a contribution the verifier made for another model count.
		borrowed := *m
		borrowed.Name = "mnist-mlp-borrowed"
		store.Ceremony = &prover.Ceremony{Contributors: []prover.Contributor{prover.Operator{Label: "operator"},
			otherModel{oracle.VerifierContributor{V: v}, strings.Repeat("cd", 32)}}}
		if meta, err = store.Prepare(ctx, &borrowed, nil); err != nil {
			t.Fatal(err)
		}
		if req, err = oracle.RegisterRequest(ctx, store, v, meta); err != nil {
			t.Fatal(err)
		}
		wantCode(t, v.Register(ctx, req), "no_own_contribution")
	})

	t.Run("a phase 1 without the verifier is refused", func(t *testing.T) {
		s0, _ := ceremony.NewPhase1(12)
		s1, _, _ := ceremony.ContributePhase1(s0, "operator")
		sha, _ := v.Upload(ctx, s1)
		_, err := v.SetPhase1(ctx, verifier.SetPhase1Request{Power: 12, Contributions: []string{sha}, Beacon: "01"})
		wantCode(t, err, "no_own_contribution")
	})

	t.Run("dev keys are refused by default", func(t *testing.T) {
		dev := &prover.Store{Dir: t.TempDir(), DevSetup: true}
		meta, err := dev.Prepare(ctx, m, nil)
		if err != nil {
			t.Fatal(err)
		}
		other := verifier.RegisterRequest{ModelID: strings.Repeat("ab", 32), Name: "dev", LayoutVersion: meta.LayoutVersion,
			InputShape: meta.InputShape, OutputShape: meta.OutputShape, Setup: meta.Setup}
		other.VerifyingKey, _ = os.ReadFile(dev.Path(m.ID(), "vk.bin"))
		wantCode(t, v.Register(ctx, other), "dev_key_refused")
		other.Setup = "trust me"
		wantCode(t, v.Register(ctx, other), "no_ceremony")
	})
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var ve *verifier.Error
	switch {
	case err == nil:
		t.Fatalf("accepted, want %s", code)
	case errors.As(err, &ve) && ve.Code == code:
	default:
		t.Fatalf("got %v, want %s", err, code)
	}
}

// otherModel asks its contributor for a contribution under another model ID.
type otherModel struct {
	prover.Contributor
	id string
}

func (o otherModel) Contribute(ctx context.Context, phase int, _ string, state []byte) ([]byte, error) {
	return o.Contributor.Contribute(ctx, phase, o.id, state)
}

// TestCeremonyHTTP drives the ceremony calls over HTTP as a remote oracle
// would: chunked blobs both ways, a phase 1 with the verifier, and the
// errors of each call.
func TestCeremonyHTTP(t *testing.T) {
	ctx := context.Background()
	svc, err := verifier.Open(verifier.Options{Path: filepath.Join(t.TempDir(), "v.db"), MaxStoredBytes: 4 << 20,
		Bootstrap: &verifier.Controller{Name: "admin", TokenHash: verifier.HashToken("t")}})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	srv := httptest.NewServer(verifier.Handler(svc))
	defer srv.Close()
	v := oracle.Remote{URL: srv.URL, Token: "t"}

	blob := make([]byte, 2*verifier.MaxChunkBytes+1000)
	rand.Read(blob)
	sha, err := v.Upload(ctx, blob)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := v.Download(ctx, sha); err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("download: %d bytes, %v", len(got), err)
	}

	post := func(token string, body map[string]any) (int, string) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/update/upload_chunk", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct{ Error struct{ Code string } }
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out.Error.Code
	}
	other := ceremony.Hash([]byte("other"))
	for _, c := range []struct {
		name, token string
		body        map[string]any
		status      int
		code        string
	}{
		{"no token", "", map[string]any{"sha256": other, "size": 5, "offset": 0, "data": []byte("other")}, 401, "not_controller"},
		{"bad hash", "t", map[string]any{"sha256": "xyz", "size": 5, "offset": 0, "data": []byte("other")}, 400, "bad_hash"},
		{"gap", "t", map[string]any{"sha256": other, "size": 5, "offset": 2, "data": []byte("her")}, 409, "chunk_gap"},
		{"past the end", "t", map[string]any{"sha256": other, "size": 3, "offset": 0, "data": []byte("other")}, 400, "bad_chunk"},
		{"wrong bytes", "t", map[string]any{"sha256": other, "size": 5, "offset": 0, "data": []byte("OTHER")}, 422, "hash_mismatch"},
		{"unknown field", "t", map[string]any{"sha": other}, 400, "bad_json"},
	} {
		if st, code := post(c.token, c.body); st != c.status || code != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, st, code, c.status, c.code)
		}
	}
	if _, err := v.Download(ctx, other); err == nil {
		t.Error("a blob that failed its hash was kept")
	}
	// Storage is bounded: the blob above (2 MiB + 1000) and 1 MiB more fit
	// the 4 MiB this verifier allows, 2 MiB more do not.
	big := make([]byte, 2<<20)
	rand.Read(big)
	if _, err := v.Upload(ctx, big[:1<<20]); err != nil {
		t.Fatal(err)
	}
	_, err = v.Upload(ctx, big)
	wantRejection(t, err, "storage_full")
	// Nor can contributions fill it: the verifier's new state must fit too.
	s0, _ := ceremony.NewPhase1(12) // 0.8 MB
	sha0, err := v.Upload(ctx, s0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Contribute(ctx, verifier.ContributeRequest{Phase: 1, State: sha0})
	wantRejection(t, err, "storage_full")

	// Garbage is not a ceremony state; a phase-1 chain needs the verifier.
	_, err = v.Contribute(ctx, verifier.ContributeRequest{Phase: 1, State: sha})
	wantRejection(t, err, "bad_state")
	_, err = v.Contribute(ctx, verifier.ContributeRequest{Phase: 2, State: sha})
	wantRejection(t, err, "bad_model_id")
	store := &prover.Store{Dir: t.TempDir()}
	p1, err := oracle.EnsurePhase1(ctx, store, v, 6, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := v.Phase1(ctx)
	if err != nil || rec.SRS != p1.SRS || rec.Own != 1 {
		t.Fatalf("verifier phase 1 %+v, %v; store's %s", rec, err, p1.SRS)
	}

	// Every ceremony call refuses bad input with a 4xx and its code.
	unknown := ceremony.Hash([]byte("never uploaded"))
	model := strings.Repeat("ab", 32)
	_, err = v.Contribute(ctx, verifier.ContributeRequest{Phase: 3, State: sha})
	wantRejection(t, err, "bad_phase")
	_, err = v.Contribute(ctx, verifier.ContributeRequest{Phase: 1, State: unknown})
	wantRejection(t, err, "unknown_blob")
	_, err = v.SetPhase1(ctx, verifier.SetPhase1Request{Power: 6, Contributions: []string{sha}, Beacon: "not hex"})
	wantRejection(t, err, "bad_beacon")
	_, err = v.SetPhase1(ctx, verifier.SetPhase1Request{Power: 6, Contributions: []string{unknown}, Beacon: "01"})
	wantRejection(t, err, "unknown_blob")
	_, err = v.SetPhase1(ctx, verifier.SetPhase1Request{Power: 6, Contributions: []string{sha}, Beacon: "01"})
	wantRejection(t, err, "bad_ceremony")
	reg := verifier.RegisterRequest{ModelID: model, Name: "m", LayoutVersion: 1, InputShape: []int{4}, OutputShape: []int{2},
		Ceremony: &verifier.CeremonySetup{Circuit: unknown, Contributions: []string{unknown}, Beacon: "zz"}}
	wantRejection(t, v.Register(ctx, reg), "bad_beacon")
	reg.Ceremony.Beacon = "01"
	wantRejection(t, v.Register(ctx, reg), "unknown_blob")
	reg.Ceremony.Circuit = sha
	wantRejection(t, v.Register(ctx, reg), "unknown_blob")
	reg.Ceremony.Contributions = []string{sha}
	wantRejection(t, v.Register(ctx, reg), "bad_circuit")
	for path, code := range map[string]string{
		"/api/v1/query/blob/" + unknown:            "unknown_blob",
		"/api/v1/query/blob/" + sha + "?offset=-1": "bad_range",
		"/api/v1/query/blob/" + sha + "?offset=x":  "bad_range",
		"/api/v1/query/transcript/" + model:        "no_transcript",
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Error struct{ Code, Message string }
		}
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode/100 != 4 || out.Error.Code != code || out.Error.Message == "" {
			t.Errorf("GET %s: %d %+v, want 4xx %s", path, resp.StatusCode, out.Error, code)
		}
	}
}

func wantRejection(t *testing.T, err error, code string) {
	t.Helper()
	var r *oracle.Rejection
	if !errors.As(err, &r) || r.Code != code {
		t.Fatalf("got %v, want %s", err, code)
	}
}
