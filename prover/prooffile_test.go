package prover

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/consensys/gnark/backend/groth16"
)

var (
	proofOnce sync.Once
	proofPF   *ProofFile
	proofVK   groth16.VerifyingKey
	proofErr  error
)

// provedFile proves mnist-mlp test image 0 once per test binary.
func provedFile(t testing.TB) (*ProofFile, groth16.VerifyingKey) {
	t.Helper()
	proofOnce.Do(func() {
		s := &Store{Dir: t.TempDir(), DevSetup: true}
		m := fixture(t, "mnist-mlp")
		meta, err := s.Prepare(context.Background(), m, nil)
		if err != nil {
			proofErr = err
			return
		}
		p, _ := New(Options{Store: s, MaxConcurrent: 1})
		in := image(t, 0)
		r, err := p.Prove(context.Background(), m.ID(), in)
		if err != nil {
			proofErr = err
			return
		}
		proofPF = &ProofFile{Version: meta.LayoutVersion, ModelID: m.ID(), Input: ints(in), Output: r.Output, Class: r.Class, Proof: r.Proof}
		proofVK, proofErr = s.VerifyingKey(m.ID())
	})
	if proofErr != nil {
		t.Fatal(proofErr)
	}
	cp := *proofPF
	cp.Input = append([]int(nil), proofPF.Input...)
	cp.Output = append([]int64(nil), proofPF.Output...)
	cp.Proof = append([]byte(nil), proofPF.Proof...)
	return &cp, proofVK
}

func roundTrip(t *testing.T, pf *ProofFile) (*ProofFile, error) {
	b, err := json.Marshal(pf)
	if err != nil {
		t.Fatal(err)
	}
	return DecodeProofFile(bytes.NewReader(b))
}

func TestProofFile(t *testing.T) {
	pf, vk := provedFile(t)
	got, err := roundTrip(t, pf)
	if err != nil {
		t.Fatal(err)
	}
	if err := got.Verify(vk); err != nil {
		t.Fatalf("valid proof file rejected: %v", err)
	}
	for _, tc := range []struct {
		name   string
		tamper func(*ProofFile)
	}{
		{"output", func(p *ProofFile) { p.Output[2]++ }},
		{"input", func(p *ProofFile) { p.Input[300] ^= 1 }},
		{"class", func(p *ProofFile) { p.Class = (p.Class + 1) % 10 }},
		{"proof byte", func(p *ProofFile) { p.Proof[40] ^= 0x01 }},
		{"truncated proof", func(p *ProofFile) { p.Proof = p.Proof[:len(p.Proof)-10] }},
		{"zero proof", func(p *ProofFile) { p.Proof = make([]byte, len(p.Proof)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad, _ := provedFile(t)
			tc.tamper(bad)
			dec, err := roundTrip(t, bad)
			if err == nil {
				err = dec.Verify(vk)
			}
			if err == nil {
				t.Fatal("tampered proof file accepted")
			}
		})
	}
	for _, raw := range []string{`{`, `{"version":2,"model_id":"x","input":[1],"output":[1],"proof":"AA=="}`,
		`{"version":1,"input":[1],"output":[1],"proof":"AA==","extra":1}`, `{"version":1,"input":[200],"output":[1],"proof":"AA=="}`} {
		if _, err := DecodeProofFile(bytes.NewReader([]byte(raw))); err == nil {
			t.Errorf("DecodeProofFile(%s): got no error", raw)
		}
	}
}

func FuzzDecodeProofFile(f *testing.F) {
	pf, vk := provedFile(f)
	good, _ := json.Marshal(pf)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(`{"version":1,"model_id":"x","input":[1,2],"output":[3],"class":0,"proof":"AAAA"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := DecodeProofFile(bytes.NewReader(data))
		if err != nil {
			return
		}
		// Decoding never panics, and nothing but the true claim verifies.
		// (The model ID only selects the key, which is fixed here.)
		if err := p.Verify(vk); err == nil {
			claim := func(p *ProofFile) string { return fmt.Sprint(p.Input, p.Output, p.Class, p.Proof) }
			if claim(p) != claim(pf) {
				t.Fatalf("a different claim verified: %s", data)
			}
		}
	})
}
