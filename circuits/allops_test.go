package circuits

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/test"

	"github.com/zkoracle/zkoracle/model"
)

func i64p(v int64) *int64 { return &v }

// allOpsModel uses every op of the IR, with the options the fixtures leave
// out: conv stride and padding, ReLU on int32, max pool, add, per-channel
// requantize without ReLU (signed output), lookup.
func allOpsModel(t *testing.T) *model.Model {
	rng := rand.New(rand.NewPCG(7, 7))
	w := func(n int) model.Int8s {
		out := make(model.Int8s, n)
		for i := range out {
			out[i] = int8(rng.IntN(255) - 127)
		}
		return out
	}
	table := make(model.Int8s, 256)
	for i := range table {
		table[i] = int8(max(-128, min(127, (i-128)/2+10))) // any monotone function
	}
	tn := func(name string, dt model.DType, zp int64, shape ...int) model.Tensor {
		return model.Tensor{Name: name, DType: dt, Shape: shape, Scale: 1, ZeroPoint: zp}
	}
	m := &model.Model{Format: model.Format, Version: model.Version, Name: "all-ops", Input: tn("x", model.Int8, -3, 2, 7, 7),
		Ops: []model.Op{
			{Kind: model.Conv2D, In: []string{"x"}, Out: tn("c", model.Int32, 0, 3, 4, 4), Weights: w(3 * 2 * 3 * 3), Bias: []int32{50, -70, 0}, Kernel: 3, Stride: 2, Padding: 1},
			{Kind: model.ReLU, In: []string{"c"}, Out: tn("cr", model.Int32, 0, 3, 4, 4)},
			{Kind: model.Requantize, In: []string{"cr"}, Out: tn("q", model.Int8, 5, 3, 4, 4), Multiplier: []int64{300, 1000, 77}, Shift: []int{16, 16, 12}, Min: i64p(-128), Max: i64p(127)},
			{Kind: model.MaxPool, In: []string{"q"}, Out: tn("mp", model.Int8, 5, 3, 2, 2), Kernel: 2, Stride: 2},
			{Kind: model.Lookup, In: []string{"mp"}, Out: tn("lk", model.Int8, 0, 3, 2, 2), Table: table, Fn: "test"},
			{Kind: model.AvgPool, In: []string{"q"}, Out: tn("ap", model.Int32, 20, 3, 2, 2), Kernel: 2, Stride: 2},
			{Kind: model.Add, In: []string{"lk", "ap"}, Out: tn("s", model.Int32, 0, 3, 2, 2), Coeffs: []int64{4, -1}},
			{Kind: model.Flatten, In: []string{"s"}, Out: tn("f", model.Int32, 0, 12)},
			{Kind: model.Dense, In: []string{"f"}, Out: tn("d", model.Int32, 0, 6), Weights: w(12 * 6), Bias: []int32{1, 2, 3, 4, 5, 6}},
			{Kind: model.Requantize, In: []string{"d"}, Out: tn("o", model.Int8, -7, 6), Multiplier: []int64{1 << 10}, Shift: []int{20}, Min: i64p(-100), Max: i64p(100)},
		}, Output: "o"}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestAllOpsMatchExecutor: on random inputs, the compiled circuit is
// satisfied by exactly the executor's outputs, for every op of the IR.
func TestAllOpsMatchExecutor(t *testing.T) {
	m := allOpsModel(t)
	c, err := New(m)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := Compile(m)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	seen := map[string]map[int64]bool{"q": {}, "mp": {}, "lk": {}, "o": {}}
	for trial := range 20 {
		in := make([]int8, m.Input.Size())
		for i := range in {
			in[i] = int8(rng.IntN(256) - 128)
		}
		if trial == 0 {
			for i := range in {
				in[i] = 127 // saturate everything
			}
		}
		tr, err := m.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		for name, vals := range seen {
			for _, v := range tr.Values[name] {
				vals[v] = true
			}
		}
		if err := cs.IsSolved(fullWitness(t, Witness(in, tr.Output))); err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
		if trial < 3 {
			if err := test.IsSolved(c, Witness(in, tr.Output), ecc.BN254.ScalarField()); err != nil {
				t.Fatalf("trial %d on the test engine: %v", trial, err)
			}
		}
		bad := slices.Clone(tr.Output)
		bad[trial%len(bad)]++
		if cs.IsSolved(fullWitness(t, Witness(in, bad))) == nil {
			t.Fatalf("trial %d: a tampered output is accepted", trial)
		}
	}
	// The inputs must exercise the ops, not sit at a clamp.
	for name, vals := range seen {
		if len(vals) < 10 {
			t.Errorf("tensor %s took only %d distinct values: the test does not exercise it", name, len(vals))
		}
	}
}
