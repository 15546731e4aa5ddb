package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/zkoracle/zkoracle/bench"
	"github.com/zkoracle/zkoracle/fixtures"
	"github.com/zkoracle/zkoracle/model"
	"github.com/zkoracle/zkoracle/verifier/wasmhost"
)

func init() {
	register("bench", "run the circuit benchmark suite (JSON, Markdown, PNG charts)", benchCmd)
}

func benchCmd(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	out := fs.String("out", "bench/results", "output directory")
	runs := fs.Int("runs", 5, "proofs per model (median and spread)")
	readme := fs.String("readme", "", "also rewrite the generated table in this README")
	noWasm := fs.Bool("no-wasm", false, "skip the wasm verification (needs the Go toolchain and the source tree)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	names := fs.Args()
	if len(names) == 0 {
		names = fixtures.Names
	}
	var models []*model.Model
	for _, n := range names {
		m, err := loadModel(n)
		if err != nil {
			return err
		}
		models = append(models, m)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	ctx := context.Background()
	bar := progressbar.NewOptions(-1, progressbar.OptionSetWriter(os.Stderr), progressbar.OptionSpinnerType(14), progressbar.OptionClearOnFinish())
	progress := func(m, s string) { bar.Describe(fmt.Sprintf("bench %s: %s", m, s)); bar.Add(1) }
	o := bench.Options{ProveRuns: *runs, VerifyRuns: 50, Float: map[string][2]float64{}, Progress: progress}
	for _, n := range fixtures.Names {
		if r, ok := fixtures.Accuracy(n); ok {
			o.Float[n] = [2]float64{r.Float, r.Agreement}
		}
	}
	if !*noWasm {
		progress("all", "build the wasm verify core")
		wasm, err := wasmhost.Build(".")
		if err != nil {
			return fmt.Errorf("%w (run from the source tree, or pass --no-wasm)", err)
		}
		runner, err := wasmhost.New(ctx, wasm)
		if err != nil {
			return err
		}
		defer runner.Close(ctx)
		o.Wasm = func(vk, proof []byte, input []int, output []int64) (time.Duration, time.Duration, error) {
			t := time.Now()
			v, err := runner.Run(ctx, wasmhost.Request{Key: vk, Proof: proof, Input: input, Output: output, InputSize: len(input), OutputSize: len(output)})
			if err == nil && !v.Valid {
				err = fmt.Errorf("rejected: %s", v.Reason)
			}
			return time.Duration(v.VerifyNanos), time.Since(t), err
		}
	}
	rep := &bench.Report{Date: time.Now().UTC().Format("2006-01-02"), Machine: bench.Machine(), Go: runtime.Version()}
	start := time.Now()
	for _, m := range models {
		r, err := bench.Run(ctx, m, o)
		if err != nil {
			return fmt.Errorf("%s: %w", m.Name, err)
		}
		rep.Results = append(rep.Results, *r)
	}
	bar.Finish()
	if err := rep.WriteJSON(filepath.Join(*out, "results.json")); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*out, "RESULTS.md"), []byte(rep.Markdown()), 0o644); err != nil {
		return err
	}
	if err := rep.Charts(*out); err != nil {
		return err
	}
	if *readme != "" {
		if err := rep.UpdateReadme(*readme); err != nil {
			return err
		}
	}
	fmt.Print(rep.Markdown())
	fmt.Printf("\nwrote %s/{results.json,RESULTS.md,prove_time.png,constraints_per_layer.png} in %s\n", *out, time.Since(start).Round(time.Second))
	return nil
}
