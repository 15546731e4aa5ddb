package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/backend/witness"
	"github.com/consensys/gnark/frontend"

	"github.com/zkoracle/zkoracle/circuits"
	"github.com/zkoracle/zkoracle/circuits/layout"
	"github.com/zkoracle/zkoracle/fixtures/mnist"
	"github.com/zkoracle/zkoracle/model"
)

func init() {
	register("demo", "prove and verify a few MNIST inferences end to end (in process)", demo)
}

// demo compiles a model's circuit, runs a single-party (development)
// Groth16 setup, then proves and verifies a few test images, the verifier
// rebuilding the public inputs from input and output alone.
func demo(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	name := fs.String("model", "mnist-cnn", "model file or fixture name")
	first := fs.Int("image", 0, "first MNIST test image")
	count := fs.Int("n", 5, "number of images")
	if err := fs.Parse(args); err != nil {
		return err
	}
	m, err := loadModel(*name)
	if err != nil {
		return err
	}
	fmt.Printf("model %s (%s)\n", m.Name, m.ID()[:16])
	start := time.Now()
	cs, err := circuits.Compile(m)
	if err != nil {
		return err
	}
	fmt.Printf("circuit: %d R1CS constraints, %d public inputs, compiled in %s\n",
		cs.GetNbConstraints(), cs.GetNbPublicVariables()-1, since(start))
	start = time.Now()
	pk, vk, err := groth16.Setup(cs)
	if err != nil {
		return err
	}
	fmt.Printf("groth16 setup (single party: development only) in %s\n\n", since(start))
	fmt.Printf("%-6s %-6s %-10s %-9s %-9s %s\n", "image", "label", "predicted", "prove", "verify", "verdict")
	for n := *first; n < *first+*count; n++ {
		img, label, err := mnist.TestImage(n)
		if err != nil {
			return err
		}
		input := model.PixelsToInput(img)
		assignment, output, err := circuits.Assign(m, input)
		if err != nil {
			return err
		}
		full, err := frontend.NewWitness(assignment, ecc.BN254.ScalarField())
		if err != nil {
			return err
		}
		t0 := time.Now()
		proof, err := groth16.Prove(cs, pk, full)
		if err != nil {
			return fmt.Errorf("prove image %d: %w", n, err)
		}
		tProve := time.Since(t0)
		pub, err := layout.Build(input, output)
		if err != nil {
			return err
		}
		pw, err := witness.New(ecc.BN254.ScalarField())
		if err != nil {
			return err
		}
		ch := make(chan any, len(pub))
		for i := range pub {
			ch <- pub[i]
		}
		close(ch)
		if err := pw.Fill(len(pub), 0, ch); err != nil {
			return err
		}
		t0 = time.Now()
		verdict := "verified"
		if err := groth16.Verify(proof, vk, pw); err != nil {
			verdict = "REJECTED: " + err.Error()
		}
		fmt.Printf("%-6d %-6d %-10d %-9s %-9s %s\n", n, label, layout.Argmax(output), tProve.Round(time.Millisecond), time.Since(t0).Round(time.Microsecond*100), verdict)
	}
	return nil
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }
