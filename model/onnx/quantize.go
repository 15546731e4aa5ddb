package onnx

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/zkoracle/zkoracle/model"
)

// Options configures post-training quantization of a float network.
type Options struct {
	Name, Doc string
	// Calibration samples, each flattened in the input's shape.
	Calibration [][]float64
	// Percentile, if in (50, 100), clips each activation's calibrated range
	// to that percentile of its values (and the mirror one below) instead
	// of taking min and max: outliers then saturate, the rest gets finer
	// steps.
	Percentile float64
	// Precision and ShiftAlign shape each requantize multiplier M/2^s:
	// M has at least Precision bits, s is a multiple of ShiftAlign
	// (defaults 16 and 8).
	Precision, ShiftAlign int
}

// LayerReport is what quantization chose for one activation.
type LayerReport struct {
	Tensor    string  `json:"tensor"` // the ONNX tensor
	Op        string  `json:"op"`     // the IR op that makes it
	Min       float64 `json:"min"`    // calibrated range (after percentile clipping)
	Max       float64 `json:"max"`
	Scale     float64 `json:"scale"`
	ZeroPoint int64   `json:"zero_point"`
	Clipped   int     `json:"clipped"` // calibration values outside the int8 range
	Values    int     `json:"values"`  // calibration values seen
}

// Report is the outcome of an import: per-layer quantization and, once
// measured, the quantized model's top-1 agreement with the float one.
type Report struct {
	Layers    []LayerReport `json:"layers"`
	Agreement float64       `json:"top1_agreement"`
	HeldOut   int           `json:"held_out_samples"`
}

// AgreementWarning is the top-1 agreement under which an import warns.
const AgreementWarning = 0.99

// stats are calibrated activation ranges.
type stats struct {
	lo, hi  map[string]float64
	samples map[string][]float64 // for percentiles and clip counts
}

const maxSamples = 1 << 18

func calibrate(net *Net, data [][]float64) (*stats, error) {
	if len(data) == 0 {
		return nil, errors.New("calibration needs at least one sample")
	}
	s := &stats{lo: map[string]float64{}, hi: map[string]float64{}, samples: map[string][]float64{}}
	for i, x := range data {
		v, err := net.Run(x)
		if err != nil {
			return nil, fmt.Errorf("calibration sample %d: %w", i, err)
		}
		for name, vals := range v {
			lo, hi := math.Inf(1), math.Inf(-1)
			if l, ok := s.lo[name]; ok {
				lo, hi = l, s.hi[name]
			}
			// Keep an even spread of values: every k-th of each sample.
			k := max(1, len(vals)*len(data)/maxSamples)
			for j, t := range vals {
				lo, hi = min(lo, t), max(hi, t)
				if j%k == 0 {
					s.samples[name] = append(s.samples[name], t)
				}
			}
			s.lo[name], s.hi[name] = lo, hi
		}
	}
	return s, nil
}

// rangeOf returns a tensor's calibrated range, clipped to the percentile.
func (s *stats) rangeOf(name string, pct float64) (float64, float64) {
	lo, hi := s.lo[name], s.hi[name]
	if pct > 50 && pct < 100 {
		v := slices.Clone(s.samples[name])
		slices.Sort(v)
		at := func(p float64) float64 { return v[min(len(v)-1, int(p/100*float64(len(v))))] }
		lo, hi = at(100-pct), at(pct)
	}
	return lo, hi
}

// clipped counts the calibration values of a tensor outside what int8
// under (scale, zp) clamped to [qlo, qhi] represents (half a step of slack).
func (s *stats) clipped(name string, scale float64, zp, qlo, qhi int64) (int, int) {
	lo, hi := scale*(float64(qlo-zp)-0.5), scale*(float64(qhi-zp)+0.5)
	n := 0
	for _, v := range s.samples[name] {
		if v < lo || v > hi {
			n++
		}
	}
	return n, len(s.samples[name])
}

// emitter builds the IR, one ONNX tensor at a time.
type emitter struct {
	m                *model.Model
	t                map[string]model.Tensor // IR tensor standing for each ONNX tensor
	precision, align int
	report           *Report
}

func newEmitter(name, doc string, precision, align int) *emitter {
	return &emitter{m: &model.Model{Format: model.Format, Version: model.Version, Name: name, Doc: doc},
		t: map[string]model.Tensor{}, precision: cmp.Or(precision, 16), align: cmp.Or(align, 8), report: &Report{}}
}

func (e *emitter) add(op model.Op, onnxName string) model.Tensor {
	e.m.Ops = append(e.m.Ops, op)
	e.t[onnxName] = op.Out
	return op.Out
}

// act describes an int8 activation: its quantization and clamp.
type act struct {
	scale    float64
	zp       int64
	qlo, qhi int64
}

// clamp narrows a's clamp to the real range [lo, hi] (infinite bounds
// leave the int8 range).
func (a act) clamp(lo, hi float64) act {
	a.qlo = max(a.qlo, int64(model.QuantizeValue(lo, a.scale, a.zp)))
	a.qhi = min(a.qhi, int64(model.QuantizeValue(hi, a.scale, a.zp)))
	return a
}

// actFor picks int8 parameters for a real range [lo, hi] cut to the
// clamp of a fused ReLU or Clip f (nil: none), whose bounds become the
// requantize's clamp.
func actFor(lo, hi float64, f *layer) act {
	clipLo, clipHi := math.Inf(-1), math.Inf(1)
	if f != nil {
		clipLo, clipHi = f.lo, f.hi
	}
	s, zp := model.AffineInt8(max(lo, clipLo), min(hi, clipHi))
	return act{scale: s, zp: zp, qlo: -128, qhi: 127}.clamp(clipLo, clipHi)
}

// linear emits a dense or conv2d layer with int8 weights wq (per-channel
// scales ws) and int32 bias, then, unless out is nil, a requantize to the
// int8 activation out.
func (e *emitter) linear(kind model.Kind, in model.Tensor, l *layer, wq model.Int8s, ws []float64, bias []int32, accName, outName string, out *act) model.Tensor {
	acc := model.Tensor{Name: accName, DType: model.Int32, Shape: l.shape, Scale: in.Scale * ws[0]}
	accScales := make([]float64, len(ws))
	for c := range ws {
		accScales[c] = in.Scale * ws[c]
	}
	if !allEqual(accScales) {
		acc.ChannelScales = accScales
	}
	op := model.Op{Kind: kind, In: []string{in.Name}, Out: acc, Weights: wq, Bias: bias}
	if kind == model.Conv2D {
		op.Kernel, op.Stride, op.Padding = l.k, l.stride, l.pad
	}
	e.add(op, accName)
	if out == nil {
		e.t[outName] = acc
		return acc
	}
	mult, shift := make([]int64, len(ws)), make([]int, len(ws))
	for c := range ws {
		mult[c], shift[c] = model.Rescale(accScales[c]/out.scale, e.precision, e.align)
	}
	if allEqual(mult) && allEqual(shift) {
		mult, shift = mult[:1], shift[:1]
	}
	return e.requantize(acc, outName, mult, shift, *out)
}

func (e *emitter) requantize(in model.Tensor, outName string, mult []int64, shift []int, a act) model.Tensor {
	lo, hi := a.qlo, a.qhi
	shape := slices.Clone(in.Shape)
	return e.add(model.Op{Kind: model.Requantize, In: []string{in.Name},
		Out:        model.Tensor{Name: outName, DType: model.Int8, Shape: shape, Scale: a.scale, ZeroPoint: a.zp},
		Multiplier: mult, Shift: shift, Min: &lo, Max: &hi}, outName)
}

// rescaleTo emits a requantize of in (any scale) to the activation a.
func (e *emitter) rescaleTo(in model.Tensor, outName string, a act) model.Tensor {
	m, s := model.Rescale(in.Scale/a.scale, e.precision, e.align)
	return e.requantize(in, outName, []int64{m}, []int{s}, a)
}

// lookup emits a 256-entry table for f from in to the activation a.
func (e *emitter) lookup(in model.Tensor, outName, fn string, f func(float64) float64, a act) model.Tensor {
	table := make(model.Int8s, 256)
	for x := -128; x < 128; x++ {
		table[x+128] = model.QuantizeValue(f(in.Scale*float64(int64(x)-in.ZeroPoint)), a.scale, a.zp)
	}
	return e.add(model.Op{Kind: model.Lookup, In: []string{in.Name}, Fn: fn, Table: table,
		Out: model.Tensor{Name: outName, DType: model.Int8, Shape: slices.Clone(in.Shape), Scale: a.scale, ZeroPoint: a.zp}}, outName)
}

func (e *emitter) finish(output string) (*model.Model, error) {
	out, ok := e.t[output]
	if !ok {
		return nil, fmt.Errorf("the output %q was not produced", output)
	}
	e.m.Output = out.Name
	if err := e.m.Validate(); err != nil {
		return nil, fmt.Errorf("imported model: %w", err)
	}
	return e.m, nil
}

func allEqual[T comparable](v []T) bool {
	for _, x := range v {
		if x != v[0] {
			return false
		}
	}
	return true
}

var (
	sigmoidAct = act{scale: 1.0 / 255, zp: -128, qlo: -128, qhi: 127} // [0, 1]
	tanhAct    = act{scale: 2.0 / 255, zp: 0, qlo: -128, qhi: 127}    // [-1, 1]
)

// source supplies the quantization parameters: calibration (Quantize) or
// the Q/DQ nodes of a pre-quantized graph (ImportQDQ).
type source interface {
	// input is the input's quantization.
	input() act
	// act is the activation of tensor, made by a requantize (f is the ReLU
	// or Clip fused into it, or nil).
	act(tensor string, f *layer) act
	// fixed returns the quantization a pass-through op's output must have,
	// if the source prescribes one.
	fixed(tensor string) (act, bool)
	// weightScales returns each output channel's weight scale; last is the
	// layer making the model's output.
	weightScales(l *layer, last bool) ([]float64, error)
	// int32Output reports whether the output layer keeps its int32
	// accumulators instead of requantizing.
	int32Output() bool
	// report describes tensor's activation for the import report.
	report(tensor, op string, a act) LayerReport
}

// calibrated is the source of post-training quantization.
type calibrated struct {
	st        *stats
	pct       float64
	inputName string
}

func (c calibrated) input() act { return c.act(c.inputName, nil) }

func (c calibrated) act(tensor string, f *layer) act {
	lo, hi := c.st.rangeOf(tensor, c.pct)
	return actFor(lo, hi, f)
}

func (calibrated) fixed(string) (act, bool) { return act{}, false }

func (calibrated) weightScales(l *layer, last bool) ([]float64, error) {
	_, ws := model.QuantizeSymmetric(l.w, l.cout, last)
	return ws, nil
}

func (calibrated) int32Output() bool { return true }

func (c calibrated) report(tensor, op string, a act) LayerReport {
	lo, hi := c.st.rangeOf(tensor, c.pct)
	n, of := c.st.clipped(tensor, a.scale, a.zp, a.qlo, a.qhi)
	return LayerReport{Tensor: tensor, Op: op, Min: lo, Max: hi, Scale: a.scale, ZeroPoint: a.zp, Clipped: n, Values: of}
}

// Quantize turns a float network into an int8 model by post-training
// quantization on the calibration samples:
//
//   - weights: symmetric int8 per output channel; the layer that makes the
//     output keeps int32 accumulators with one scale (per-tensor weights),
//     so logits compare exactly;
//   - biases: int32 at the accumulator's scale;
//   - activations: asymmetric int8 over the calibrated range (min/max, or
//     the percentile), widened to contain zero; a ReLU or Clip after a
//     dense, conv, average pool or add is fused into its requantize as the
//     clamp;
//   - average pooling sums exactly and requantizes; Sigmoid and Tanh are
//     256-entry tables onto fixed output ranges.
func Quantize(net *Net, o Options) (*model.Model, *Report, error) {
	st, err := calibrate(net, o.Calibration)
	if err != nil {
		return nil, nil, err
	}
	return quantize(net, calibrated{st: st, pct: o.Percentile, inputName: net.Input}, newEmitter(o.Name, o.Doc, o.Precision, o.ShiftAlign))
}

// quantize emits the IR of net with the parameters of src.
func quantize(net *Net, src source, e *emitter) (*model.Model, *Report, error) {
	record := func(tensor, op string, a act) { e.report.Layers = append(e.report.Layers, src.report(tensor, op, a)) }
	inAct := src.input()
	e.m.Input = model.Tensor{Name: net.Input, DType: model.Int8, Shape: net.Shape, Scale: inAct.scale, ZeroPoint: inAct.zp}
	e.t[net.Input] = e.m.Input
	record(net.Input, "input", inAct)

	readers := map[string]int{}
	for _, l := range net.layers {
		for _, in := range l.in {
			readers[in]++
		}
	}
	// fusedAct returns the ReLU or Clip right after layer i, if it is the
	// only reader of the layer's output.
	fusedAct := func(i int) *layer {
		l := net.layers[i]
		if i+1 < len(net.layers) && l.out != net.Output && readers[l.out] == 1 {
			if n := net.layers[i+1]; (n.kind == lRelu || n.kind == lClip) && n.in[0] == l.out {
				return n
			}
		}
		return nil
	}
	// passThrough emits an op that keeps its input's quantization, then a
	// rescale if the source wants another one for its output.
	passThrough := func(op model.Op, in model.Tensor, out string, shape []int) {
		op.Out = model.Tensor{Name: out, DType: in.DType, Shape: shape, Scale: in.Scale, ZeroPoint: in.ZeroPoint}
		if a, ok := src.fixed(out); ok && (a.scale != in.Scale || a.zp != in.ZeroPoint) {
			op.Out.Name = out + ":pre"
			t := e.add(op, out+":pre")
			e.rescaleTo(t, out, a)
			return
		}
		e.add(op, out)
	}
	for i := 0; i < len(net.layers); i++ {
		l := net.layers[i]
		in, ok := e.t[l.in[0]]
		if !ok {
			return nil, nil, fmt.Errorf("layer %s: input %q not quantized", l.node.Name, l.in[0])
		}
		where := func(err error) error { return fmt.Errorf("onnx: %s %s: %w", l.node.Op, l.node.Where(), err) }
		switch l.kind {
		case lConv, lDense:
			f := fusedAct(i)
			outName := l.out
			if f != nil {
				outName, i = f.out, i+1
			}
			last := outName == net.Output
			ws, err := src.weightScales(l, last && src.int32Output())
			if err != nil {
				return nil, nil, where(err)
			}
			wq, err := onGrid(l, ws)
			if err != nil {
				return nil, nil, where(err)
			}
			bias := make([]int32, l.cout)
			for c := range bias {
				b := math.Round(l.b[c] / (in.Scale * ws[c]))
				if math.Abs(b) > math.MaxInt32 {
					return nil, nil, where(fmt.Errorf("bias %g does not fit int32 at scale %g", l.b[c], in.Scale*ws[c]))
				}
				bias[c] = int32(b)
			}
			kind := model.Dense
			if l.kind == lConv {
				kind = model.Conv2D
			}
			var a *act
			if !last || !src.int32Output() {
				v := src.act(outName, f)
				a = &v
			}
			accName := l.out
			if a != nil {
				accName += ":acc"
			}
			t := e.linear(kind, in, l, wq, ws, bias, accName, outName, a)
			if a != nil {
				record(outName, string(kind)+"+requantize", *a)
			} else {
				record(outName, string(kind)+" (int32 output)", act{scale: t.Scale, qlo: math.MinInt32, qhi: math.MaxInt32})
			}
		case lRelu:
			passThrough(model.Op{Kind: model.ReLU, In: []string{in.Name}}, in, l.out, l.shape)
		case lClip:
			a := act{scale: in.Scale, zp: in.ZeroPoint, qlo: -128, qhi: 127}.clamp(l.lo, l.hi)
			if a.qlo == -128 && a.qhi == 127 { // the int8 range clamps already
				e.t[l.out] = in
				continue
			}
			e.requantize(in, l.out, []int64{1 << e.align}, []int{e.align}, a)
		case lMaxPool:
			passThrough(model.Op{Kind: model.MaxPool, In: []string{in.Name}, Kernel: l.k, Stride: l.stride}, in, l.out, l.shape)
		case lFlatten:
			passThrough(model.Op{Kind: model.Flatten, In: []string{in.Name}}, in, l.out, l.shape)
		case lAvgPool, lAdd:
			var sum model.Tensor
			if l.kind == lAvgPool {
				k2 := int64(l.k * l.k)
				sum = e.add(model.Op{Kind: model.AvgPool, In: []string{in.Name}, Kernel: l.k, Stride: l.stride,
					Out: model.Tensor{Name: l.out + ":sum", DType: model.Int32, Shape: l.shape, Scale: in.Scale / float64(k2), ZeroPoint: k2 * in.ZeroPoint}}, l.out+":sum")
			} else {
				b, ok := e.t[l.in[1]]
				if !ok {
					return nil, nil, where(fmt.Errorf("input %q not quantized", l.in[1]))
				}
				// out = c0(a-za) + c1(b-zb) at scale max(sa,sb)/2^8.
				accScale := max(in.Scale, b.Scale) / 256
				c0, c1 := int64(math.Round(in.Scale/accScale)), int64(math.Round(b.Scale/accScale))
				sum = e.add(model.Op{Kind: model.Add, In: []string{in.Name, b.Name}, Coeffs: []int64{c0, c1},
					Out: model.Tensor{Name: l.out + ":sum", DType: model.Int32, Shape: l.shape, Scale: accScale}}, l.out+":sum")
			}
			f := fusedAct(i)
			outName := l.out
			if f != nil {
				outName, i = f.out, i+1
			}
			a := src.act(outName, f)
			e.rescaleTo(sum, outName, a)
			record(outName, layerNames[l.kind]+"+requantize", a)
		case lSigmoid, lTanh:
			a, fn, f := sigmoidAct, "sigmoid", func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
			if l.kind == lTanh {
				a, fn, f = tanhAct, "tanh", math.Tanh
			}
			if fa, ok := src.fixed(l.out); ok {
				a = fa
			}
			e.lookup(in, l.out, fn, f, a)
			record(l.out, "lookup "+fn, a)
		}
	}
	m, err := e.finish(net.Output)
	if err != nil {
		return nil, nil, err
	}
	return m, e.report, nil
}

// onGrid quantizes a layer's float weights with the channel scales ws.
func onGrid(l *layer, ws []float64) (model.Int8s, error) {
	per := len(l.w) / l.cout
	q := make(model.Int8s, len(l.w))
	for c := range l.cout {
		for j, v := range l.w[c*per : (c+1)*per] {
			r := math.Round(v / ws[c])
			if r < -128 || r > 127 {
				return nil, fmt.Errorf("weight %g is outside int8 at scale %g", v, ws[c])
			}
			q[c*per+j] = int8(r)
		}
	}
	return q, nil
}

// QuantizeInput maps a float sample to the model's int8 input.
func QuantizeInput(m *model.Model, x []float64) []int8 {
	q := make([]int8, len(x))
	for i, v := range x {
		q[i] = model.QuantizeValue(v, m.Input.Scale, m.Input.ZeroPoint)
	}
	return q
}

// Dequantize returns the real values of a model's output.
func Dequantize(m *model.Model, out []int64) []float64 {
	t := m.Info().Tensors[m.Output]
	r := make([]float64, len(out))
	for i, q := range out {
		s := t.Scale
		if len(t.ChannelScales) == len(out) {
			s = t.ChannelScales[i]
		}
		r[i] = s * float64(q-t.ZeroPoint)
	}
	return r
}

// Agreement runs the float network and the quantized model on samples and
// returns the fraction with the same top-1 class.
func Agreement(net *Net, m *model.Model, samples [][]float64) (float64, error) {
	same := 0
	for i, x := range samples {
		f, err := net.Predict(x)
		if err != nil {
			return 0, err
		}
		tr, err := m.Run(QuantizeInput(m, x))
		if err != nil {
			return 0, fmt.Errorf("sample %d: %w", i, err)
		}
		if model.Argmax(f) == model.Argmax(tr.Output) {
			same++
		}
	}
	return float64(same) / float64(max(1, len(samples))), nil
}
