package onnx_test

import (
	"context"
	"errors"
	"testing"

	"github.com/zkoracle/zkoracle/circuits"
	"github.com/zkoracle/zkoracle/internal/testenv"
	"github.com/zkoracle/zkoracle/model/onnx"
	"github.com/zkoracle/zkoracle/prover"
	"github.com/zkoracle/zkoracle/verifier/core"
)

// TestLeNetProves: the imported LeNet compiles to a circuit and proves; the
// proof verifies for its input and output and not for another image's.
// The QDQ import compiles too.
func TestLeNetProves(t *testing.T) {
	testenv.SkipUnderRace(t)
	if testing.Short() {
		t.Skip("setup and proving of a 50k-constraint circuit")
	}
	loadRef(t)
	_, m, _ := importLeNet(t)
	ctx := context.Background()
	store := &prover.Store{Dir: t.TempDir(), DevSetup: true}
	meta, err := store.Prepare(ctx, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d constraints, %d public inputs", m.Name, meta.Constraints, meta.PublicInputs)
	p, err := prover.New(prover.Options{Store: store, MaxConcurrent: 1})
	if err != nil {
		t.Fatal(err)
	}
	xs := pixels(testSet(t), 0, 2)
	in0, in1 := onnx.QuantizeInput(m, xs[0]), onnx.QuantizeInput(m, xs[1])
	r, err := p.Prove(ctx, m.ID(), in0)
	if err != nil {
		t.Fatal(err)
	}
	vk, err := store.VerifyingKey(m.ID())
	if err != nil {
		t.Fatal(err)
	}
	proof, err := core.DecodeProof(r.Proof)
	if err != nil {
		t.Fatal(err)
	}
	nIn, nOut := len(in0), len(r.Output)
	if err := core.Check(vk, proof, core.Claim{Input: core.InputOf(in0), Output: r.Output}, nIn, nOut); err != nil {
		t.Fatalf("proof of image 0: %v", err)
	}
	if err := core.Check(vk, proof, core.Claim{Input: core.InputOf(in1), Output: r.Output}, nIn, nOut); !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("proof of image 0 checked against image 1: %v", err)
	}

	g, err := onnx.ReadFile(testdata + "lenet_bn_maxpool.int8_qdq.onnx")
	if err != nil {
		t.Fatal(err)
	}
	q, _, _, err := onnx.ImportQDQ(g, "lenet-int8", "")
	if err != nil {
		t.Fatal(err)
	}
	cs, err := circuits.Compile(q)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d constraints", q.Name, cs.GetNbConstraints())
}
