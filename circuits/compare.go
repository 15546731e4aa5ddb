package circuits

import (
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/rangecheck"

	"github.com/zkoracle/zkoracle/model"
)

// Max returns max(a, b), given d, a bound on a - b.
//
// The prover supplies the bit s = [a >= b] by hint. Constraints: s is
// boolean (1); m = b + s*(a-b) (1); and one range check on
// w = 2(m-b) - (a-b) - 1 + s, which equals a-b when s = 1 and b-a-1 when
// s = 0, so w >= 0 proves the hinted order. Width: bits of
// max(d.Hi, -d.Lo-1). Cost: 2 + Check(width), 4 for int8 operands.
func Max(api frontend.API, a, b frontend.Variable, d model.Interval) frontend.Variable {
	if d.Lo >= 0 {
		return a
	}
	if d.Hi < 0 {
		return b
	}
	s, err := api.Compiler().NewHint(MaxHint, 1, a, b)
	if err != nil {
		panic(err)
	}
	api.AssertIsBoolean(s[0])
	diff := api.Sub(a, b)
	m := api.Add(b, api.Mul(s[0], diff))
	w := api.Add(api.Sub(api.Mul(api.Sub(m, b), 2), diff), api.Sub(s[0], 1))
	rangecheck.New(api).Check(w, bitLen(max(d.Hi, -d.Lo-1)))
	return m
}

// Argmax proves that class is the index of the first maximum of v, given a
// bound on each v_i.
//
// The prover supplies a one-hot vector e by hint. Constraints: each e_i
// boolean (k), sum e_i = 1 and class = sum i*e_i (2), m = sum e_i*v_i (k
// products), and for every i one range check of
// d_i = m - v_i - [class > i], where [class > i] = sum_{j>i} e_j is linear:
// d_i >= 0 proves m >= v_i for i after the class and m > v_i before it.
// Cost: 2k + 2 + k checks of the width of max(v) - min(v).
func Argmax(api frontend.API, class frontend.Variable, v []frontend.Variable, b []model.Interval) {
	e, err := api.Compiler().NewHint(ArgmaxHint, len(v), v...)
	if err != nil {
		panic(err)
	}
	lo, hi := b[0].Lo, b[0].Hi
	var sum, idx, m frontend.Variable = 0, 0, 0
	for i := range v {
		lo, hi = min(lo, b[i].Lo), max(hi, b[i].Hi)
		api.AssertIsBoolean(e[i])
		sum = api.Add(sum, e[i])
		idx = api.Add(idx, api.Mul(e[i], i))
		m = api.Add(m, api.Mul(e[i], v[i]))
	}
	api.AssertIsEqual(sum, 1)
	api.AssertIsEqual(class, idx)
	rc := rangecheck.New(api)
	var after frontend.Variable = 0 // sum_{j>i} e_j
	width := bitLen(hi - lo)
	for i := len(v) - 1; i >= 0; i-- {
		rc.Check(api.Sub(m, v[i], after), width)
		after = api.Add(after, e[i])
	}
}
