package circuits

import (
	"fmt"
	"slices"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/std/rangecheck"

	"github.com/zkoracle/zkoracle/model"
	"github.com/zkoracle/zkoracle/model/layout"
)

// Circuit proves one inference of a model. Weights are constants of the
// circuit, so the verifying key binds the model. Public inputs follow
// package layout (v1): the packed input, the class, the outputs.
type Circuit struct {
	Packed []frontend.Variable `gnark:",public"`
	Class  frontend.Variable   `gnark:",public"`
	Output []frontend.Variable `gnark:",public"`
	// Input holds the bytes u = x + 128 of the int8 input: private, bound to
	// Packed by the packing equations.
	Input []frontend.Variable

	plan *Plan
	// upTo limits Define to ops [0, upTo) for Report; len(ops) is the whole
	// circuit, -1 all ops without the output binding.
	upTo int
}

// New returns the circuit for m, ready to compile (or, filled by Assign,
// to serve as a witness).
func New(m *model.Model) (*Circuit, error) {
	p, err := NewPlan(m)
	if err != nil {
		return nil, err
	}
	return p.circuit(len(m.Ops)), nil
}

func (p *Plan) circuit(upTo int) *Circuit {
	n, k := p.model.Input.Size(), p.model.Info().Tensors[p.model.Output].Size()
	return &Circuit{
		Packed: make([]frontend.Variable, layout.PackedLen(n)),
		Output: make([]frontend.Variable, k),
		Input:  make([]frontend.Variable, n),
		plan:   p,
		upTo:   upTo,
	}
}

// Compile compiles the circuit of m to R1CS over BN254.
func Compile(m *model.Model) (constraint.ConstraintSystem, error) {
	c, err := New(m)
	if err != nil {
		return nil, err
	}
	return compile(c)
}

// compressThreshold is the length above which gnark replaces a linear
// combination by a new wire (one constraint). gnark's default, 300, cut the
// mnist-cnn conv2 sums (600 terms) and so cost one constraint per output;
// 1,000 keeps every fixture's dense and conv sums whole.
const compressThreshold = 1000

func compile(c *Circuit) (constraint.ConstraintSystem, error) {
	cs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, c, frontend.WithCompressThreshold(compressThreshold))
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", c.plan.model.Name, err)
	}
	return cs, nil
}

// Assign runs the reference executor on input and returns the full
// assignment (a witness) and the model's output.
func Assign(m *model.Model, input []int8) (*Circuit, []int64, error) {
	tr, err := m.Run(input)
	if err != nil {
		return nil, nil, err
	}
	return Witness(input, tr.Output), slices.Clone(tr.Output), nil
}

// Witness returns the assignment claiming that the model maps input to
// output; only a true claim satisfies the circuit.
func Witness(input []int8, output []int64) *Circuit {
	c := &Circuit{
		Packed: make([]frontend.Variable, layout.PackedLen(len(input))),
		Output: make([]frontend.Variable, len(output)),
		Input:  make([]frontend.Variable, len(input)),
		Class:  layout.Argmax(output),
	}
	for i, v := range layout.Pack(input) {
		c.Packed[i] = v
	}
	for i, v := range output {
		c.Output[i] = v
	}
	for i, v := range input {
		c.Input[i] = int64(v) + 128
	}
	return c
}

// Define builds the constraints: input binding, every op, output binding
// and argmax.
func (c *Circuit) Define(api frontend.API) error {
	p := c.plan
	m := p.model
	info := m.Info()
	upTo, whole := c.upTo, c.upTo == len(m.Ops)
	if upTo < 0 {
		upTo = len(m.Ops) // every op, no output binding (for Report)
	}
	rq, err := NewRequantizer(api, p.tableOptions(upTo)...)
	if err != nil {
		return err
	}
	rc := rangecheck.New(api)
	vals := map[string][]frontend.Variable{}

	// Input: bytes range-checked, packed 31 per public input, x = u - 128.
	x := make([]frontend.Variable, len(c.Input))
	for j := range c.Packed {
		var acc frontend.Variable = 0
		for i := min(len(c.Input), (j+1)*layout.BytesPerElement) - 1; i >= j*layout.BytesPerElement; i-- {
			acc = api.Add(api.Mul(acc, 256), c.Input[i])
		}
		api.AssertIsEqual(c.Packed[j], acc)
	}
	for i, u := range c.Input {
		rc.Check(u, 8)
		x[i] = api.Sub(u, 128)
	}
	vals[m.Input.Name] = x

	acts := map[string]*Activation{}
	for i := range upTo {
		op := &m.Ops[i]
		in := make([][]frontend.Variable, len(op.In))
		for j, name := range op.In {
			in[j] = vals[name]
		}
		out, err := defineOp(api, rq, acts, op, info, in)
		if err != nil {
			return fmt.Errorf("op %d (%s %q): %w", i, op.Kind, op.Out.Name, err)
		}
		vals[op.Out.Name] = out
	}
	if !whole {
		return nil // a prefix, for the per-layer report
	}

	out := vals[m.Output]
	for i := range out {
		api.AssertIsEqual(c.Output[i], out[i])
	}
	Argmax(api, c.Class, c.Output, info.Bounds[m.Output])
	return nil
}

func defineOp(api frontend.API, rq *Requantizer, acts map[string]*Activation, op *model.Op, info *model.Info, in [][]frontend.Variable) ([]frontend.Variable, error) {
	x := in[0]
	xt := info.Tensors[op.In[0]]
	xb := info.Bounds[op.In[0]]
	zx := xt.ZeroPoint
	out := make([]frontend.Variable, op.Out.Size())
	switch op.Kind {
	case model.Dense, model.Conv2D:
		for o, terms := range linearTerms(op, xt) {
			// bias + sum w*(x - zx) = (bias - zx*sum w) + sum w*x
			c := int64(op.Bias[termsChannel(op, o)])
			vs := make([]frontend.Variable, 0, len(terms)+2)
			for _, t := range terms {
				c -= zx * t.w
				vs = append(vs, api.Mul(x[t.i], t.w))
			}
			vs = append(vs, c, 0)
			out[o] = api.Add(vs[0], vs[1], vs[2:]...)
		}
	case model.AvgPool:
		for o, win := range model.Windows(xt.Shape, op.Kernel, max(op.Stride, 1)) {
			vs := make([]frontend.Variable, 0, len(win)+1)
			for _, j := range win {
				vs = append(vs, x[j])
			}
			vs = append(vs, 0)
			out[o] = api.Add(vs[0], vs[1], vs[2:]...)
		}
	case model.MaxPool:
		for o, win := range model.Windows(xt.Shape, op.Kernel, max(op.Stride, 1)) {
			m, mb := x[win[0]], xb[win[0]]
			for _, j := range win[1:] {
				m = Max(api, m, x[j], model.Interval{Lo: mb.Lo - xb[j].Hi, Hi: mb.Hi - xb[j].Lo})
				mb = model.Interval{Lo: max(mb.Lo, xb[j].Lo), Hi: max(mb.Hi, xb[j].Hi)}
			}
			out[o] = m
		}
	case model.ReLU:
		for i := range x {
			out[i] = Max(api, x[i], zx, model.Interval{Lo: xb[i].Lo - zx, Hi: xb[i].Hi - zx})
		}
	case model.Requantize:
		per := len(x) / len(op.Multiplier)
		for i := range x {
			ch := i / per
			rs := Rescale{M: op.Multiplier[ch], S: op.Shift[ch], ZP: op.Out.ZeroPoint, Lo: *op.Min, Hi: *op.Max}
			out[i] = rq.Requantize(api.Sub(x[i], zx), model.Interval{Lo: xb[i].Lo - zx, Hi: xb[i].Hi - zx}, rs)
		}
	case model.Add:
		zy := info.Tensors[op.In[1]].ZeroPoint
		c := -op.Coeffs[0]*zx - op.Coeffs[1]*zy
		for i := range x {
			out[i] = api.Add(api.Mul(x[i], op.Coeffs[0]), api.Mul(in[1][i], op.Coeffs[1]), c)
		}
	case model.Flatten:
		copy(out, x)
	case model.Lookup:
		key := string(tableBytes(op.Table))
		a, ok := acts[key]
		if !ok {
			a = NewActivation(api, op.Table)
			acts[key] = a
		}
		for i := range x {
			out[i] = a.Apply(x[i])
		}
	default:
		return nil, fmt.Errorf("no gadget for op kind %q", op.Kind)
	}
	return out, nil
}

type term struct {
	i int   // input index
	w int64 // weight
}

// linearTerms lists, for each output of a dense or conv op, its non-zero
// weights and the inputs they multiply (padding contributes nothing).
func linearTerms(op *model.Op, xt model.Tensor) [][]term {
	out := make([][]term, op.Out.Size())
	if op.Kind == model.Dense {
		k := xt.Size()
		for n := range out {
			for j := range k {
				if w := op.Weights[n*k+j]; w != 0 {
					out[n] = append(out[n], term{j, int64(w)})
				}
			}
		}
		return out
	}
	c, h, w := xt.Shape[0], xt.Shape[1], xt.Shape[2]
	k, s, p := op.Kernel, max(op.Stride, 1), op.Padding
	ho, wo := op.Out.Shape[1], op.Out.Shape[2]
	for co := range op.Out.Shape[0] {
		for oy := range ho {
			for ox := range wo {
				o := (co*ho+oy)*wo + ox
				for ci := range c {
					for ky := range k {
						iy := oy*s + ky - p
						if iy < 0 || iy >= h {
							continue
						}
						for kx := range k {
							ix := ox*s + kx - p
							if ix < 0 || ix >= w {
								continue
							}
							if wt := op.Weights[((co*c+ci)*k+ky)*k+kx]; wt != 0 {
								out[o] = append(out[o], term{(ci*h+iy)*w + ix, int64(wt)})
							}
						}
					}
				}
			}
		}
	}
	return out
}

// termsChannel returns the output channel (bias index) of output o.
func termsChannel(op *model.Op, o int) int {
	if op.Kind == model.Dense {
		return o
	}
	return o / (op.Out.Shape[1] * op.Out.Shape[2])
}

func tableBytes(t model.Int8s) []byte {
	b := make([]byte, len(t))
	for i, v := range t {
		b[i] = byte(v)
	}
	return b
}
