package circuits

import (
	"errors"
	"math/big"

	"github.com/consensys/gnark/constraint/solver"
)

func init() {
	solver.RegisterHint(GetHints()...)
}

// GetHints returns the hints the gadgets of this package use. Every output of
// every hint is bound by constraints; the doc of each gadget says how.
func GetHints() []solver.Hint {
	return []solver.Hint{QuotientHint, ClampHint, MaxHint, ArgmaxHint}
}

// signed reads a field element as an integer in (-p/2, p/2).
func signed(field, v *big.Int) *big.Int {
	r := new(big.Int).Set(v)
	if r.Cmp(new(big.Int).Rsh(field, 1)) > 0 {
		r.Sub(r, field)
	}
	return r
}

// QuotientHint: inputs (t, s); output floor(t / 2^s), t read as signed.
func QuotientHint(field *big.Int, in, out []*big.Int) error {
	if len(in) != 2 || len(out) != 1 {
		return errors.New("QuotientHint: want 2 inputs and 1 output")
	}
	t := signed(field, in[0])
	out[0].Rsh(t, uint(in[1].Uint64())) // Rsh on big.Int floors for negatives
	out[0].Mod(out[0], field)
	return nil
}

// ClampHint: inputs (t, s, L, H); outputs y = clamp(q, L, H) and the
// excess E = |q - y|, with q = floor(t / 2^s). L and H are signed.
func ClampHint(field *big.Int, in, out []*big.Int) error {
	if len(in) != 4 || len(out) != 2 {
		return errors.New("ClampHint: want 4 inputs and 2 outputs")
	}
	q := new(big.Int).Rsh(signed(field, in[0]), uint(in[1].Uint64()))
	lo, hi := signed(field, in[2]), signed(field, in[3])
	y := new(big.Int).Set(q)
	if q.Cmp(lo) < 0 {
		y.Set(lo)
	}
	if q.Cmp(hi) > 0 {
		y.Set(hi)
	}
	e := new(big.Int).Sub(q, y)
	out[0].Mod(y, field)
	out[1].Abs(e)
	return nil
}

// MaxHint: inputs (a, b); output 1 if a >= b else 0 (signed).
func MaxHint(field *big.Int, in, out []*big.Int) error {
	if len(in) != 2 || len(out) != 1 {
		return errors.New("MaxHint: want 2 inputs and 1 output")
	}
	out[0].SetInt64(0)
	if signed(field, in[0]).Cmp(signed(field, in[1])) >= 0 {
		out[0].SetInt64(1)
	}
	return nil
}

// ArgmaxHint: inputs v_0..v_{k-1}; outputs the one-hot vector of the first
// maximum (signed).
func ArgmaxHint(field *big.Int, in, out []*big.Int) error {
	if len(in) == 0 || len(in) != len(out) {
		return errors.New("ArgmaxHint: want as many outputs as inputs")
	}
	best := 0
	for i := range in {
		if signed(field, in[i]).Cmp(signed(field, in[best])) > 0 {
			best = i
		}
	}
	for i := range out {
		out[i].SetInt64(0)
	}
	out[best].SetInt64(1)
	return nil
}
