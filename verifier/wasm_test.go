package verifier

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/zkoracle/zkoracle/verifier/core"
)

var (
	wasmOnce sync.Once
	wasmBin  []byte
	wasmErr  error
)

// buildWasm compiles verifier/wasm for GOOS=wasip1 GOARCH=wasm once.
func buildWasm(t testing.TB) []byte {
	t.Helper()
	wasmOnce.Do(func() {
		dir, err := os.MkdirTemp("", "zkoracle-wasm")
		if err != nil {
			wasmErr = err
			return
		}
		out := filepath.Join(dir, "verify.wasm")
		cmd := exec.Command("go", "build", "-o", out, "./wasm")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if b, err := cmd.CombinedOutput(); err != nil {
			wasmErr = err
			t.Logf("%s", b)
			return
		}
		wasmBin, wasmErr = os.ReadFile(out)
	})
	if wasmErr != nil {
		t.Fatal(wasmErr)
	}
	return wasmBin
}

type wasmRunner struct {
	rt  wazero.Runtime
	mod wazero.CompiledModule
}

func newWasmRunner(t testing.TB) *wasmRunner {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	mod, err := rt.CompileModule(ctx, buildWasm(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(ctx) })
	return &wasmRunner{rt, mod}
}

// verify runs one verification in a fresh instance of the module.
func (w *wasmRunner) verify(t testing.TB, req wasmRequest) (bool, string) {
	b, _ := json.Marshal(req)
	var out, errb bytes.Buffer
	cfg := wazero.NewModuleConfig().WithStdin(bytes.NewReader(b)).WithStdout(&out).WithStderr(&errb).WithName("")
	m, err := w.rt.InstantiateModule(context.Background(), w.mod, cfg)
	if m != nil {
		m.Close(context.Background())
	}
	if err != nil && !isExit0(err) {
		t.Fatalf("wasm: %v\n%s", err, errb.String())
	}
	var v struct {
		Valid  bool   `json:"valid"`
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatalf("wasm reply %q: %v", out.String(), err)
	}
	return v.Valid, v.Reason
}

func isExit0(err error) bool {
	type exitCoder interface{ ExitCode() uint32 }
	e, ok := err.(exitCoder)
	return ok && e.ExitCode() == 0
}

type wasmRequest struct {
	Key        []byte  `json:"verifying_key"`
	Proof      []byte  `json:"proof"`
	Input      []int   `json:"input"`
	Output     []int64 `json:"output"`
	InputSize  int     `json:"input_size"`
	OutputSize int     `json:"output_size"`
}

func nativeVerdict(r wasmRequest) bool {
	vk, err := core.DecodeKey(r.Key)
	if err != nil {
		return false
	}
	p, err := core.DecodeProof(r.Proof)
	if err != nil {
		return false
	}
	return core.Check(vk, p, core.Claim{Input: r.Input, Output: r.Output}, r.InputSize, r.OutputSize) == nil
}

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
