package circuits

import (
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/lookup/logderivlookup"
)

// Activation is an elementwise int8 -> int8 function (sigmoid, tanh, GELU...)
// held as a 256-entry logderivlookup table.
//
// Apply(x) looks up index x + 128; membership of (x+128, y) in the table
// proves both that x is int8 and that y = f(x). Cost: about 3 constraints per
// call plus about 2 per entry (512) once per table.
type Activation struct {
	api frontend.API
	tbl logderivlookup.Table
}

// NewActivation tabulates f, given as table[x+128] for x in [-128, 127].
func NewActivation(api frontend.API, table []int8) *Activation {
	t := logderivlookup.New(api)
	for _, v := range table {
		t.Insert(int64(v))
	}
	return &Activation{api: api, tbl: t}
}

// Apply returns f(x).
func (a *Activation) Apply(x frontend.Variable) frontend.Variable {
	return a.tbl.Lookup(a.api.Add(x, 128))[0]
}
