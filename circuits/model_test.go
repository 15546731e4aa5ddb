package circuits

import (
	"bytes"
	"math/big"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/backend/witness"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/constraint/solver"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/test"

	"github.com/zkoracle/zkoracle/fixtures"
	"github.com/zkoracle/zkoracle/internal/testenv"
	"github.com/zkoracle/zkoracle/model"
	"github.com/zkoracle/zkoracle/model/layout"
)

func loadFixture(t testing.TB, name string) *model.Model {
	t.Helper()
	m, err := fixtures.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func testInput(t testing.TB, n int) []int8 {
	t.Helper()
	in, _, err := fixtures.TestInput(n)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

var compiled sync.Map // fixture name -> constraint.ConstraintSystem

func compileFixture(t testing.TB, m *model.Model) constraint.ConstraintSystem {
	t.Helper()
	if cs, ok := compiled.Load(m.Name); ok {
		return cs.(constraint.ConstraintSystem)
	}
	cs, err := Compile(m)
	if err != nil {
		t.Fatal(err)
	}
	compiled.Store(m.Name, cs)
	return cs
}

func fullWitness(t testing.TB, c *Circuit) witness.Witness {
	t.Helper()
	w, err := frontend.NewWitness(c, ecc.BN254.ScalarField())
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestFixtureOutputsMatchExecutor: on 200 MNIST test images, the circuit is
// satisfied by exactly the reference executor's outputs; the compiled R1CS
// checks all of them, gnark's test engine the first few.
func TestFixtureOutputsMatchExecutor(t *testing.T) {
	testenv.SkipUnderRace(t)
	n := 200
	if testing.Short() {
		n = 20
	}
	for _, name := range fixtures.Names {
		t.Run(name, func(t *testing.T) {
			m := loadFixture(t, name)
			c, err := New(m)
			if err != nil {
				t.Fatal(err)
			}
			var failed atomic.Int32
			var wg sync.WaitGroup
			for k := range 2 {
				// One constraint system per worker: gnark's lookup
				// blueprints cache solver state and are not safe to solve
				// concurrently.
				cs, err := Compile(m)
				if err != nil {
					t.Fatal(err)
				}
				wg.Go(func() {
					for i := k; i < n; i += 2 {
						w, _, err := Assign(m, testInput(t, i))
						if err == nil {
							err = cs.IsSolved(fullWitness(t, w))
						}
						if err != nil {
							failed.Add(1)
							t.Errorf("image %d: %v", i, err)
						}
					}
				})
			}
			wg.Wait()
			for i := range 3 {
				w, _, err := Assign(m, testInput(t, i))
				if err != nil {
					t.Fatal(err)
				}
				if err := test.IsSolved(c, w, ecc.BN254.ScalarField()); err != nil {
					t.Errorf("image %d on the test engine: %v", i, err)
				}
			}
			t.Logf("%d images, %d failed", n, failed.Load())
		})
	}
}

// rejects reports whether the compiled circuit rejects the claim that m maps
// input to output, with the given hint overrides.
func rejects(t *testing.T, cs constraint.ConstraintSystem, input []int8, output []int64, opts ...solver.Option) bool {
	t.Helper()
	return isSolved(cs.IsSolved, fullWitness(t, Witness(input, output)), opts) != nil
}

func TestFixtureRejectsTamperedClaims(t *testing.T) {
	for _, name := range fixtures.Names {
		t.Run(name, func(t *testing.T) {
			m := loadFixture(t, name)
			cs := compileFixture(t, m)
			in0, in1 := testInput(t, 0), testInput(t, 1)
			tr0, _ := m.Run(in0)
			tr1, _ := m.Run(in1)
			if rejects(t, cs, in0, tr0.Output) {
				t.Fatal("the true claim is rejected")
			}
			bumped := slices.Clone(tr0.Output)
			bumped[3]++
			if !rejects(t, cs, in0, bumped) {
				t.Error("a tampered output logit is accepted")
			}
			if !rejects(t, cs, in0, tr1.Output) {
				t.Error("another input's outputs are accepted")
			}
			// A tampered class with true logits.
			w := Witness(in0, tr0.Output)
			w.Class = (layout.Argmax(tr0.Output) + 1) % len(tr0.Output)
			if isSolved(cs.IsSolved, fullWitness(t, w), nil) == nil {
				t.Error("a tampered argmax is accepted")
			}
		})
	}
}

// TestFixtureRejectsLyingRequantize makes the prover lie about one
// requantized activation (the quotient off by one: a remainder out of range
// or a wrong quotient) and claim the outputs that the lie propagates to.
func TestFixtureRejectsLyingRequantize(t *testing.T) {
	for _, name := range fixtures.Names {
		m := loadFixture(t, name)
		cs := compileFixture(t, m)
		p, err := NewPlan(m)
		if err != nil {
			t.Fatal(err)
		}
		in := testInput(t, 0)
		tr, _ := m.Run(in)
		for opIdx, op := range m.Ops {
			if op.Kind != model.Requantize {
				continue
			}
			// Target the element with the largest pre-activation: inside
			// the clamp range or above it, so the lie changes the output.
			x := tr.Values[op.In[0]]
			target := 0
			for i := range x {
				if x[i] > x[target] {
					target = i
				}
			}
			zx := m.Info().Tensors[op.In[0]].ZeroPoint
			ch := target / (len(x) / len(op.Multiplier))
			mult, s := op.Multiplier[ch], op.Shift[ch]
			tval := (x[target]-zx)*mult + 1<<(s-1)
			for _, d := range []int64{-1, 1} {
				// The lie, natively: every element with this t and shift.
				lying, err := m.RunHook(in, func(i int, ins [][]int64, out []int64) {
					o := &m.Ops[i]
					if o.Kind != model.Requantize {
						return
					}
					z := m.Info().Tensors[o.In[0]].ZeroPoint
					per := len(out) / len(o.Multiplier)
					for e := range out {
						c := e / per
						if te := (ins[0][e]-z)*o.Multiplier[c] + 1<<(o.Shift[c]-1); te == tval && o.Shift[c] == s {
							out[e] = min(max((te>>s)+d+o.Out.ZeroPoint, *o.Min), *o.Max)
						}
					}
				})
				if err != nil {
					t.Fatal(err)
				}
				var fired atomic.Int32
				hint, k := solver.Hint(QuotientHint), 0
				if !p.Table[opIdx] {
					hint = ClampHint
				}
				lie := func(f *big.Int, ins, outs []*big.Int) error {
					if err := hint(f, ins, outs); err != nil {
						return err
					}
					var tv fr.Element
					tv.SetInt64(tval)
					if ins[0].Cmp(tv.BigInt(new(big.Int))) == 0 && ins[1].Int64() == int64(s) {
						fired.Add(1)
						outs[k].Add(outs[k], big.NewInt(d))
						outs[k].Mod(outs[k], f)
					}
					return nil
				}
				if !rejects(t, cs, in, lying.Output, solver.OverrideHint(solver.GetHintID(hint), lie)) {
					t.Errorf("%s op %d: quotient %+d accepted", name, opIdx, d)
				}
				if fired.Load() == 0 {
					t.Errorf("%s op %d: the lie never fired", name, opIdx)
				}
			}
		}
	}
}

// TestFixtureProofs proves a few images with Groth16 (single-party setup)
// and checks that a proof verifies with the public inputs package layout
// builds, and not with another input's.
func TestFixtureProofs(t *testing.T) {
	testenv.SkipUnderRace(t)
	for _, name := range fixtures.Names {
		if name == "mnist-cnn" && testing.Short() {
			continue
		}
		t.Run(name, func(t *testing.T) {
			m := loadFixture(t, name)
			cs := compileFixture(t, m)
			pk, vk, err := groth16.Setup(cs)
			if err != nil {
				t.Fatal(err)
			}
			var pubs []witness.Witness
			var proofs []groth16.Proof
			for i := range 2 {
				in := testInput(t, i)
				w, out, err := Assign(m, in)
				if err != nil {
					t.Fatal(err)
				}
				full := fullWitness(t, w)
				proof, err := groth16.Prove(cs, pk, full)
				if err != nil {
					t.Fatal(err)
				}
				// The verifier rebuilds the public inputs from input and output.
				rebuilt, err := layout.Build(in, out)
				if err != nil {
					t.Fatal(err)
				}
				pub := publicWitness(t, rebuilt)
				gpub, _ := full.Public()
				a, _ := gpub.MarshalBinary()
				b, _ := pub.MarshalBinary()
				if !bytes.Equal(a, b) {
					t.Fatal("layout.Build differs from the circuit's public witness")
				}
				if err := groth16.Verify(proof, vk, pub); err != nil {
					t.Fatalf("image %d: %v", i, err)
				}
				pubs, proofs = append(pubs, pub), append(proofs, proof)
			}
			if groth16.Verify(proofs[0], vk, pubs[1]) == nil {
				t.Error("a proof for image 0 verifies for image 1")
			}
		})
	}
}

func publicWitness(t testing.TB, pub []fr.Element) witness.Witness {
	t.Helper()
	w, err := witness.New(ecc.BN254.ScalarField())
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan any, len(pub))
	for i := range pub {
		ch <- pub[i]
	}
	close(ch)
	if err := w.Fill(len(pub), 0, ch); err != nil {
		t.Fatal(err)
	}
	return w
}
