package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/zkoracle/zkoracle/fixtures/mnist"
	"github.com/zkoracle/zkoracle/model"
	"github.com/zkoracle/zkoracle/prover"
)

func init() {
	register("demo", "prove and verify a few MNIST inferences end to end (in process)", demo)
}

// demo prepares a model (compile + single-party setup, cached in the store),
// then proves and verifies a few test images, the verifier rebuilding the
// public inputs from input and output alone.
func demo(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	name := fs.String("model", "mnist-cnn", "model file or fixture name")
	first := fs.Int("image", 0, "first MNIST test image")
	count := fs.Int("n", 5, "number of images")
	storeDir := fs.String("store", defaultStore(), "artifact store directory (keys are cached here)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	m, err := loadModel(*name)
	if err != nil {
		return err
	}
	ctx := context.Background()
	store := &prover.Store{Dir: *storeDir}
	start := time.Now()
	meta, err := prepare(ctx, store, m)
	if err != nil {
		return err
	}
	fmt.Printf("model %s (%s): %d R1CS constraints, %d public inputs\nkeys ready in %s (store %s; setup: %s)\n\n",
		m.Name, m.ID()[:16], meta.Constraints, meta.PublicInputs, since(start), *storeDir, meta.Setup)
	vk, err := store.VerifyingKey(m.ID())
	if err != nil {
		return err
	}
	p, err := prover.New(prover.Options{Store: store, MaxConcurrent: 1})
	if err != nil {
		return err
	}
	fmt.Printf("%-6s %-6s %-10s %-9s %-9s %s\n", "image", "label", "predicted", "prove", "verify", "verdict")
	for n := *first; n < *first+*count; n++ {
		img, label, err := mnist.TestImage(n)
		if err != nil {
			return err
		}
		input := model.PixelsToInput(img)
		r, err := p.Prove(ctx, m.ID(), input)
		if err != nil {
			return fmt.Errorf("prove image %d: %w", n, err)
		}
		pf := prover.ProofFile{Version: meta.LayoutVersion, ModelID: m.ID(), Output: r.Output, Class: r.Class, Proof: r.Proof}
		for _, v := range input {
			pf.Input = append(pf.Input, int(v))
		}
		t0 := time.Now()
		verdict := "verified"
		if err := pf.Verify(vk); err != nil {
			verdict = "REJECTED: " + err.Error()
		}
		fmt.Printf("%-6d %-6d %-10d %-9s %-9s %s\n", n, label, r.Class, r.ProveTime.Round(time.Millisecond), time.Since(t0).Round(100*time.Microsecond), verdict)
	}
	return nil
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }
