package circuits

import (
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/std/rangecheck"

	"github.com/zkoracle/zkoracle/model"
)

// The gadget benchmarks compile n instances of a gadget and of its naive
// construction (bit decomposition, full-width comparison) in one run and
// report constraints per instance for both and their ratio.

type gadgetCircuit struct {
	X     []frontend.Variable
	build func(api frontend.API, x []frontend.Variable) error
}

func (c *gadgetCircuit) Define(api frontend.API) error { return c.build(api, c.X) }

func constraintsOf(b *testing.B, n int, build func(api frontend.API, x []frontend.Variable) error) int {
	cs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, &gadgetCircuit{X: make([]frontend.Variable, n), build: build})
	if err != nil {
		b.Fatal(err)
	}
	return cs.GetNbConstraints()
}

// reportPair compiles n instances of ours and nNaive of naive (the naive
// constructions have no shared part to amortise, and are huge).
func reportPair(b *testing.B, n, nNaive int, ours, naive func(api frontend.API, x []frontend.Variable) error) {
	var o, nv float64
	for b.Loop() {
		o = float64(constraintsOf(b, n, ours)) / float64(n)
		nv = float64(constraintsOf(b, nNaive, naive)) / float64(nNaive)
	}
	b.ReportMetric(o, "constraints/op")
	b.ReportMetric(nv, "naive-constraints/op")
	b.ReportMetric(nv/o, "naive/ours")
}

// naiveClamp is clamp(q, lo, hi) with two full-width comparisons.
func naiveClamp(api frontend.API, q frontend.Variable, lo, hi int64) frontend.Variable {
	below := api.IsZero(api.Add(api.Cmp(q, lo), 1)) // q < lo
	above := api.IsZero(api.Sub(api.Cmp(q, hi), 1)) // q > hi
	return api.Select(below, lo, api.Select(above, hi, q))
}

func BenchmarkGadgetRequantize(b *testing.B) {
	rs := Rescale{M: 1 << 13, S: 24, ZP: -128, Lo: -128, Hi: 127}
	bound := model.Interval{Lo: -1 << 20, Hi: 1 << 20}
	const n = 4480
	reportPair(b, n, 32, func(api frontend.API, x []frontend.Variable) error {
		rq, err := NewRequantizer(api, WithTable(TableSpec{Fn: ClampFn{rs.ZP, rs.Lo, rs.Hi}, Q: rs.quotient(bound)}))
		if err != nil {
			return err
		}
		for _, v := range x {
			rq.Requantize(v, bound, rs)
		}
		return nil
	}, naiveRequantize(rs))
}

// naiveRequantize decomposes t + 2^45 into 46 bits, takes q as the bits
// above S, and clamps with two full-width comparisons.
func naiveRequantize(rs Rescale) func(api frontend.API, x []frontend.Variable) error {
	return func(api frontend.API, x []frontend.Variable) error {
		for _, v := range x {
			t := api.Add(api.Mul(v, rs.M), int64(1)<<(rs.S-1), int64(1)<<45)
			bits := api.ToBinary(t, 46)
			q := api.Sub(api.FromBinary(bits[rs.S:]...), int64(1)<<(45-rs.S))
			naiveClamp(api, q, rs.Lo-rs.ZP, rs.Hi-rs.ZP)
		}
		return nil
	}
}

func BenchmarkGadgetRequantizeRange(b *testing.B) {
	rs := Rescale{M: 1 << 13, S: 24, ZP: -128, Lo: -128, Hi: 127}
	bound := model.Interval{Lo: -1 << 20, Hi: 1 << 20}
	const n = 56
	reportPair(b, n, 32, func(api frontend.API, x []frontend.Variable) error {
		rq, _ := NewRequantizer(api)
		for _, v := range x {
			rq.Requantize(v, bound, rs)
		}
		return nil
	}, naiveRequantize(rs))
}

func BenchmarkGadgetRangeCheck8(b *testing.B) {
	reportPair(b, 784, 784, func(api frontend.API, x []frontend.Variable) error {
		rc := rangecheck.New(api)
		for _, v := range x {
			rc.Check(v, 8)
		}
		return nil
	}, func(api frontend.API, x []frontend.Variable) error {
		for _, v := range x {
			api.ToBinary(v, 8)
		}
		return nil
	})
}

func BenchmarkGadgetMax(b *testing.B) {
	d := model.Interval{Lo: -255, Hi: 255}
	reportPair(b, 1024, 64, func(api frontend.API, x []frontend.Variable) error {
		for i := 0; i+1 < len(x); i += 2 {
			Max(api, x[i], x[i+1], d)
		}
		return nil
	}, func(api frontend.API, x []frontend.Variable) error {
		for i := 0; i+1 < len(x); i += 2 {
			api.Select(api.IsZero(api.Add(api.Cmp(x[i], x[i+1]), 1)), x[i+1], x[i])
		}
		return nil
	})
}

func BenchmarkGadgetArgmax(b *testing.B) {
	const k = 10
	bounds := make([]model.Interval, k)
	for i := range bounds {
		bounds[i] = model.Interval{Lo: -1 << 24, Hi: 1 << 24}
	}
	reportPair(b, k+1, k+1, func(api frontend.API, x []frontend.Variable) error {
		// per op here is per output value (k+1 wires)
		Argmax(api, x[k], x[:k], bounds)
		return nil
	}, func(api frontend.API, x []frontend.Variable) error {
		// Running maximum with full-width comparisons.
		best, idx := x[0], frontend.Variable(0)
		for i := 1; i < k; i++ {
			gt := api.IsZero(api.Sub(api.Cmp(x[i], best), 1))
			best = api.Select(gt, x[i], best)
			idx = api.Select(gt, i, idx)
		}
		api.AssertIsEqual(idx, x[k])
		return nil
	})
}
