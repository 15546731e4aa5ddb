// Package wasmhost builds the verify core as a WASI module (verifier/wasm)
// and runs it under wazero: how the tests and the benchmark suite check and
// time what a canister would run.
package wasmhost

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/zkoracle/zkoracle/verifier/core"
)

// Build compiles ./verifier/wasm of the module rooted at (or above) dir
// with GOOS=wasip1 GOARCH=wasm and returns the module bytes.
func Build(dir string) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "zkoracle-wasm")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "verify.wasm")
	cmd := exec.Command("go", "build", "-o", out, "github.com/zkoracle/zkoracle/verifier/wasm")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build wasm: %v\n%s", err, b)
	}
	return os.ReadFile(out)
}

// Request is what the module reads on stdin.
type Request = core.Request

// Runner runs the compiled module, one fresh instance per verification.
type Runner struct {
	rt  wazero.Runtime
	mod wazero.CompiledModule
}

// New compiles the module for wazero.
func New(ctx context.Context, wasm []byte) (*Runner, error) {
	rt := wazero.NewRuntime(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	mod, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		rt.Close(ctx)
		return nil, err
	}
	return &Runner{rt, mod}, nil
}

// Close releases the runtime.
func (r *Runner) Close(ctx context.Context) error { return r.rt.Close(ctx) }

// Verify runs one verification and returns the module's verdict.
func (r *Runner) Verify(ctx context.Context, req Request) (bool, string, error) {
	v, err := r.Run(ctx, req)
	return v.Valid, v.Reason, err
}

// Verdict is the module's reply.
type Verdict struct {
	Valid  bool   `json:"valid"`
	Reason string `json:"reason"`
	// VerifyNanos is the time inside the instance from decoding the proof
	// to the verdict; the rest of a Run is instance start and key decoding.
	VerifyNanos int64 `json:"verify_ns"`
}

// Run runs one verification in a fresh instance and returns the reply.
func (r *Runner) Run(ctx context.Context, req Request) (Verdict, error) {
	var v Verdict
	b, err := json.Marshal(req)
	if err != nil {
		return v, err
	}
	var out, errb bytes.Buffer
	cfg := wazero.NewModuleConfig().WithStdin(bytes.NewReader(b)).WithStdout(&out).WithStderr(&errb).WithName("").
		WithSysNanotime().WithSysWalltime() // real clocks: wazero's default ones are fake
	m, err := r.rt.InstantiateModule(ctx, r.mod, cfg)
	if m != nil {
		m.Close(ctx)
	}
	if err != nil && !exit0(err) {
		return v, fmt.Errorf("wasm: %v: %s", err, errb.String())
	}
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		return v, fmt.Errorf("wasm reply %q: %w", out.String(), err)
	}
	return v, nil
}

func exit0(err error) bool {
	e, ok := err.(interface{ ExitCode() uint32 })
	return ok && e.ExitCode() == 0
}
