package circuits

import (
	"fmt"
	"math/big"
	"math/bits"

	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/lookup/logderivlookup"
	"github.com/consensys/gnark/std/rangecheck"

	"github.com/zkoracle/zkoracle/model"
)

// Rescale is one requantization: out = clamp(floor((a*M + 2^(S-1)) / 2^S) + ZP, Lo, Hi),
// the model package's rule, for a = x - zx.
type Rescale struct {
	M      int64
	S      int
	ZP     int64
	Lo, Hi int64
}

// quotient returns the range of q = floor((a*M + 2^(S-1)) / 2^S) over a in b.
func (r Rescale) quotient(b model.Interval) model.Interval {
	f := func(a int64) int64 { return (a*r.M + 1<<(r.S-1)) >> r.S }
	return model.Interval{Lo: f(b.Lo), Hi: f(b.Hi)}
}

// ClampFn identifies the function q -> clamp(q + ZP, Lo, Hi) a table holds.
type ClampFn struct{ ZP, Lo, Hi int64 }

// TableSpec declares a clamp table for Fn over quotients Q.
type TableSpec struct {
	Fn ClampFn
	Q  model.Interval
}

// Option configures a Requantizer.
type Option func(*config) error

type config struct{ tables []TableSpec }

// WithTable declares a clamp table. Requantize uses it for every call whose
// quotient range it covers; the table costs about one constraint per entry.
func WithTable(spec TableSpec) Option {
	return func(c *config) error {
		if spec.Q.Lo > spec.Q.Hi || spec.Q.Hi-spec.Q.Lo >= 1<<22 {
			return fmt.Errorf("clamp table over [%d, %d]: empty or larger than 2^22", spec.Q.Lo, spec.Q.Hi)
		}
		c.tables = append(c.tables, spec)
		return nil
	}
}

type clampTable struct {
	spec TableSpec
	tbl  logderivlookup.Table
}

// Requantizer proves fused requantize (+ ReLU) + clamp steps.
//
// Both proofs share the first step. The prover supplies the quotient q by
// hint; with t = a*M + 2^(S-1) (a linear combination: free), one range check
//
//	Check(t - q*2^S, S)
//
// proves the remainder is in [0, 2^S) and, folded in, the equation
// t = q*2^S + r. Once q is also bounded (below), q*2^S + r cannot wrap the
// field (model.Decode proves |t| < 2^62), so q = floor(t / 2^S) exactly.
//
// Table proof (large layers): y = T[q - Qlo] from a logderivlookup table of
// clamp(q + ZP, Lo, Hi) over the layer's static quotient range [Qlo, Qhi].
// Membership of (q - Qlo, y) in the table bounds q and proves the clamp.
// Cost: Check(S) + 1 lookup, about 6-7 constraints, plus about 1 per table
// entry, shared by every layer with the same clamp.
//
// Range proof (small layers): the prover supplies the output y (in
// quotient units) and the excess E = |q - y| by hint. Constraints:
//
//	y - L in [0, H-L]         one check (two when H-L+1 is not a power of 2)
//	E in [0, 2^k)             k covers the static excess, byte aligned
//	w = E*(y-L)               1
//	w*(H-y) = 0               2: E > 0 forces y = L or y = H
//	q = y + 2w/(H-L) - E      free (division by a constant)
//
// So q = y inside [L, H] (E = 0), q = L - E below (y = L) and q = H + E
// above (y = H): q is a bounded integer and y = clamp(q, L, H). When the
// static range of q cannot leave [L, H], E is 0 and only y is checked.
// Cost with 8-bit limbs, S = 24, k <= 16: 4 + 2 + 3 + 3 = 12.
type Requantizer struct {
	api    frontend.API
	rc     frontend.Rangechecker
	tables []*clampTable
}

// NewRequantizer returns a Requantizer; tables are built now, so declare all
// of them here.
func NewRequantizer(api frontend.API, opts ...Option) (*Requantizer, error) {
	var cfg config
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	r := &Requantizer{api: api, rc: rangecheck.New(api)}
	for _, spec := range cfg.tables {
		ct := &clampTable{spec: spec, tbl: logderivlookup.New(api)}
		for q := spec.Q.Lo; q <= spec.Q.Hi; q++ {
			ct.tbl.Insert(min(max(q+spec.Fn.ZP, spec.Fn.Lo), spec.Fn.Hi))
		}
		r.tables = append(r.tables, ct)
	}
	return r, nil
}

// Requantize returns the int8 output for a = x - zx, given a bound on a.
// It panics if the rescale could overflow (model.Decode rules that out).
func (r *Requantizer) Requantize(a frontend.Variable, bound model.Interval, rs Rescale) frontend.Variable {
	api := r.api
	qb := rs.quotient(bound)
	t := api.Add(api.Mul(a, rs.M), int64(1)<<(rs.S-1))
	fn := ClampFn{rs.ZP, rs.Lo, rs.Hi}
	for _, ct := range r.tables {
		if ct.spec.Fn == fn && ct.spec.Q.Lo <= qb.Lo && qb.Hi <= ct.spec.Q.Hi {
			q := r.hint(QuotientHint, 1, t, rs.S)[0]
			r.rc.Check(api.Sub(t, api.Mul(q, pow2(rs.S))), rs.S)
			return ct.tbl.Lookup(api.Sub(q, ct.spec.Q.Lo))[0]
		}
	}
	lo, hi := rs.Lo-rs.ZP, rs.Hi-rs.ZP // clamp bounds in quotient units
	if lo == hi {
		return rs.Lo // a one-value clamp: the output does not depend on q
	}
	canClamp := qb.Lo < lo || qb.Hi > hi
	h := r.hint(ClampHint, 2, t, rs.S, lo, hi)
	y, e := h[0], frontend.Variable(0)
	var u frontend.Variable = 0 // E when y = H, else 0
	if canClamp {
		e = h[1]
		w := api.Mul(e, api.Sub(y, lo))                  // E*(y-L)
		api.AssertIsEqual(api.Mul(w, api.Sub(hi, y)), 0) // E*(y-L)*(H-y) = 0
		u = api.Div(w, hi-lo)                            // constant divisor: free
		r.rc.Check(e, byteAligned(max(lo-qb.Lo, qb.Hi-hi)))
	}
	q := api.Sub(api.Add(y, api.Mul(u, 2)), e) // y - E below, y + E above, y inside
	r.rc.Check(api.Sub(t, api.Mul(q, pow2(rs.S))), rs.S)
	wy := bitLen(hi - lo)
	r.rc.Check(api.Sub(y, lo), wy)
	if hi-lo+1 != 1<<wy {
		r.rc.Check(api.Sub(hi, y), wy)
	}
	return api.Add(y, rs.ZP)
}

// byteAligned returns the bits needed for v, rounded up to a multiple of 8:
// a wider check is as sound here (nothing nears the field size) and, in
// 8-bit limbs, needs no extra query for a partial top limb.
func byteAligned(v int64) int { return (bitLen(v) + 7) / 8 * 8 }

func (r *Requantizer) hint(f func(*big.Int, []*big.Int, []*big.Int) error, n int, in ...frontend.Variable) []frontend.Variable {
	out, err := r.api.Compiler().NewHint(f, n, in...)
	if err != nil {
		panic(err) // only on a wrong output count: a programming error
	}
	return out
}

// bitLen returns the number of bits of v >= 0 (at least 1).
func bitLen(v int64) int { return max(1, bits.Len64(uint64(v))) }

func pow2(s int) *big.Int { return new(big.Int).Lsh(big.NewInt(1), uint(s)) }
