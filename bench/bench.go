// Package bench is zkoracle's circuit benchmark suite: for each model it
// measures constraints (total and per layer), compile, setup, proving
// (median and spread), native and wasm verification, proof and key sizes,
// peak memory and accuracy, and writes them as JSON, a Markdown table and
// PNG charts. `make bench` runs it on the fixtures.
package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/consensys/gnark/backend/groth16"

	"github.com/zkoracle/zkoracle/circuits"
	"github.com/zkoracle/zkoracle/fixtures/mnist"
	"github.com/zkoracle/zkoracle/model"
	"github.com/zkoracle/zkoracle/verifier/core"
)

// Stat is a repeated measurement, in milliseconds.
type Stat struct {
	Runs   int     `json:"runs"`
	Median float64 `json:"median_ms"`
	Min    float64 `json:"min_ms"`
	Max    float64 `json:"max_ms"`
}

func stat(ds []time.Duration) Stat {
	ms := make([]float64, len(ds))
	for i, d := range ds {
		ms[i] = float64(d.Microseconds()) / 1000
	}
	slices.Sort(ms)
	return Stat{Runs: len(ms), Median: ms[len(ms)/2], Min: ms[0], Max: ms[len(ms)-1]}
}

// Layer is one line of the per-layer constraint count.
type Layer struct {
	Name        string `json:"name"`
	Gadget      string `json:"gadget"`
	Values      int    `json:"values"`
	Constraints int    `json:"constraints"`
}

// Result is everything measured for one model.
type Result struct {
	Model         string  `json:"model"`
	ModelID       string  `json:"model_id"`
	Constraints   int     `json:"constraints"`
	PublicInputs  int     `json:"public_inputs"`
	Layers        []Layer `json:"layers"`
	CompileMs     float64 `json:"compile_ms"`
	SetupMs       float64 `json:"setup_ms"`
	Prove         Stat    `json:"prove"`
	VerifyNative  Stat    `json:"verify_native"`
	VerifyWasm    *Stat   `json:"verify_wasm,omitempty"`   // in the instance, per call
	WasmInstance  *Stat   `json:"wasm_instance,omitempty"` // a fresh instance, start included
	ProofBytes    int     `json:"proof_bytes"`
	ProvingKeyMB  float64 `json:"proving_key_mb"`
	VerifyKeyKB   float64 `json:"verifying_key_kb"`
	PeakRSSMB     float64 `json:"peak_rss_mb"`
	Int8Accuracy  float64 `json:"int8_accuracy"`
	TestImages    int     `json:"test_images"`
	FloatAgree    float64 `json:"float_agreement,omitempty"` // recorded in fixtures/accuracy.json
	FloatAccuracy float64 `json:"float_accuracy,omitempty"`
}

// Report is a whole run.
type Report struct {
	Date    string   `json:"date"`
	Machine string   `json:"machine"`
	Go      string   `json:"go"`
	Results []Result `json:"results"`
}

// Options configures a run.
type Options struct {
	ProveRuns, VerifyRuns int
	// Wasm, when set, verifies a proof with the wasm build of the verify
	// core in a fresh instance; it returns the verification time inside the
	// instance and the whole run, instance start included.
	Wasm func(vk, proof []byte, input []int, output []int64) (verify, total time.Duration, err error)
	// Recorded float figures by model name (fixtures/accuracy.json).
	Float    map[string][2]float64 // accuracy, agreement
	Progress func(model, step string)
}

// Machine describes this machine for the report.
func Machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d cores, %s/%s", cpu, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
}

// Run measures one model.
func Run(ctx context.Context, m *model.Model, o Options) (*Result, error) {
	step := func(s string) {
		if o.Progress != nil {
			o.Progress(m.Name, s)
		}
	}
	r := &Result{Model: m.Name, ModelID: m.ID()}
	step("constraints per layer")
	rep, err := circuits.Report(m)
	if err != nil {
		return nil, err
	}
	r.Constraints, r.PublicInputs = rep.Constraints, rep.PublicInputs
	for _, l := range rep.Layers {
		r.Layers = append(r.Layers, Layer{l.Name, l.Kind, l.Activations, l.Constraints})
	}
	resetPeakRSS()
	step("compile")
	t := time.Now()
	cs, err := circuits.Compile(m)
	if err != nil {
		return nil, err
	}
	r.CompileMs = ms(time.Since(t))
	step("setup")
	t = time.Now()
	pk, vk, err := groth16.Setup(cs)
	if err != nil {
		return nil, err
	}
	r.SetupMs = ms(time.Since(t))
	var pkb, vkb bytes.Buffer
	pk.WriteRawTo(&pkb)
	vk.WriteTo(&vkb)
	r.ProvingKeyMB, r.VerifyKeyKB = float64(pkb.Len())/(1<<20), float64(vkb.Len())/1024
	pkb = bytes.Buffer{}

	img, _, _ := mnist.TestImage(0)
	input := model.PixelsToInput(img)
	if len(input) != m.Input.Size() { // a model that does not take MNIST images
		input = make([]int8, m.Input.Size())
	}
	step("prove")
	var proofBytes []byte
	var output []int64
	var proves []time.Duration
	for range max(1, o.ProveRuns) {
		assignment, out, err := circuits.Assign(m, input)
		if err != nil {
			return nil, err
		}
		t := time.Now()
		w, err := witnessOf(assignment)
		if err != nil {
			return nil, err
		}
		proof, err := groth16.Prove(cs, pk, w)
		if err != nil {
			return nil, err
		}
		proves = append(proves, time.Since(t))
		var b bytes.Buffer
		proof.WriteTo(&b)
		proofBytes, output = b.Bytes(), out
	}
	r.Prove, r.ProofBytes = stat(proves), len(proofBytes)
	r.PeakRSSMB = float64(peakRSSKB()) / 1024

	step("verify")
	claim := core.Claim{Input: core.InputOf(input), Output: output}
	dvk, err := core.DecodeKey(vkb.Bytes())
	if err != nil {
		return nil, err
	}
	var verifies []time.Duration
	for range max(1, o.VerifyRuns) {
		t := time.Now()
		p, err := core.DecodeProof(proofBytes)
		if err == nil {
			err = core.Check(dvk, p, claim, m.Input.Size(), len(output))
		}
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		verifies = append(verifies, time.Since(t))
	}
	r.VerifyNative = stat(verifies)
	if o.Wasm != nil {
		step("verify (wasm)")
		var ws, wt []time.Duration
		for range 5 {
			v, total, err := o.Wasm(vkb.Bytes(), proofBytes, claim.Input, output)
			if err != nil {
				return nil, fmt.Errorf("wasm verify: %w", err)
			}
			ws, wt = append(ws, v), append(wt, total)
		}
		s, st := stat(ws), stat(wt)
		r.VerifyWasm, r.WasmInstance = &s, &st
	}
	if m.Input.Size() == mnist.Pixels {
		step("accuracy")
		test, err := mnist.Test()
		if err != nil {
			return nil, err
		}
		hits := 0
		for i, img := range test.Images {
			tr, err := m.Run(model.PixelsToInput(img))
			if err != nil {
				return nil, err
			}
			if model.Argmax(tr.Output) == int(test.Labels[i]) {
				hits++
			}
		}
		r.TestImages, r.Int8Accuracy = test.Len(), float64(hits)/float64(test.Len())
		if f, ok := o.Float[m.Name]; ok {
			r.FloatAccuracy, r.FloatAgree = f[0], f[1]
		}
	}
	return r, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// resetPeakRSS resets the kernel's peak-RSS mark of this process (Linux).
func resetPeakRSS() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

func peakRSSKB() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			var kb int
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb
		}
	}
	return 0
}
