package model

import (
	"cmp"
	"fmt"
	"slices"
)

// Trace holds every tensor of one execution, by name, as int64 values.
type Trace struct {
	Values map[string][]int64
	Output []int64
}

// Run executes the model on an int8 input (row major, the input's shape).
func (m *Model) Run(input []int8) (*Trace, error) { return m.RunHook(input, nil) }

// RunHook is Run with a hook called after each op with the op's index, its
// inputs and its output, which the hook may change: what a lying prover's
// trace looks like, for adversarial tests.
func (m *Model) RunHook(input []int8, hook func(op int, in [][]int64, out []int64)) (*Trace, error) {
	if m.info == nil {
		return nil, fmt.Errorf("model %q: not validated", m.Name)
	}
	if len(input) != m.Input.Size() {
		return nil, fmt.Errorf("input has %d values, want %d (shape %v)", len(input), m.Input.Size(), m.Input.Shape)
	}
	vals := make(map[string][]Interval, len(m.Ops)+1)
	x := make([]Interval, len(input))
	for i, v := range input {
		x[i] = Interval{int64(v), int64(v)}
	}
	vals[m.Input.Name] = x
	for i := range m.Ops {
		op := &m.Ops[i]
		in := make([]Tensor, len(op.In))
		inV := make([][]Interval, len(op.In))
		for j, name := range op.In {
			in[j], inV[j] = m.info.Tensors[name], vals[name]
		}
		out := bounds(op, in, inV)
		if hook != nil {
			ins := make([][]int64, len(inV))
			for j := range inV {
				ins[j] = los(inV[j])
			}
			o := los(out)
			hook(i, ins, o)
			for k := range out {
				out[k] = point(o[k])
			}
		}
		vals[op.Out.Name] = out
	}
	tr := &Trace{Values: make(map[string][]int64, len(vals))}
	for name, iv := range vals {
		tr.Values[name] = los(iv)
	}
	tr.Output = tr.Values[m.Output]
	return tr, nil
}

// Argmax returns the index of the first maximum of v (the predicted class).
func Argmax[T cmp.Ordered](v []T) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// PixelsToInput maps 8-bit pixels (0..255) to the int8 input q = p - 128,
// which with scale 1/255 and zero point -128 stands for p/255 exactly.
func PixelsToInput(p []byte) []int8 {
	x := make([]int8, len(p))
	for i, v := range p {
		x[i] = int8(int(v) - 128)
	}
	return x
}

// bounds evaluates op over intervals. Interval arithmetic is exact on points
// (Lo == Hi), so the same code is the reference executor (Run) and the static
// bound analysis (Validate): one definition of each op's semantics.
func bounds(op *Op, in []Tensor, v [][]Interval) []Interval {
	x, zx := v[0], in[0].ZeroPoint
	out := make([]Interval, op.Out.Size())
	switch op.Kind {
	case Dense:
		k := len(x)
		for n := range out {
			acc := point(int64(op.Bias[n]))
			for j := range k {
				acc = acc.add(x[j].shift(-zx).scale(int64(op.Weights[n*k+j])))
			}
			out[n] = acc
		}
	case Conv2D:
		c, h, w := in[0].Shape[0], in[0].Shape[1], in[0].Shape[2]
		k, s, p := op.Kernel, op.stride(), op.Padding
		ho, wo := op.Out.Shape[1], op.Out.Shape[2]
		for co := range op.Out.Shape[0] {
			for oy := range ho {
				for ox := range wo {
					acc := point(int64(op.Bias[co]))
					for ci := range c {
						for ky := range k {
							iy := oy*s + ky - p
							if iy < 0 || iy >= h {
								continue // padding: x-zx = 0
							}
							for kx := range k {
								ix := ox*s + kx - p
								if ix < 0 || ix >= w {
									continue
								}
								wt := int64(op.Weights[((co*c+ci)*k+ky)*k+kx])
								acc = acc.add(x[(ci*h+iy)*w+ix].shift(-zx).scale(wt))
							}
						}
					}
					out[(co*ho+oy)*wo+ox] = acc
				}
			}
		}
	case MaxPool, AvgPool:
		for i, win := range Windows(in[0].Shape, op.Kernel, op.stride()) {
			acc := x[win[0]]
			for _, j := range win[1:] {
				if op.Kind == MaxPool {
					acc = Interval{max(acc.Lo, x[j].Lo), max(acc.Hi, x[j].Hi)}
				} else {
					acc = acc.add(x[j])
				}
			}
			out[i] = acc
		}
	case Requantize:
		per := len(x) / len(op.Multiplier)
		for i := range x {
			c := i / per
			f := func(a int64) int64 {
				return RequantizeValue(a-zx, op.Multiplier[c], op.Shift[c], op.Out.ZeroPoint, *op.Min, *op.Max)
			}
			out[i] = Interval{f(x[i].Lo), f(x[i].Hi)} // monotone: M > 0
		}
	case ReLU:
		for i := range x {
			out[i] = Interval{max(x[i].Lo, zx), max(x[i].Hi, zx)}
		}
	case Add:
		y, zy := v[1], in[1].ZeroPoint
		for i := range x {
			out[i] = x[i].shift(-zx).scale(op.Coeffs[0]).add(y[i].shift(-zy).scale(op.Coeffs[1]))
		}
	case Flatten:
		copy(out, x)
	case Lookup:
		for i := range x {
			vals := op.Table[x[i].Lo+128 : x[i].Hi+129]
			out[i] = Interval{int64(slices.Min(vals)), int64(slices.Max(vals))}
		}
	}
	return out
}

// RequantizeValue is the requantize rule on one value a = x - zx:
// clamp(floor((a*M + 2^(s-1)) / 2^s) + zp, lo, hi). The shift is arithmetic,
// so the division floors and the rounding is half up.
func RequantizeValue(a, m int64, s int, zp, lo, hi int64) int64 {
	q := (a*m + 1<<(s-1)) >> s
	return min(max(q+zp, lo), hi)
}

// Windows lists, for each output cell of a k x k pooling with stride s over a
// [C,H,W] tensor (no padding), the flat indices of its input cells.
func Windows(shape []int, k, s int) [][]int {
	c, h, w := shape[0], shape[1], shape[2]
	ho, wo := (h-k)/s+1, (w-k)/s+1
	out := make([][]int, 0, c*ho*wo)
	for ci := range c {
		for oy := range ho {
			for ox := range wo {
				win := make([]int, 0, k*k)
				for ky := range k {
					for kx := range k {
						win = append(win, (ci*h+oy*s+ky)*w+ox*s+kx)
					}
				}
				out = append(out, win)
			}
		}
	}
	return out
}

// los returns the lower ends (the values, for points).
func los(iv []Interval) []int64 {
	v := make([]int64, len(iv))
	for i := range iv {
		v[i] = iv[i].Lo
	}
	return v
}

func point(v int64) Interval { return Interval{v, v} }

func (a Interval) add(b Interval) Interval { return Interval{a.Lo + b.Lo, a.Hi + b.Hi} }

func (a Interval) shift(d int64) Interval { return Interval{a.Lo + d, a.Hi + d} }

func (a Interval) scale(w int64) Interval {
	if w >= 0 {
		return Interval{a.Lo * w, a.Hi * w}
	}
	return Interval{a.Hi * w, a.Lo * w}
}
