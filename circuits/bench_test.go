package circuits

import (
	"fmt"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"

	"github.com/zkoracle/zkoracle/circuits/layout"
	"github.com/zkoracle/zkoracle/fixtures"
	"github.com/zkoracle/zkoracle/model"
)

// The fixture benchmarks report constraints with every timing, so a change
// in circuit size shows next to its cost. Run: make bench.

func BenchmarkCompile(b *testing.B) {
	for _, name := range fixtures.Names {
		b.Run(name, func(b *testing.B) {
			m := loadFixture(b, name)
			var n int
			for b.Loop() {
				cs, err := Compile(m)
				if err != nil {
					b.Fatal(err)
				}
				n = cs.GetNbConstraints()
			}
			b.ReportMetric(float64(n), "constraints")
		})
	}
}

func BenchmarkSetup(b *testing.B) {
	for _, name := range fixtures.Names {
		b.Run(name, func(b *testing.B) {
			m := loadFixture(b, name)
			cs := compileFixture(b, m)
			for b.Loop() {
				if _, _, err := groth16.Setup(cs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cs.GetNbConstraints()), "constraints")
		})
	}
}

func BenchmarkProve(b *testing.B) {
	for _, name := range fixtures.Names {
		b.Run(name, func(b *testing.B) {
			m := loadFixture(b, name)
			cs := compileFixture(b, m)
			pk, _, err := groth16.Setup(cs)
			if err != nil {
				b.Fatal(err)
			}
			w, _, err := Assign(m, testInput(b, 0))
			if err != nil {
				b.Fatal(err)
			}
			full := fullWitness(b, w)
			for b.Loop() {
				if _, err := groth16.Prove(cs, pk, full); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cs.GetNbConstraints()), "constraints")
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, name := range fixtures.Names {
		b.Run(name, func(b *testing.B) {
			m := loadFixture(b, name)
			cs := compileFixture(b, m)
			pk, vk, err := groth16.Setup(cs)
			if err != nil {
				b.Fatal(err)
			}
			in := testInput(b, 0)
			w, out, err := Assign(m, in)
			if err != nil {
				b.Fatal(err)
			}
			proof, err := groth16.Prove(cs, pk, fullWitness(b, w))
			if err != nil {
				b.Fatal(err)
			}
			pub, err := layout.Build(in, out)
			if err != nil {
				b.Fatal(err)
			}
			pw := publicWitness(b, pub)
			for b.Loop() {
				if err := groth16.Verify(proof, vk, pw); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(pub)), "public-inputs")
		})
	}
}

// BenchmarkRequantize measures the fused requantize + ReLU + clamp gadget on
// a layer shaped like mnist-cnn's first (4,480 activations, int32
// accumulators up to 2^20, S = 24), with each proof, and reports constraints
// per activation including the gadget's share of the range-check and lookup
// arguments (and, for the table proof, the whole table).
func BenchmarkRequantize(b *testing.B) {
	rs := Rescale{M: 1 << 13, S: 24, ZP: -128, Lo: -128, Hi: 127}
	bound := model.Interval{Lo: -1 << 20, Hi: 1 << 20}
	for _, n := range []int{56, 4480} {
		for _, table := range []bool{false, true} {
			b.Run(fmt.Sprintf("n=%d/table=%v", n, table), func(b *testing.B) {
				c := &requantCircuit{A: make([]frontend.Variable, n), Y: make([]frontend.Variable, n), bound: bound, rs: rs, table: table}
				var cs int
				for b.Loop() {
					ccs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, c)
					if err != nil {
						b.Fatal(err)
					}
					cs = ccs.GetNbConstraints() - n // less the test's own output assertions
				}
				b.ReportMetric(float64(cs), "constraints")
				b.ReportMetric(float64(cs)/float64(n), "constraints/activation")
			})
		}
	}
}
