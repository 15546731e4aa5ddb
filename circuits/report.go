package circuits

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/zkoracle/zkoracle/model"
	"github.com/zkoracle/zkoracle/model/layout"
)

// Layer is one line of a constraint report.
type Layer struct {
	Name        string // "input", "op 3 requantize act4", "output"
	Kind        string // gadget: input, requantize/table, requantize/range, linear, ...
	Activations int    // values the layer produces
	Constraints int
}

// CostReport is the constraint count of a model's circuit, per layer.
type CostReport struct {
	Model        string
	Constraints  int
	PublicInputs int
	Layers       []Layer
	Tables       []TableSpec
}

// Report compiles the circuit of m once per op prefix and attributes to each
// layer the constraints it adds: its gadgets plus its share of the deferred
// range-check and lookup arguments (a clamp table is counted at the first
// layer that uses it). The layers sum exactly to the total.
func Report(m *model.Model) (*CostReport, error) {
	p, err := NewPlan(m)
	if err != nil {
		return nil, err
	}
	r := &CostReport{Model: m.Name, Tables: p.tables}
	prev := 0
	for upTo := 0; upTo <= len(m.Ops)+1; upTo++ {
		c := p.circuit(min(upTo, len(m.Ops)))
		if upTo == len(m.Ops) {
			c.upTo = -1 // all ops, without the output binding
		}
		cs, err := compile(c)
		if err != nil {
			return nil, err
		}
		n := cs.GetNbConstraints()
		l := Layer{Constraints: n - prev}
		switch {
		case upTo == 0:
			l.Name, l.Kind, l.Activations = "input", "input bytes + packing", m.Input.Size()
		case upTo <= len(m.Ops):
			op := &m.Ops[upTo-1]
			l.Name = fmt.Sprintf("op %d %s %s", upTo-1, op.Kind, op.Out.Name)
			l.Kind, l.Activations = gadget(p, upTo-1, op), op.Out.Size()
		default:
			l.Name, l.Kind = "output", "output binding + argmax"
			l.Activations = m.Info().Tensors[m.Output].Size()
			r.Constraints, r.PublicInputs = n, cs.GetNbPublicVariables()-1
		}
		r.Layers = append(r.Layers, l)
		prev = n
	}
	if want := layout.Len(m.Input.Size(), m.Info().Tensors[m.Output].Size()); r.PublicInputs != want {
		return nil, fmt.Errorf("circuit has %d public inputs, layout v%d says %d", r.PublicInputs, layout.Version, want)
	}
	return r, nil
}

func gadget(p *Plan, i int, op *model.Op) string {
	switch op.Kind {
	case model.Requantize:
		if p.Table[i] {
			return "requantize/table"
		}
		return "requantize/range"
	case model.Dense, model.Conv2D, model.AvgPool, model.Add, model.Flatten:
		return "linear (free)"
	case model.MaxPool, model.ReLU:
		return "max"
	case model.Lookup:
		return "lookup"
	}
	return string(op.Kind)
}

// ByGadget sums constraints and activations per gadget kind.
func (r *CostReport) ByGadget() []Layer {
	var out []Layer
	idx := map[string]int{}
	for _, l := range r.Layers {
		i, ok := idx[l.Kind]
		if !ok {
			i = len(out)
			idx[l.Kind] = i
			out = append(out, Layer{Name: l.Kind, Kind: l.Kind})
		}
		out[i].Activations += l.Activations
		out[i].Constraints += l.Constraints
	}
	return out
}

// Write prints the report as aligned text.
func (r *CostReport) Write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "layer\tgadget\tvalues\tconstraints\tper value\t\n")
	for _, l := range r.Layers {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t\n", l.Name, l.Kind, l.Activations, l.Constraints, perValue(l))
	}
	fmt.Fprintf(tw, "\t\t\t\t\t\n")
	fmt.Fprintf(tw, "by gadget\t\t\t\t\t\n")
	for _, l := range r.ByGadget() {
		fmt.Fprintf(tw, "\t%s\t%d\t%d\t%s\t\n", l.Kind, l.Activations, l.Constraints, perValue(l))
	}
	tw.Flush()
	fmt.Fprintf(w, "\ntotal %d R1CS constraints (BN254), %d public inputs (layout v%d)\n", r.Constraints, r.PublicInputs, layout.Version)
	for _, t := range r.Tables {
		fmt.Fprintf(w, "clamp table: clamp(q%+d, %d, %d) over q in [%d, %d], %d entries\n", t.Fn.ZP, t.Fn.Lo, t.Fn.Hi, t.Q.Lo, t.Q.Hi, t.Q.Hi-t.Q.Lo+1)
	}
	return nil
}

func perValue(l Layer) string {
	if l.Activations == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", float64(l.Constraints)/float64(l.Activations))
}
