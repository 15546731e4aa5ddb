package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Published numbers of other zkML systems on the same architectures, from
// the ZKML-Benchmark suite (Guy1m0/ZKML-Benchmark: README and
// benchmarks/benchmark_results.csv). Measured on other hardware: a reader
// can compare orders of magnitude, not ratios.
var published = []struct{ arch, system, prove, memory, note string }{
	{"784-56-10", "circomlib-ml (Groth16)", "2.35 s", "2,328 MB", "73,416 non-linear constraints; setup 690 s"},
	{"784-56-10", "ezkl (Halo2), resources mode", "2.66 s", "223 MB", "4.96% accuracy loss"},
	{"784-56-10", "ezkl (Halo2), accuracy mode", "38.01 s", "4,807 MB", ""},
	{"784-56-10", "zkml (Halo2)", "22.01 s", "2,357 MB", ""},
	{"28_6_16_10_5", "zkml (Halo2)", "15.62 s", "1,765 MB", ""},
	{"28_6_16_10_5", "circomlib-ml (Groth16)", "not reported", "", "2,558,720 non-linear constraints; setup 24,107 s"},
}

// WriteJSON writes the report.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Markdown returns the results table, the machine line and the published
// comparison.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured by `make bench` on %s (%s, %s; shared machine, medians).\n\n", r.Date, r.Machine, r.Go)
	b.WriteString("| model | constraints | public inputs | compile | setup | prove (median, min-max) | verify native | verify wasm | proof | proving key | peak RSS | int8 acc | float acc | agreement |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, x := range r.Results {
		wasm := "-"
		if x.VerifyWasm != nil {
			wasm = fmt.Sprintf("%.1f ms per call (%.0f ms cold)", x.VerifyWasm.Median, x.WasmInstance.Median)
		}
		acc, fl, ag := "-", "-", "-"
		if x.TestImages > 0 {
			acc = fmt.Sprintf("%.2f%%", 100*x.Int8Accuracy)
		}
		if x.FloatAccuracy > 0 {
			fl, ag = fmt.Sprintf("%.2f%%", 100*x.FloatAccuracy), fmt.Sprintf("%.2f%%", 100*x.FloatAgree)
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %.2f s | %.1f s | %.0f ms (%.0f-%.0f) | %.2f ms | %s | %d B | %.1f MB | %.0f MB | %s | %s | %s |\n",
			x.Model, x.Constraints, x.PublicInputs, x.CompileMs/1000, x.SetupMs/1000, x.Prove.Median, x.Prove.Min, x.Prove.Max,
			x.VerifyNative.Median, wasm, x.ProofBytes, x.ProvingKeyMB, x.PeakRSSMB, acc, fl, ag)
	}
	b.WriteString("\nwasm: the verify core built for wasip1 under wazero; per call = proof decode + check with the key already decoded (as a canister keeps it), cold = fresh instance + key decode + call.\n")
	b.WriteString("\nPublished numbers of other systems on the same architectures (ZKML-Benchmark suite; **other hardware**, proving time only):\n\n")
	b.WriteString("| architecture | system | prove | memory | note |\n|---|---|---|---|---|\n")
	for _, p := range published {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", p.arch, p.system, p.prove, p.memory, p.note)
	}
	b.WriteString("\nmnist-mlp is 784-56-10 and mnist-cnn is 28_6_16_10_5 (conv5x5(6)-ReLU-avgpool-conv5x5(16)-ReLU-avgpool-dense(10)).\n")
	return b.String()
}

// Charts writes prove_time.png (proving time per model) and
// constraints_per_layer.png (constraints per layer, one bar group per model).
func (r *Report) Charts(dir string) error {
	p := plot.New()
	p.Title.Text = "Groth16 proving time (median, this machine)"
	p.Y.Label.Text = "ms"
	vals := plotter.Values{}
	names := []string{}
	for _, x := range r.Results {
		vals = append(vals, x.Prove.Median)
		names = append(names, x.Model)
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(40))
	if err != nil {
		return err
	}
	bars.Color = color.RGBA{R: 50, G: 110, B: 200, A: 255}
	p.Add(bars)
	p.NominalX(names...)
	if err := p.Save(5*vg.Inch, 3.5*vg.Inch, filepath.Join(dir, "prove_time.png")); err != nil {
		return err
	}

	p = plot.New()
	p.Title.Text = "R1CS constraints per layer"
	p.Y.Label.Text = "constraints"
	var labels []string
	for _, x := range r.Results {
		for _, l := range x.Layers {
			if l.Constraints == 0 {
				continue
			}
			labels = append(labels, shortLayer(x.Model, l.Name))
		}
	}
	vals = plotter.Values{}
	for _, x := range r.Results {
		for _, l := range x.Layers {
			if l.Constraints > 0 {
				vals = append(vals, float64(l.Constraints))
			}
		}
	}
	bars, err = plotter.NewBarChart(vals, vg.Points(14))
	if err != nil {
		return err
	}
	bars.Color = color.RGBA{R: 200, G: 90, B: 40, A: 255}
	p.Add(bars)
	p.NominalX(labels...)
	p.X.Tick.Label.Rotation = 0.8
	p.X.Tick.Label.XAlign = -1
	return p.Save(8*vg.Inch, 5*vg.Inch, filepath.Join(dir, "constraints_per_layer.png"))
}

func shortLayer(model, layer string) string {
	m := strings.TrimPrefix(model, "mnist-")
	f := strings.Fields(layer)
	if len(f) >= 3 && f[0] == "op" {
		return m + " " + f[2] + " " + f[1]
	}
	return m + " " + layer
}

// Markers delimit the generated table in README.md.
const (
	MarkStart = "<!-- bench:start (generated by make bench; do not edit) -->"
	MarkEnd   = "<!-- bench:end -->"
)

// UpdateReadme replaces the text between the markers in path with the
// Markdown table (the markers must be there).
func (r *Report) UpdateReadme(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	i, j := bytes.Index(b, []byte(MarkStart)), bytes.Index(b, []byte(MarkEnd))
	if i < 0 || j < i {
		return fmt.Errorf("%s has no bench markers", path)
	}
	out := append([]byte{}, b[:i+len(MarkStart)]...)
	out = append(out, '\n')
	out = append(out, r.Markdown()...)
	out = append(out, b[j:]...)
	return os.WriteFile(path, out, 0o644)
}
