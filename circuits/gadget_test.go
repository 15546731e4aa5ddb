package circuits

import (
	"fmt"
	"math/big"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/constraint/solver"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/test"

	"github.com/zkoracle/zkoracle/model"
)

// override replaces a hint of this package by a tampered one.
type override struct {
	hint solver.Hint
	bad  solver.Hint
}

// solved reports whether witness w satisfies circuit c, both on gnark's test
// engine and on the compiled R1CS (the constraints a proof is made of), with
// the given hints replaced. The two must agree.
func solved(t *testing.T, c, w frontend.Circuit, ov ...override) bool {
	t.Helper()
	var engOpts []test.TestEngineOption
	var solOpts []solver.Option
	for _, o := range ov {
		engOpts = append(engOpts, test.WithReplacementHint(solver.GetHintID(o.hint), o.bad))
		solOpts = append(solOpts, solver.OverrideHint(solver.GetHintID(o.hint), o.bad))
	}
	engErr := test.IsSolved(c, w, ecc.BN254.ScalarField(), engOpts...)
	cs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, c)
	if err != nil {
		t.Fatal(err)
	}
	wit, err := frontend.NewWitness(w, ecc.BN254.ScalarField())
	if err != nil {
		t.Fatal(err)
	}
	csErr := isSolved(cs.IsSolved, wit, solOpts)
	if (engErr == nil) != (csErr == nil) {
		t.Fatalf("test engine and R1CS disagree: engine %v, r1cs %v", engErr, csErr)
	}
	return csErr == nil
}

// isSolved calls solve and turns a solver panic (a lookup index out of the
// table, say) into an error.
func isSolved[W any](solve func(W, ...solver.Option) error, w W, opts []solver.Option) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("solver panic: %v", r)
		}
	}()
	return solve(w, opts...)
}

// shifted returns a hint that runs h and adds delta to output k.
func shifted(h solver.Hint, k int, delta int64) solver.Hint {
	return func(field *big.Int, in, out []*big.Int) error {
		if err := h(field, in, out); err != nil {
			return err
		}
		out[k].Add(out[k], big.NewInt(delta))
		out[k].Mod(out[k], field)
		return nil
	}
}

type requantCircuit struct {
	A, Y  []frontend.Variable
	bound model.Interval
	rs    Rescale
	table bool
}

func (c *requantCircuit) Define(api frontend.API) error {
	var opts []Option
	if c.table {
		opts = append(opts, WithTable(TableSpec{Fn: ClampFn{c.rs.ZP, c.rs.Lo, c.rs.Hi}, Q: c.rs.quotient(c.bound)}))
	}
	rq, err := NewRequantizer(api, opts...)
	if err != nil {
		return err
	}
	for i := range c.A {
		api.AssertIsEqual(rq.Requantize(c.A[i], c.bound, c.rs), c.Y[i])
	}
	return nil
}

func requantCase(as []int64, bound model.Interval, rs Rescale, table bool) (*requantCircuit, *requantCircuit) {
	c := &requantCircuit{A: make([]frontend.Variable, len(as)), Y: make([]frontend.Variable, len(as)), bound: bound, rs: rs, table: table}
	w := &requantCircuit{A: make([]frontend.Variable, len(as)), Y: make([]frontend.Variable, len(as))}
	for i, a := range as {
		w.A[i] = a
		w.Y[i] = model.RequantizeValue(a, rs.M, rs.S, rs.ZP, rs.Lo, rs.Hi)
	}
	return c, w
}

func TestRequantize(t *testing.T) {
	// a*3/2^4: a = 8 is 1.5 (rounds to 2), a = -8 is -1.5 (rounds to -1);
	// the bound reaches both clamp ends in quotient units.
	as := []int64{0, 8, -8, 5, -5, 1000, -1000, 2000, -2000, 700, -690, 448}
	for a := int64(-1990); a < 2000; a += 83 {
		as = append(as, a)
	}
	bound := model.Interval{Lo: -2000, Hi: 2000}
	for _, tc := range []struct {
		name string
		rs   Rescale
	}{
		{"relu zp -128", Rescale{M: 3, S: 4, ZP: -128, Lo: -128, Hi: 127}},
		{"signed zp 3", Rescale{M: 3, S: 4, ZP: 3, Lo: -128, Hi: 127}},
		{"relu6-like sub-range", Rescale{M: 3, S: 4, ZP: -10, Lo: -10, Hi: 90}},
	} {
		for _, table := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/table=%v", tc.name, table), func(t *testing.T) {
				c, w := requantCase(as, bound, tc.rs, table)
				if !solved(t, c, w) {
					t.Fatal("valid assignment rejected")
				}
				_, bad := requantCase(as, bound, tc.rs, table)
				bad.Y[1] = w.Y[1].(int64) + 1
				if solved(t, c, bad) {
					t.Error("tampered output accepted")
				}
				// Each lie below, on one value at a time, claims the output
				// it produces, so only the gadget's constraints can reject it.
				lies := []struct {
					name string
					ov   override
					out  func(q int64) int64
				}{}
				if table {
					// q-1 pushes the remainder to r + 2^S, out of range;
					// q+1 makes it negative: a wrong quotient.
					for _, d := range []int64{-1, 1} {
						lies = append(lies, struct {
							name string
							ov   override
							out  func(q int64) int64
						}{fmt.Sprintf("quotient%+d", d), override{QuotientHint, shifted(QuotientHint, 0, d)},
							func(q int64) int64 { return min(max(q+d+tc.rs.ZP, tc.rs.Lo), tc.rs.Hi) }})
					}
				} else {
					for _, h := range []struct {
						name string
						h    solver.Hint
					}{
						{"y+1", shifted(ClampHint, 0, 1)},
						{"y-1", shifted(ClampHint, 0, -1)},
						{"y+1 E+1", shifted(shifted(ClampHint, 0, 1), 1, 1)},
						{"y-1 E+1", shifted(shifted(ClampHint, 0, -1), 1, 1)},
						{"unclamped", unclamped},
						{"saturate high, negative excess", forgeClamp(func(q, lo, hi int64) (int64, int64, bool) { return hi, q - hi, q < hi })},
						{"saturate low, negative excess", forgeClamp(func(q, lo, hi int64) (int64, int64, bool) { return lo, lo - q, q > lo })},
						{"inner y with excess", forgeClamp(innerExcess)},
					} {
						lies = append(lies, struct {
							name string
							ov   override
							out  func(q int64) int64
						}{h.name, override{ClampHint, h.h}, func(q int64) int64 { return clampLie(h.h, q, tc.rs) }})
					}
				}
				tried := map[string]int{}
				for _, a := range as {
					c, w := requantCase([]int64{a}, bound, tc.rs, table)
					for _, lie := range lies {
						l := liar([]int64{a}, tc.rs, lie.out)
						if l.Y[0] == w.Y[0] {
							continue // this lie does not change this output
						}
						tried[lie.name]++
						if solved(t, c, l, lie.ov) {
							t.Errorf("a=%d: lie %s (output %v instead of %v) accepted", a, lie.name, l.Y[0], w.Y[0])
						}
					}
				}
				for _, lie := range lies {
					if tried[lie.name] == 0 {
						t.Errorf("lie %s never changed an output: the test does not exercise it", lie.name)
					}
				}
			})
		}
	}
}

// forgeClamp returns a ClampHint that answers (y, E) = f(q, L, H) where f
// says it has a lie, and the truth elsewhere.
func forgeClamp(f func(q, lo, hi int64) (y, e int64, ok bool)) solver.Hint {
	return func(field *big.Int, in, out []*big.Int) error {
		if err := ClampHint(field, in, out); err != nil {
			return err
		}
		q := new(big.Int).Rsh(signed(field, in[0]), uint(in[1].Uint64())).Int64()
		if y, e, ok := f(q, signed(field, in[2]).Int64(), signed(field, in[3]).Int64()); ok {
			out[0].Mod(big.NewInt(y), field)
			out[1].Mod(big.NewInt(e), field)
		}
		return nil
	}
}

// innerExcess is the lie the product constraint E*(y-L)*(H-y) = 0 exists
// for: an inner y != q with an excess E > 0 such that the circuit's
// q = y + 2E(y-L)/(H-L) - E is still the true quotient (as integers).
func innerExcess(q, lo, hi int64) (int64, int64, bool) {
	for y := lo + 1; y < hi; y++ {
		d := 2*(y-lo) - (hi - lo)
		if y == q || d == 0 || (q-y)*(hi-lo)%d != 0 {
			continue
		}
		if e := (q - y) * (hi - lo) / d; e > 0 && e < 1<<16 && e*(y-lo)%(hi-lo) == 0 {
			return y, e, true
		}
	}
	return 0, 0, false
}

// liar returns the assignment whose outputs are f(q) for each a.
func liar(as []int64, rs Rescale, f func(q int64) int64) *requantCircuit {
	w := &requantCircuit{A: make([]frontend.Variable, len(as)), Y: make([]frontend.Variable, len(as))}
	for i, a := range as {
		w.A[i] = a
		w.Y[i] = f((a*rs.M + 1<<(rs.S-1)) >> rs.S)
	}
	return w
}

// clampLie runs a (lying) ClampHint natively and returns the output it
// makes the gadget produce, y + ZP.
func clampLie(h solver.Hint, q int64, rs Rescale) int64 {
	f := ecc.BN254.ScalarField()
	in := []*big.Int{big.NewInt(q << rs.S), big.NewInt(int64(rs.S)), big.NewInt(rs.Lo - rs.ZP), big.NewInt(rs.Hi - rs.ZP)}
	for _, v := range in {
		v.Mod(v, f)
	}
	out := []*big.Int{new(big.Int), new(big.Int)}
	if err := h(f, in, out); err != nil {
		panic(err)
	}
	return signed(f, out[0]).Int64() + rs.ZP
}

// unclamped is a lying ClampHint: it returns q itself and no excess.
func unclamped(field *big.Int, in, out []*big.Int) error {
	q := new(big.Int).Rsh(signed(field, in[0]), uint(in[1].Uint64()))
	out[0].Mod(q, field)
	out[1].SetInt64(0)
	return nil
}

type maxCircuit struct {
	A, B, M frontend.Variable
	d       model.Interval
}

func (c *maxCircuit) Define(api frontend.API) error {
	api.AssertIsEqual(Max(api, c.A, c.B, c.d), c.M)
	return nil
}

func TestMax(t *testing.T) {
	d := model.Interval{Lo: -255, Hi: 255}
	for _, p := range [][2]int64{{3, 5}, {5, 3}, {-128, 127}, {127, -128}, {7, 7}} {
		c := &maxCircuit{d: d}
		w := &maxCircuit{A: p[0], B: p[1], M: max(p[0], p[1])}
		if !solved(t, c, w) {
			t.Fatalf("max(%d, %d) rejected", p[0], p[1])
		}
		if solved(t, c, &maxCircuit{A: p[0], B: p[1], M: min(p[0], p[1]) - 1}) {
			t.Errorf("max(%d, %d) = %d accepted", p[0], p[1], min(p[0], p[1])-1)
		}
		flip := func(f *big.Int, in, out []*big.Int) error {
			if err := MaxHint(f, in, out); err != nil {
				return err
			}
			out[0].SetUint64(1 - out[0].Uint64())
			return nil
		}
		if p[0] != p[1] && solved(t, c, &maxCircuit{A: p[0], B: p[1], M: min(p[0], p[1])}, override{MaxHint, flip}) {
			t.Errorf("max(%d, %d) with the order bit flipped accepted", p[0], p[1])
		}
	}
}

type argmaxCircuit struct {
	V     []frontend.Variable
	Class frontend.Variable
	b     []model.Interval
}

func (c *argmaxCircuit) Define(api frontend.API) error {
	Argmax(api, c.Class, c.V, c.b)
	return nil
}

func TestArgmax(t *testing.T) {
	v := []int64{-5, 9, 3, 9, -100}
	b := make([]model.Interval, len(v))
	for i := range b {
		b[i] = model.Interval{Lo: -1000, Hi: 1000}
	}
	c := &argmaxCircuit{V: make([]frontend.Variable, len(v)), b: b}
	assign := func(class int) *argmaxCircuit {
		w := &argmaxCircuit{V: make([]frontend.Variable, len(v)), Class: class}
		for i, x := range v {
			w.V[i] = x
		}
		return w
	}
	if !solved(t, c, assign(1)) {
		t.Fatal("argmax 1 (the first of two maxima) rejected")
	}
	for _, class := range []int{0, 2, 3, 4} {
		oneHot := func(f *big.Int, in, out []*big.Int) error {
			for i := range out {
				out[i].SetInt64(0)
			}
			out[class].SetInt64(1)
			return nil
		}
		if solved(t, c, assign(class), override{ArgmaxHint, oneHot}) {
			t.Errorf("class %d accepted", class)
		}
	}
	twoHot := func(f *big.Int, in, out []*big.Int) error {
		for i := range out {
			out[i].SetInt64(0)
		}
		out[1].SetInt64(1)
		out[3].SetInt64(1)
		return nil
	}
	if solved(t, c, assign(4), override{ArgmaxHint, twoHot}) {
		t.Error("a two-hot selector accepted")
	}
}

type activationCircuit struct {
	X, Y  []frontend.Variable
	table []int8
}

func (c *activationCircuit) Define(api frontend.API) error {
	a := NewActivation(api, c.table)
	for i := range c.X {
		api.AssertIsEqual(a.Apply(c.X[i]), c.Y[i])
	}
	return nil
}

func TestActivation(t *testing.T) {
	table := make([]int8, 256)
	for i := range table {
		table[i] = int8((i * 7) % 256) // any function
	}
	xs := []int64{-128, -1, 0, 1, 127}
	c := &activationCircuit{X: make([]frontend.Variable, len(xs)), Y: make([]frontend.Variable, len(xs)), table: table}
	w := &activationCircuit{X: make([]frontend.Variable, len(xs)), Y: make([]frontend.Variable, len(xs))}
	for i, x := range xs {
		w.X[i], w.Y[i] = x, int64(table[x+128])
	}
	if !solved(t, c, w) {
		t.Fatal("valid lookups rejected")
	}
	w.Y[2] = int64(table[128]) + 1
	if solved(t, c, w) {
		t.Error("tampered lookup result accepted")
	}
}
