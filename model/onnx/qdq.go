package onnx

import (
	"fmt"
	"math"

	pb "github.com/advancedclimatesystems/gonnx/onnx"

	"github.com/zkoracle/zkoracle/model"
)

// A QDQ graph (onnxruntime's static quantization format) wraps every
// quantized tensor in QuantizeLinear/DequantizeLinear: weights are int8
// initializers behind a DequantizeLinear (per tensor or per output
// channel), biases int32 at scale s_in*s_w, and each activation passes a
// QuantizeLinear -> DequantizeLinear pair that fixes its scale and zero
// point. ImportQDQ reads those parameters instead of calibrating:
//
//  1. every DequantizeLinear of an initializer becomes the float constant
//     it stands for, its scales kept;
//  2. every QuantizeLinear -> DequantizeLinear pair becomes a Clip of the
//     float tensor to the int8 range (the saturation, which is also how
//     onnxruntime fuses a ReLU), its (scale, zero point) kept;
//  3. the float graph left is lowered like any float model, and emitted
//     with the kept parameters: the weights are the original int8 values
//     (checked to lie on their grid), the activations requantize to the
//     recorded scales, uint8 tensors shift by -128 to int8.
//
// The arithmetic then differs from onnxruntime's only in rounding: its
// requantization multiplies by a float32 scale and rounds half to even,
// zkoracle multiplies by a 16-bit-or-more integer and rounds half up.

type qparams struct {
	scale []float64
	zp    []int64
}

// qdqSource is the source of a pre-quantized graph.
type qdqSource struct {
	inputName string
	acts      map[string]act     // float tensor -> its QuantizeLinear
	weights   map[string]qparams // dequantized constant -> its scales
}

func (q *qdqSource) input() act { return q.acts[q.inputName] }

func (q *qdqSource) act(tensor string, f *layer) act {
	a := q.acts[tensor]
	if f != nil {
		a = a.clamp(f.lo, f.hi)
	}
	return a
}

func (q *qdqSource) fixed(tensor string) (act, bool) {
	a, ok := q.acts[tensor]
	return a, ok
}

func (q *qdqSource) weightScales(l *layer, _ bool) ([]float64, error) {
	p, ok := q.weights[l.node.In[1]]
	if !ok {
		return nil, fmt.Errorf("weights %q are not quantized (no DequantizeLinear)", l.node.In[1])
	}
	for _, z := range p.zp {
		if z != 0 {
			return nil, fmt.Errorf("weights %q have zero point %d: only symmetric weights are supported", l.node.In[1], z)
		}
	}
	ws := make([]float64, l.cout)
	for c := range ws {
		switch len(p.scale) {
		case 1:
			ws[c] = p.scale[0]
		case l.cout:
			ws[c] = p.scale[c]
		default:
			return nil, fmt.Errorf("weights %q have %d scales for %d output channels", l.node.In[1], len(p.scale), l.cout)
		}
	}
	return ws, nil
}

func (q *qdqSource) int32Output() bool { return false }

func (q *qdqSource) report(tensor, op string, a act) LayerReport {
	return LayerReport{Tensor: tensor, Op: op, Min: a.scale * float64(a.qlo-a.zp), Max: a.scale * float64(a.qhi-a.zp), Scale: a.scale, ZeroPoint: a.zp}
}

// ImportQDQ converts a QDQ-quantized graph into an int8 model with the
// graph's own quantization parameters.
func ImportQDQ(g *Graph, name, doc string) (*model.Model, *Net, *Report, error) {
	src := &qdqSource{inputName: g.Input, acts: map[string]act{}, weights: map[string]qparams{}}
	fg := &Graph{Name: g.Name, Producer: g.Producer, Opset: g.Opset, Input: g.Input, Shape: g.Shape, Output: g.Output, Consts: map[string]*Const{}}
	for k, c := range g.Consts {
		fg.Consts[k] = c
	}
	quantized := map[string]string{} // output of a QuantizeLinear -> its float input
	params := func(n *Node) (qparams, pb.TensorProto_DataType, error) {
		if len(n.In) < 2 {
			return qparams{}, 0, fmt.Errorf("onnx: %s %s: needs a scale", n.Op, n.Where())
		}
		s, ok := g.Consts[n.In[1]]
		if !ok || s.Float == nil {
			return qparams{}, 0, fmt.Errorf("onnx: %s %s: the scale must be a float constant", n.Op, n.Where())
		}
		p := qparams{scale: s.Float, zp: make([]int64, len(s.Float))}
		typ := pb.TensorProto_UINT8 // the default zero point is uint8 0
		if len(n.In) > 2 && n.In[2] != "" {
			z, ok := g.Consts[n.In[2]]
			if !ok || z.Int == nil || z.Size() != len(s.Float) {
				return qparams{}, 0, fmt.Errorf("onnx: %s %s: the zero point must be an integer constant like the scale", n.Op, n.Where())
			}
			p.zp, typ = z.Int, z.Type
		}
		for _, v := range p.scale {
			if !(v > 0) || math.IsInf(v, 0) {
				return qparams{}, 0, fmt.Errorf("onnx: %s %s: scale %g", n.Op, n.Where(), v)
			}
		}
		return p, typ, nil
	}
	for _, n := range g.Nodes {
		switch n.Op {
		case "QuantizeLinear":
			p, typ, err := params(n)
			if err != nil {
				return nil, nil, nil, err
			}
			if len(p.scale) != 1 {
				return nil, nil, nil, fmt.Errorf("onnx: %s %s: per-channel activation quantization is not supported", n.Op, n.Where())
			}
			a := act{scale: p.scale[0], zp: p.zp[0], qlo: -128, qhi: 127}
			switch typ {
			case pb.TensorProto_UINT8:
				a.zp -= 128 // q_int8 = q_uint8 - 128 stands for the same real value
			case pb.TensorProto_INT8:
			default:
				return nil, nil, nil, fmt.Errorf("onnx: %s %s: quantized type %s (int8 or uint8 only)", n.Op, n.Where(), typ)
			}
			if old, ok := src.acts[n.In[0]]; ok && old != a {
				return nil, nil, nil, fmt.Errorf("onnx: %s %s: tensor %q quantized twice, differently", n.Op, n.Where(), n.In[0])
			}
			src.acts[n.In[0]] = a
			quantized[n.Out[0]] = n.In[0]
		case "DequantizeLinear":
			p, _, err := params(n)
			if err != nil {
				return nil, nil, nil, err
			}
			if x, ok := quantized[n.In[0]]; ok {
				// An activation: on the float tensor, the pair saturates at
				// the int8 range (onnxruntime's fused ReLU is this clamp)
				// and rounds; the float graph keeps the saturation.
				a := src.acts[x]
				lo, hi := n.Out[0]+":lo", n.Out[0]+":hi"
				fg.Consts[lo] = &Const{Float: []float64{a.scale * float64(a.qlo-a.zp)}, Type: pb.TensorProto_FLOAT}
				fg.Consts[hi] = &Const{Float: []float64{a.scale * float64(a.qhi-a.zp)}, Type: pb.TensorProto_FLOAT}
				fg.Nodes = append(fg.Nodes, &Node{Index: n.Index, Of: n.Of, Op: "Clip", Name: n.Name, In: []string{x, lo, hi}, Out: n.Out})
				src.acts[n.Out[0]] = a
				continue
			}
			c, ok := g.Consts[n.In[0]]
			if !ok || c.Int == nil {
				return nil, nil, nil, fmt.Errorf("onnx: %s %s: dequantizes neither a quantized activation nor an integer constant", n.Op, n.Where())
			}
			axis := int(n.int("axis", 1))
			if axis < 0 {
				axis += len(c.Dims)
			}
			if len(p.scale) > 1 && (axis >= len(c.Dims) || c.Dims[axis] != len(p.scale)) {
				return nil, nil, nil, fmt.Errorf("onnx: %s %s: %d scales along axis %d of %v", n.Op, n.Where(), len(p.scale), axis, c.Dims)
			}
			f := &Const{Dims: c.Dims, Float: make([]float64, c.Size()), Type: pb.TensorProto_FLOAT}
			inner := 1
			for _, d := range c.Dims[min(axis+1, len(c.Dims)):] {
				inner *= d
			}
			for i, q := range c.Int {
				k := 0
				if len(p.scale) > 1 {
					k = (i / inner) % len(p.scale)
				}
				f.Float[i] = p.scale[k] * float64(q-p.zp[k])
			}
			fg.Consts[n.Out[0]] = f
			if c.Type == pb.TensorProto_INT8 || c.Type == pb.TensorProto_UINT8 {
				if c.Type == pb.TensorProto_UINT8 {
					return nil, nil, nil, fmt.Errorf("onnx: %s %s: uint8 weights are not supported (quantize weights as int8)", n.Op, n.Where())
				}
				src.weights[n.Out[0]] = p
			}
		default:
			fg.Nodes = append(fg.Nodes, n)
		}
	}
	if _, ok := src.acts[g.Input]; !ok {
		return nil, nil, nil, fmt.Errorf("onnx: the input %q is not quantized: not a QDQ graph", g.Input)
	}
	net, err := Lower(fg)
	if err != nil {
		return nil, nil, nil, err
	}
	m, rep, err := quantize(net, src, newEmitter(name, doc, 0, 0))
	if err != nil {
		return nil, nil, nil, err
	}
	return m, net, rep, nil
}
