package circuits

import (
	"fmt"
	"sort"

	"github.com/zkoracle/zkoracle/model"
)

// Plan is what the compiler decides before building constraints: which
// requantize layers prove their clamp by table and which by range checks.
type Plan struct {
	model  *model.Model
	tables []TableSpec
	first  []int // first op using each table
	// Table[i] reports whether op i uses a clamp table.
	Table map[int]bool
}

// Per-activation cost estimates (R1CS constraints, 8-bit limbs) that drive
// the choice; the benchmarks measure the real totals.
const (
	lookupCost = 3 // a clamp-table lookup, beyond the shared remainder check
	entryCost  = 1 // a table entry
)

// rangeCost estimates the clamp part of the range proof for quotients in q.
func rangeCost(q model.Interval, rs Rescale) int {
	lo, hi := rs.Lo-rs.ZP, rs.Hi-rs.ZP
	c := 2 // y - L
	if hi-lo+1 != 1<<bitLen(hi-lo) {
		c += 2
	}
	if q.Lo < lo || q.Hi > hi {
		c += 3 + 1 + byteAligned(max(lo-q.Lo, q.Hi-hi))/8
	}
	return c
}

// NewPlan plans the circuit of a validated model.
func NewPlan(m *model.Model) (*Plan, error) {
	info := m.Info()
	if info == nil {
		return nil, fmt.Errorf("model %q is not validated", m.Name)
	}
	type cand struct {
		op     int
		q      model.Interval
		saving int // constraints saved by a table, before its entries
	}
	groups := map[ClampFn][]cand{}
	for i := range m.Ops {
		op := &m.Ops[i]
		if op.Kind != model.Requantize {
			continue
		}
		xt, xb := info.Tensors[op.In[0]], info.Bounds[op.In[0]]
		per := len(xb) / len(op.Multiplier)
		fn := ClampFn{op.Out.ZeroPoint, *op.Min, *op.Max}
		c := cand{op: i, q: model.Interval{Lo: 1 << 62, Hi: -1 << 62}}
		for e, b := range xb {
			ch := e / per
			rs := Rescale{M: op.Multiplier[ch], S: op.Shift[ch], ZP: fn.ZP, Lo: fn.Lo, Hi: fn.Hi}
			q := rs.quotient(model.Interval{Lo: b.Lo - xt.ZeroPoint, Hi: b.Hi - xt.ZeroPoint})
			c.q = model.Interval{Lo: min(c.q.Lo, q.Lo), Hi: max(c.q.Hi, q.Hi)}
			c.saving += rangeCost(q, rs) - lookupCost
		}
		groups[fn] = append(groups[fn], c)
	}
	p := &Plan{model: m, Table: map[int]bool{}}
	fns := make([]ClampFn, 0, len(groups))
	for fn := range groups {
		fns = append(fns, fn)
	}
	sort.Slice(fns, func(i, j int) bool { return fmt.Sprint(fns[i]) < fmt.Sprint(fns[j]) })
	for _, fn := range fns {
		cs := groups[fn]
		sort.SliceStable(cs, func(i, j int) bool { return cs[i].saving > cs[j].saving })
		var q *model.Interval
		for _, c := range cs {
			next := c.q
			extra := next.Hi - next.Lo + 1
			if q != nil {
				next = model.Interval{Lo: min(q.Lo, c.q.Lo), Hi: max(q.Hi, c.q.Hi)}
				extra = (next.Hi - next.Lo) - (q.Hi - q.Lo)
			}
			if int64(c.saving) > extra*entryCost && next.Hi-next.Lo < 1<<22 {
				q = &next
			}
		}
		if q == nil {
			continue
		}
		first := len(m.Ops)
		for _, c := range cs {
			if q.Lo <= c.q.Lo && c.q.Hi <= q.Hi {
				p.Table[c.op] = true
				first = min(first, c.op)
			}
		}
		p.tables = append(p.tables, TableSpec{Fn: fn, Q: *q})
		p.first = append(p.first, first)
	}
	return p, nil
}

// tableOptions declares the tables that ops [0, upTo) use.
func (p *Plan) tableOptions(upTo int) []Option {
	var opts []Option
	for i, t := range p.tables {
		if p.first[i] < upTo {
			opts = append(opts, WithTable(t))
		}
	}
	return opts
}

// Tables returns the clamp tables the circuit declares.
func (p *Plan) Tables() []TableSpec { return p.tables }
