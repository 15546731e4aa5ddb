package onnx

import (
	"fmt"
	"math"
	"slices"
)

// A float network is the ONNX graph lowered to the layers zkoracle knows:
// BatchNormalization folded into the Conv or Gemm before it, MatMul + Add
// merged into a dense layer, Identity and Dropout dropped, Reshape to one
// dimension turned into Flatten. Shapes are per sample (no batch axis).

type layerKind int

const (
	lConv layerKind = iota
	lDense
	lRelu
	lClip
	lMaxPool
	lAvgPool
	lFlatten
	lAdd
	lSigmoid
	lTanh
)

var layerNames = map[layerKind]string{lConv: "conv", lDense: "dense", lRelu: "relu", lClip: "clip", lMaxPool: "maxpool",
	lAvgPool: "avgpool", lFlatten: "flatten", lAdd: "add", lSigmoid: "sigmoid", lTanh: "tanh"}

type layer struct {
	kind  layerKind
	in    []string
	out   string
	shape []int // output shape
	node  *Node // the ONNX node it came from (for messages)
	// conv, dense: W is [Co][C][k][k] or [N][K]; B has Co (N) values.
	w, b                 []float64
	k, stride, pad, cout int
	// relu, clip: the clamp [lo, hi] (relu: [0, +inf))
	lo, hi float64
}

// Net is a lowered float network.
type Net struct {
	Input  string
	Shape  []int // per sample
	Output string
	layers []*layer
	shapes map[string][]int
}

func size(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// Lower turns a parsed float graph into a Net. Every node that cannot be
// expressed is an error naming the node and where it sits.
func Lower(g *Graph) (*Net, error) {
	net := &Net{Input: g.Input, Shape: g.Shape[1:], shapes: map[string][]int{g.Input: g.Shape[1:]}}
	alias := map[string]string{}
	name := func(s string) string {
		for {
			a, ok := alias[s]
			if !ok {
				return s
			}
			s = a
		}
	}
	producer := map[string]*layer{}
	emit := func(l *layer) {
		net.layers = append(net.layers, l)
		net.shapes[l.out] = l.shape
		producer[l.out] = l
	}
	for _, n := range g.Nodes {
		fail := func(format string, args ...any) error {
			return fmt.Errorf("onnx: %s %s: %s", n.Op, n.Where(), fmt.Sprintf(format, args...))
		}
		if n.Op == "Constant" {
			continue
		}
		if n.Op == "QuantizeLinear" || n.Op == "DequantizeLinear" {
			return nil, fail("a quantized (QDQ) graph: import it with ImportQDQ")
		}
		in := make([]string, len(n.In))
		for i, s := range n.In {
			in[i] = name(s)
		}
		if len(n.In) == 0 || len(n.Out) == 0 {
			return nil, fail("no inputs or outputs")
		}
		x := in[0]
		xs, ok := net.shapes[x]
		if !ok {
			return nil, fail("input %q is neither the graph input nor computed before (constant inputs are only weights)", x)
		}
		out := n.Out[0]
		l := &layer{in: []string{x}, out: out, node: n}
		switch n.Op {
		case "Identity", "Dropout":
			alias[out] = x
			continue
		case "Conv":
			if len(xs) != 3 {
				return nil, fail("input of shape %v, want [C,H,W]", xs)
			}
			w, err := g.weight(n, 1)
			if err != nil {
				return nil, fail("%v", err)
			}
			if len(w.Dims) != 4 || w.Dims[1] != xs[0] || w.Dims[2] != w.Dims[3] {
				return nil, fail("weights of shape %v for input %v: want [Co,%d,k,k] (square kernels)", w.Dims, xs, xs[0])
			}
			if g := n.int("group", 1); g != 1 {
				return nil, fail("group %d (only group 1)", g)
			}
			for _, d := range n.ints("dilations") {
				if d != 1 {
					return nil, fail("dilation %d (only 1)", d)
				}
			}
			if ap := n.str("auto_pad"); ap != "" && ap != "NOTSET" && ap != "VALID" {
				return nil, fail("auto_pad %s (give explicit pads)", ap)
			}
			pad, err := uniform(n.ints("pads"), 0)
			if err != nil {
				return nil, fail("pads: %v", err)
			}
			stride, err := uniform(n.ints("strides"), 1)
			if err != nil {
				return nil, fail("strides: %v", err)
			}
			l.kind, l.w, l.k, l.stride, l.pad, l.cout = lConv, w.Float, w.Dims[2], stride, pad, w.Dims[0]
			l.b = make([]float64, l.cout)
			if len(in) > 2 && in[2] != "" {
				b, err := g.weight(n, 2)
				if err != nil || b.Size() != l.cout {
					return nil, fail("bias: want %d constant values", l.cout)
				}
				l.b = slices.Clone(b.Float)
			}
			ho, wo := (xs[1]+2*pad-l.k)/stride+1, (xs[2]+2*pad-l.k)/stride+1
			if ho <= 0 || wo <= 0 {
				return nil, fail("kernel %d larger than the padded input %v", l.k, xs)
			}
			l.shape = []int{l.cout, ho, wo}
		case "Gemm", "MatMul":
			if len(xs) != 1 {
				return nil, fail("input of shape %v: flatten it first", xs)
			}
			w, err := g.weight(n, 1)
			if err != nil {
				return nil, fail("%v", err)
			}
			if len(w.Dims) != 2 {
				return nil, fail("weights of shape %v, want 2-D", w.Dims)
			}
			transB := n.Op == "Gemm" && n.int("transB", 0) == 1
			if n.Op == "Gemm" && n.int("transA", 0) != 0 {
				return nil, fail("transA=1 is not supported")
			}
			K, N := w.Dims[0], w.Dims[1]
			if transB {
				K, N = N, K
			}
			if K != xs[0] {
				return nil, fail("weights of shape %v for an input of %d values", w.Dims, xs[0])
			}
			alpha, beta := n.float("alpha", 1), n.float("beta", 1)
			l.kind, l.cout, l.shape = lDense, N, []int{N}
			l.w = make([]float64, N*K)
			for r := range N {
				for c := range K {
					v := w.Float[c*N+r]
					if transB {
						v = w.Float[r*K+c]
					}
					l.w[r*K+c] = alpha * v
				}
			}
			l.b = make([]float64, N)
			if n.Op == "Gemm" && len(in) > 2 && in[2] != "" {
				b, err := g.weight(n, 2)
				if err != nil || (b.Size() != N && b.Size() != 1) {
					return nil, fail("bias: want %d constant values", N)
				}
				for i := range l.b {
					l.b[i] = beta * b.Float[min(i, b.Size()-1)]
				}
			}
		case "Add":
			if len(in) != 2 {
				return nil, fail("want 2 inputs")
			}
			if c, ok := g.Consts[n.In[1]]; ok { // a bias: merge into the dense or conv before
				p := producer[x]
				if p == nil || (p.kind != lDense && p.kind != lConv) || len(g.consumers(n.In[0])) != 1 || c.Float == nil {
					return nil, fail("adding a constant is supported only as the bias of the MatMul, Gemm or Conv right before")
				}
				if err := addBias(p, c); err != nil {
					return nil, fail("%v", err)
				}
				alias[out] = x
				continue
			}
			ys, ok := net.shapes[in[1]]
			if !ok || !slices.Equal(xs, ys) {
				return nil, fail("operands of shapes %v and %v (broadcasting is not supported)", xs, ys)
			}
			l.kind, l.in, l.shape = lAdd, in[:2], xs
		case "BatchNormalization":
			p := producer[x]
			if p == nil || (p.kind != lConv && p.kind != lDense) || len(g.consumers(n.In[0])) != 1 {
				return nil, fail("BatchNormalization can only be folded into the Conv or Gemm right before it, with no other reader")
			}
			if err := foldBN(g, n, p); err != nil {
				return nil, fail("%v", err)
			}
			alias[out] = x
			continue
		case "Relu":
			l.kind, l.lo, l.hi, l.shape = lRelu, 0, math.Inf(1), xs
		case "Clip":
			lo, hi := n.float("min", math.Inf(-1)), n.float("max", math.Inf(1))
			for i, v := range []*float64{&lo, &hi} {
				if len(n.In) > i+1 && n.In[i+1] != "" {
					c, ok := g.Consts[n.In[i+1]]
					if !ok || c.Size() != 1 || c.Float == nil {
						return nil, fail("bounds must be constant scalars")
					}
					*v = c.Float[0]
				}
			}
			if lo > 0 || hi < 0 || lo >= hi {
				return nil, fail("clip [%g, %g] must contain 0 (ReLU6 is [0, 6])", lo, hi)
			}
			l.kind, l.lo, l.hi, l.shape = lClip, lo, hi, xs
		case "MaxPool", "AveragePool", "GlobalAveragePool":
			if len(xs) != 3 {
				return nil, fail("input of shape %v, want [C,H,W]", xs)
			}
			l.kind = lMaxPool
			if n.Op != "MaxPool" {
				l.kind = lAvgPool
			}
			if n.Op == "GlobalAveragePool" {
				if xs[1] != xs[2] {
					return nil, fail("global pooling of a non-square %v", xs)
				}
				l.k, l.stride = xs[1], 1
			} else {
				ks := n.ints("kernel_shape")
				if len(ks) != 2 || ks[0] != ks[1] {
					return nil, fail("kernel %v (square kernels only)", ks)
				}
				stride, err := uniform(n.ints("strides"), 1)
				if err != nil {
					return nil, fail("strides: %v", err)
				}
				if pad, err := uniform(n.ints("pads"), 0); err != nil || pad != 0 {
					return nil, fail("padded pooling is not supported")
				}
				if n.int("ceil_mode", 0) != 0 {
					return nil, fail("ceil_mode=1 is not supported")
				}
				for _, d := range n.ints("dilations") {
					if d != 1 {
						return nil, fail("dilation %d (only 1)", d)
					}
				}
				l.k, l.stride = int(ks[0]), stride
			}
			ho, wo := (xs[1]-l.k)/l.stride+1, (xs[2]-l.k)/l.stride+1
			if ho <= 0 || wo <= 0 {
				return nil, fail("window %d larger than the input %v", l.k, xs)
			}
			l.shape = []int{xs[0], ho, wo}
		case "Flatten":
			if n.int("axis", 1) != 1 {
				return nil, fail("axis %d (only 1: keep the batch)", n.int("axis", 1))
			}
			l.kind, l.shape = lFlatten, []int{size(xs)}
		case "Reshape":
			c, ok := g.Consts[n.In[min(1, len(n.In)-1)]]
			if len(n.In) != 2 || !ok || c.Int == nil {
				return nil, fail("the target shape must be a constant")
			}
			want := c.Int
			if len(want) != 2 || (want[0] != 1 && want[0] != -1 && want[0] != 0) || (want[1] != -1 && want[1] != int64(size(xs))) {
				return nil, fail("reshape to %v: only a flatten to [1, %d] is supported", want, size(xs))
			}
			if len(xs) == 1 {
				alias[out] = x
				continue
			}
			l.kind, l.shape = lFlatten, []int{size(xs)}
		case "Sigmoid", "Tanh":
			l.kind, l.shape = lSigmoid, xs
			if n.Op == "Tanh" {
				l.kind = lTanh
			}
		default:
			return nil, &UnsupportedError{Op: n.Op, Where: n.Where()}
		}
		if _, err := checkedSize(l.shape); err != nil {
			return nil, fail("output %v", err)
		}
		emit(l)
	}
	net.Output = name(g.Output)
	if _, ok := net.shapes[net.Output]; !ok || len(net.layers) == 0 {
		return nil, fmt.Errorf("onnx: the graph output %q is not computed from the input", g.Output)
	}
	return net, nil
}

// weight returns a node's i-th input as a float constant.
func (g *Graph) weight(n *Node, i int) (*Const, error) {
	if i >= len(n.In) {
		return nil, fmt.Errorf("missing input %d", i+1)
	}
	c, ok := g.Consts[n.In[i]]
	if !ok || c.Float == nil {
		return nil, fmt.Errorf("input %q must be a float constant (weights are compiled into the circuit)", n.In[i])
	}
	return c, nil
}

// uniform returns the single value of a per-axis attribute (all equal).
func uniform(v []int64, def int) (int, error) {
	if len(v) == 0 {
		return def, nil
	}
	for _, x := range v {
		if x != v[0] {
			return 0, fmt.Errorf("%v: only equal values on every axis and side are supported", v)
		}
	}
	if v[0] < 0 || v[0] > 64 {
		return 0, fmt.Errorf("%v out of range", v)
	}
	return int(v[0]), nil
}

func addBias(p *layer, c *Const) error {
	if c.Size() != p.cout && c.Size() != 1 {
		return fmt.Errorf("a bias of %d values for %d channels", c.Size(), p.cout)
	}
	for i := range p.b {
		p.b[i] += c.Float[min(i, c.Size()-1)]
	}
	return nil
}

// foldBN folds y = γ(x-μ)/√(σ²+ε) + β into the conv or dense p producing x.
func foldBN(g *Graph, n *Node, p *layer) error {
	if len(n.In) != 5 {
		return fmt.Errorf("want 5 inputs (x, scale, B, mean, var)")
	}
	var ps [4][]float64
	for i := range ps {
		c, err := g.weight(n, i+1)
		if err != nil {
			return err
		}
		if c.Size() != p.cout {
			return fmt.Errorf("%d values for %d channels", c.Size(), p.cout)
		}
		ps[i] = c.Float
	}
	eps := n.float("epsilon", 1e-5)
	per := len(p.w) / p.cout
	for c := range p.cout {
		f := ps[0][c] / math.Sqrt(ps[3][c]+eps)
		for j := range per {
			p.w[c*per+j] *= f
		}
		p.b[c] = (p.b[c]-ps[2][c])*f + ps[1][c]
	}
	return nil
}

// Run executes the float network on one sample (flattened, the input's
// shape) and returns every tensor.
func (net *Net) Run(x []float64) (map[string][]float64, error) {
	if len(x) != net.InputSize() {
		return nil, fmt.Errorf("input of %d values, want %d (shape %v)", len(x), net.InputSize(), net.Shape)
	}
	v := map[string][]float64{net.Input: x}
	for _, l := range net.layers {
		a := v[l.in[0]]
		xs := net.shapes[l.in[0]]
		y := make([]float64, size(l.shape))
		switch l.kind {
		case lConv:
			C, H, W := xs[0], xs[1], xs[2]
			Ho, Wo := l.shape[1], l.shape[2]
			for co := range l.cout {
				for oy := range Ho {
					for ox := range Wo {
						s := l.b[co]
						for c := range C {
							for ky := range l.k {
								iy := oy*l.stride + ky - l.pad
								if iy < 0 || iy >= H {
									continue
								}
								for kx := range l.k {
									ix := ox*l.stride + kx - l.pad
									if ix < 0 || ix >= W {
										continue
									}
									s += l.w[((co*C+c)*l.k+ky)*l.k+kx] * a[(c*H+iy)*W+ix]
								}
							}
						}
						y[(co*Ho+oy)*Wo+ox] = s
					}
				}
			}
		case lDense:
			K := len(a)
			for r := range l.cout {
				s := l.b[r]
				for c := range K {
					s += l.w[r*K+c] * a[c]
				}
				y[r] = s
			}
		case lRelu:
			for i, t := range a {
				y[i] = max(t, 0)
			}
		case lClip:
			for i, t := range a {
				y[i] = min(max(t, l.lo), l.hi)
			}
		case lMaxPool, lAvgPool:
			H, W := xs[1], xs[2]
			Ho, Wo := l.shape[1], l.shape[2]
			for c := range xs[0] {
				for oy := range Ho {
					for ox := range Wo {
						best, sum := math.Inf(-1), 0.0
						for ky := range l.k {
							for kx := range l.k {
								t := a[(c*H+oy*l.stride+ky)*W+ox*l.stride+kx]
								best, sum = max(best, t), sum+t
							}
						}
						if l.kind == lMaxPool {
							y[(c*Ho+oy)*Wo+ox] = best
						} else {
							y[(c*Ho+oy)*Wo+ox] = sum / float64(l.k*l.k)
						}
					}
				}
			}
		case lFlatten:
			copy(y, a)
		case lAdd:
			b := v[l.in[1]]
			for i := range y {
				y[i] = a[i] + b[i]
			}
		case lSigmoid:
			for i, t := range a {
				y[i] = 1 / (1 + math.Exp(-t))
			}
		case lTanh:
			for i, t := range a {
				y[i] = math.Tanh(t)
			}
		}
		v[l.out] = y
	}
	return v, nil
}

// InputSize is the number of values of one input sample.
func (net *Net) InputSize() int { return size(net.Shape) }

// Predict returns the float network's output on x.
func (net *Net) Predict(x []float64) ([]float64, error) {
	v, err := net.Run(x)
	if err != nil {
		return nil, err
	}
	return v[net.Output], nil
}
