package verifier

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/zkoracle/zkoracle/verifier/wasmhost"
)

var (
	wasmOnce sync.Once
	wasmBin  []byte
	wasmErr  error
)

// newWasmRunner builds verifier/wasm once per test binary and compiles it
// for wazero.
func newWasmRunner(t testing.TB) *wasmRunner {
	t.Helper()
	wasmOnce.Do(func() { wasmBin, wasmErr = wasmhost.Build(".") })
	if wasmErr != nil {
		t.Fatal(wasmErr)
	}
	r, err := wasmhost.New(context.Background(), wasmBin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return &wasmRunner{t, r}
}

type wasmRunner struct {
	t testing.TB
	r *wasmhost.Runner
}

type wasmRequest = wasmhost.Request

func (w *wasmRunner) verify(t testing.TB, req wasmRequest) (bool, string) {
	ok, reason, err := w.r.Verify(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return ok, reason
}

func nativeVerdict(r wasmRequest) bool { return r.Verify() == nil }

// TestWasmSameVerdicts runs the verify core compiled to wasip1 under wazero
// and checks it agrees with the native core on valid and invalid proofs.
func TestWasmSameVerdicts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the wasm module (about 20 s)")
	}
	mods := fixtureProofs(t)
	w := newWasmRunner(t)
	mlp, cnn := mods["mnist-mlp"], mods["mnist-cnn"]
	req := func(p *proved, i int) wasmRequest {
		c := p.claims[i]
		return wasmRequest{Key: p.reg.VerifyingKey, Proof: append([]byte(nil), c.Proof...), Input: append([]int(nil), c.Input...),
			Output: append([]int64(nil), c.Output...), InputSize: 784, OutputSize: 10}
	}
	raw := rawProof(t, mlp.claims[0].Proof)
	bad := nonSubgroupG2(t)
	cases := []struct {
		name  string
		r     func() wasmRequest
		valid bool
	}{
		{"mlp valid", func() wasmRequest { return req(mlp, 0) }, true},
		{"cnn valid", func() wasmRequest { return req(cnn, 1) }, true},
		{"tampered output", func() wasmRequest { r := req(mlp, 0); r.Output[0]++; return r }, false},
		{"another input", func() wasmRequest { r := req(mlp, 0); r.Input = mlp.claims[1].Input; return r }, false},
		{"another model's key", func() wasmRequest { r := req(mlp, 0); r.Key = cnn.reg.VerifyingKey; return r }, false},
		{"tampered proof byte", func() wasmRequest { r := req(cnn, 0); r.Proof[9] ^= 4; return r }, false},
		{"G2 outside subgroup", func() wasmRequest {
			r := req(mlp, 0)
			r.Proof = append([]byte(nil), raw...)
			b := bad.RawBytes()
			copy(r.Proof[64:], b[:])
			return r
		}, false},
		{"garbage key", func() wasmRequest { r := req(mlp, 0); r.Key = bytes.Repeat([]byte{7}, 500); return r }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			native := nativeVerdict(tc.r())
			start := time.Now()
			got, reason := w.verify(t, tc.r())
			if native != tc.valid || got != native {
				t.Fatalf("native %v, wasm %v (%s), want %v", native, got, reason, tc.valid)
			}
			t.Logf("wasm verdict %v in %s %s", got, time.Since(start).Round(time.Millisecond), reason)
		})
	}
}

// BenchmarkWasmVerify times one mnist-cnn verification in a fresh instance
// of the wasm module under wazero (instantiation included, as a canister
// call would pay its own).
func BenchmarkWasmVerify(b *testing.B) {
	mods := fixtureProofs(b)
	w := newWasmRunner(b)
	c := mods["mnist-cnn"]
	r := wasmRequest{Key: c.reg.VerifyingKey, Proof: c.claims[0].Proof, Input: c.claims[0].Input, Output: c.claims[0].Output, InputSize: 784, OutputSize: 10}
	for b.Loop() {
		if ok, reason := w.verify(b, r); !ok {
			b.Fatal(reason)
		}
	}
}
