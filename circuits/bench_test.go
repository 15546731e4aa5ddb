package circuits

import (
	"fmt"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/backend/witness"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"

	"github.com/zkoracle/zkoracle/fixtures"
	"github.com/zkoracle/zkoracle/model"
	"github.com/zkoracle/zkoracle/model/layout"
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

// proved is a fixture set up and proved once, for the prove and verify
// benchmarks.
type proved struct {
	cs    constraint.ConstraintSystem
	pk    groth16.ProvingKey
	vk    groth16.VerifyingKey
	full  witness.Witness
	pub   []fr.Element
	proof groth16.Proof
}

func prove(b *testing.B, name string) *proved {
	m := loadFixture(b, name)
	p := &proved{cs: compileFixture(b, m)}
	var err error
	if p.pk, p.vk, err = groth16.Setup(p.cs); err != nil {
		b.Fatal(err)
	}
	in := testInput(b, 0)
	w, out, err := Assign(m, in)
	if err != nil {
		b.Fatal(err)
	}
	p.full = fullWitness(b, w)
	if p.proof, err = groth16.Prove(p.cs, p.pk, p.full); err != nil {
		b.Fatal(err)
	}
	if p.pub, err = layout.Build(in, out); err != nil {
		b.Fatal(err)
	}
	return p
}

func BenchmarkProve(b *testing.B) {
	for _, name := range fixtures.Names {
		b.Run(name, func(b *testing.B) {
			p := prove(b, name)
			for b.Loop() {
				if _, err := groth16.Prove(p.cs, p.pk, p.full); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(p.cs.GetNbConstraints()), "constraints")
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, name := range fixtures.Names {
		b.Run(name, func(b *testing.B) {
			p := prove(b, name)
			pw := publicWitness(b, p.pub)
			for b.Loop() {
				if err := groth16.Verify(p.proof, p.vk, pw); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(p.pub)), "public-inputs")
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
