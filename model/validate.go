package model

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Interval is a closed integer range [Lo, Hi].
type Interval struct{ Lo, Hi int64 }

// Info is what Validate derives from a model.
type Info struct {
	Tensors map[string]Tensor
	// Bounds holds, per tensor and per element, a range no input can leave:
	// interval analysis over every int8 input. The circuits size their range
	// checks from these.
	Bounds map[string][]Interval
}

// Limits on parameters, chosen so that every intermediate fits in int64 and,
// in the circuits, far below the BN254 field modulus.
const (
	MaxMultiplier = 1<<31 - 1
	MaxShift      = 62
	maxDim        = 1 << 16
	maxElements   = 1 << 20
	maxKernel     = 1 << 8
	// MaxWork bounds a model's multiply-accumulates and window reads, so
	// that neither Validate nor Run can be made to spin (the mnist-cnn fixture is under 2^18).
	MaxWork = 1 << 24
)

var dtypeRange = map[DType]Interval{
	Int8:  {math.MinInt8, math.MaxInt8},
	Int32: {math.MinInt32, math.MaxInt32},
}

// Validate checks the model and derives its Info. Decode calls it; call it
// again after building or changing a model in code.
func (m *Model) Validate() error {
	m.info = nil
	if m.Format != Format {
		return fmt.Errorf("format %q, want %q", m.Format, Format)
	}
	if m.Version != Version {
		return fmt.Errorf("unsupported version %d (this build reads version %d)", m.Version, Version)
	}
	if m.Input.DType != Int8 {
		return fmt.Errorf("input %q: dtype %q, want int8", m.Input.Name, m.Input.DType)
	}
	info := &Info{Tensors: map[string]Tensor{}, Bounds: map[string][]Interval{}}
	if err := checkTensor(m.Input); err != nil {
		return fmt.Errorf("input: %w", err)
	}
	info.Tensors[m.Input.Name] = m.Input
	full := make([]Interval, m.Input.Size())
	for i := range full {
		full[i] = dtypeRange[Int8]
	}
	info.Bounds[m.Input.Name] = full
	if len(m.Ops) == 0 {
		return errors.New("model has no ops")
	}
	work := 0
	for i := range m.Ops {
		op := &m.Ops[i]
		err := validateOp(op, info)
		if err == nil {
			if work += opWork(op, info); work > MaxWork {
				err = fmt.Errorf("model exceeds %d multiply-accumulates", MaxWork)
			}
		}
		if err != nil {
			return fmt.Errorf("op %d (%s %q): %w", i, op.Kind, op.Out.Name, err)
		}
	}
	if _, ok := info.Tensors[m.Output]; !ok {
		return fmt.Errorf("output %q is not a tensor of the model", m.Output)
	}
	m.info = info
	return nil
}

func checkTensor(t Tensor) error {
	if t.Name == "" {
		return errors.New("tensor has no name")
	}
	if _, ok := dtypeRange[t.DType]; !ok {
		return fmt.Errorf("tensor %q: unknown dtype %q", t.Name, t.DType)
	}
	if len(t.Shape) == 0 || len(t.Shape) > 4 {
		return fmt.Errorf("tensor %q: rank %d, want 1 to 4", t.Name, len(t.Shape))
	}
	n := 1
	for _, d := range t.Shape {
		if d <= 0 || d > maxDim {
			return fmt.Errorf("tensor %q: bad dimension %d in shape %v", t.Name, d, t.Shape)
		}
		n *= d
		if n > maxElements {
			return fmt.Errorf("tensor %q: more than %d elements", t.Name, maxElements)
		}
	}
	if !(t.Scale > 0) || math.IsInf(t.Scale, 0) {
		return fmt.Errorf("tensor %q: scale %v must be positive and finite", t.Name, t.Scale)
	}
	if t.ChannelScales != nil && len(t.ChannelScales) != t.Shape[0] {
		return fmt.Errorf("tensor %q: %d channel scales for %d channels", t.Name, len(t.ChannelScales), t.Shape[0])
	}
	for _, s := range t.ChannelScales {
		if !(s > 0) || math.IsInf(s, 0) {
			return fmt.Errorf("tensor %q: channel scale %v must be positive and finite", t.Name, s)
		}
	}
	if r := dtypeRange[t.DType]; t.ZeroPoint < r.Lo || t.ZeroPoint > r.Hi {
		return fmt.Errorf("tensor %q: zero point %d outside %s", t.Name, t.ZeroPoint, t.DType)
	}
	return nil
}

// arity is the number of inputs each op takes.
var arity = map[Kind]int{Dense: 1, Conv2D: 1, Requantize: 1, ReLU: 1, MaxPool: 1, AvgPool: 1, Add: 2, Flatten: 1, Lookup: 1}

func validateOp(op *Op, info *Info) error {
	n, ok := arity[op.Kind]
	if !ok {
		return fmt.Errorf("unknown op kind %q", op.Kind)
	}
	if len(op.In) != n {
		return fmt.Errorf("takes %d inputs, got %d", n, len(op.In))
	}
	in := make([]Tensor, n)
	for j, name := range op.In {
		t, ok := info.Tensors[name]
		if !ok {
			return fmt.Errorf("input %q is not defined before this op", name)
		}
		in[j] = t
	}
	if err := checkTensor(op.Out); err != nil {
		return err
	}
	if _, dup := info.Tensors[op.Out.Name]; dup {
		return fmt.Errorf("tensor %q is defined twice", op.Out.Name)
	}
	if err := checkParams(op, in); err != nil {
		return err
	}
	dtype, shape, zp, err := infer(op, in)
	if err != nil {
		return err
	}
	if op.Out.DType != dtype {
		return fmt.Errorf("declared dtype %s, want %s", op.Out.DType, dtype)
	}
	if !slices.Equal(op.Out.Shape, shape) {
		return fmt.Errorf("declared shape %v, inferred %v", op.Out.Shape, shape)
	}
	if zp != nil && op.Out.ZeroPoint != *zp {
		return fmt.Errorf("declared zero point %d, want %d", op.Out.ZeroPoint, *zp)
	}
	inB := make([][]Interval, n)
	for j, name := range op.In {
		inB[j] = info.Bounds[name]
	}
	if w := opWork(op, info); w > MaxWork {
		return fmt.Errorf("op needs %d multiply-accumulates, more than %d", w, MaxWork)
	}
	if op.Kind == Requantize {
		if err := checkRescale(op, in[0], inB[0]); err != nil {
			return err
		}
	}
	b := bounds(op, in, inB)
	r := dtypeRange[dtype]
	for k, iv := range b {
		if iv.Lo < r.Lo || iv.Hi > r.Hi {
			return fmt.Errorf("element %d may reach [%d, %d], outside %s", k, iv.Lo, iv.Hi, dtype)
		}
	}
	info.Tensors[op.Out.Name] = op.Out
	info.Bounds[op.Out.Name] = b
	return nil
}

// checkParams rejects parameters that do not belong to the op or have the
// wrong length, before shapes are inferred from them.
func checkParams(op *Op, in []Tensor) error {
	has := map[string]bool{
		"weights": op.Weights != nil, "bias": op.Bias != nil, "kernel": op.Kernel != 0,
		"stride": op.Stride != 0, "padding": op.Padding != 0, "multiplier": op.Multiplier != nil,
		"shift": op.Shift != nil, "min": op.Min != nil, "max": op.Max != nil,
		"coeffs": op.Coeffs != nil, "table": op.Table != nil, "fn": op.Fn != "",
	}
	allowed := map[Kind][]string{
		Dense:      {"weights", "bias"},
		Conv2D:     {"weights", "bias", "kernel", "stride", "padding"},
		Requantize: {"multiplier", "shift", "min", "max"},
		MaxPool:    {"kernel", "stride"},
		AvgPool:    {"kernel", "stride"},
		Add:        {"coeffs"},
		Lookup:     {"table", "fn"},
	}[op.Kind]
	for name, set := range has {
		if set && !slices.Contains(allowed, name) {
			return fmt.Errorf("parameter %q does not apply to %s", name, op.Kind)
		}
	}
	for _, v := range []int{op.Kernel, op.Stride, op.Padding} {
		if v < 0 || v > maxKernel {
			return fmt.Errorf("kernel, stride and padding must lie in [0, %d]", maxKernel)
		}
	}
	switch op.Kind {
	case Requantize:
		if op.Min == nil || op.Max == nil {
			return errors.New("requantize needs min and max")
		}
		if *op.Min < math.MinInt8 || *op.Max > math.MaxInt8 || *op.Min > *op.Max {
			return fmt.Errorf("clamp [%d, %d] is not a sub-range of [-128, 127]", *op.Min, *op.Max)
		}
		if len(op.Multiplier) == 0 || len(op.Multiplier) != len(op.Shift) {
			return fmt.Errorf("%d multipliers and %d shifts, want equal non-zero counts", len(op.Multiplier), len(op.Shift))
		}
		if c := len(op.Multiplier); c != 1 && c != in[0].Shape[0] {
			return fmt.Errorf("%d multipliers, want 1 or %d (one per channel)", c, in[0].Shape[0])
		}
		for c := range op.Multiplier {
			if op.Multiplier[c] < 1 || op.Multiplier[c] > MaxMultiplier {
				return fmt.Errorf("multiplier %d out of [1, 2^31)", op.Multiplier[c])
			}
			if op.Shift[c] < 1 || op.Shift[c] > MaxShift {
				return fmt.Errorf("shift %d out of [1, %d]", op.Shift[c], MaxShift)
			}
		}
	case Add:
		if len(op.Coeffs) != 2 {
			return fmt.Errorf("add needs 2 coefficients, got %d", len(op.Coeffs))
		}
		for _, c := range op.Coeffs {
			if c < -MaxMultiplier || c > MaxMultiplier {
				return fmt.Errorf("coefficient %d out of range", c)
			}
		}
	case Lookup:
		if len(op.Table) != 256 {
			return fmt.Errorf("table has %d entries, want 256", len(op.Table))
		}
	}
	return nil
}

// infer returns the output dtype and shape of op, and the output zero point
// when the op fixes it (nil when the file may choose).
func infer(op *Op, in []Tensor) (DType, []int, *int64, error) {
	x := in[0]
	zero := int64(0)
	switch op.Kind {
	case Dense:
		if len(x.Shape) != 1 {
			return "", nil, nil, fmt.Errorf("input shape %v, want 1-D (flatten first)", x.Shape)
		}
		k, nOut := x.Shape[0], len(op.Bias)
		if nOut == 0 || len(op.Weights) != nOut*k {
			return "", nil, nil, fmt.Errorf("%d weights and %d biases do not make a [N][%d] layer", len(op.Weights), nOut, k)
		}
		return Int32, []int{nOut}, &zero, nil
	case Conv2D:
		if len(x.Shape) != 3 {
			return "", nil, nil, fmt.Errorf("input shape %v, want [C,H,W]", x.Shape)
		}
		k, s, p := op.Kernel, op.stride(), op.Padding
		if k == 0 {
			return "", nil, nil, errors.New("conv2d needs a kernel size")
		}
		co := len(op.Bias)
		if co == 0 || len(op.Weights) != co*x.Shape[0]*k*k {
			return "", nil, nil, fmt.Errorf("%d weights and %d biases do not make a [Co][%d][%d][%d] kernel", len(op.Weights), co, x.Shape[0], k, k)
		}
		if p >= k {
			return "", nil, nil, fmt.Errorf("padding %d must be smaller than the kernel %d", p, k)
		}
		ho, wo, err := window(x.Shape[1], x.Shape[2], k, s, p)
		if err != nil {
			return "", nil, nil, err
		}
		return Int32, []int{co, ho, wo}, &zero, nil
	case MaxPool, AvgPool:
		if len(x.Shape) != 3 {
			return "", nil, nil, fmt.Errorf("input shape %v, want [C,H,W]", x.Shape)
		}
		if op.Kernel == 0 {
			return "", nil, nil, fmt.Errorf("%s needs a kernel size", op.Kind)
		}
		ho, wo, err := window(x.Shape[1], x.Shape[2], op.Kernel, op.stride(), 0)
		if err != nil {
			return "", nil, nil, err
		}
		shape := []int{x.Shape[0], ho, wo}
		if op.Kind == MaxPool {
			zp := x.ZeroPoint
			return x.DType, shape, &zp, nil
		}
		zp := x.ZeroPoint * int64(op.Kernel*op.Kernel)
		return Int32, shape, &zp, nil
	case Requantize:
		return Int8, slices.Clone(x.Shape), nil, nil
	case ReLU:
		zp := x.ZeroPoint
		return x.DType, slices.Clone(x.Shape), &zp, nil
	case Add:
		if !slices.Equal(x.Shape, in[1].Shape) {
			return "", nil, nil, fmt.Errorf("operand shapes %v and %v differ", x.Shape, in[1].Shape)
		}
		return Int32, slices.Clone(x.Shape), &zero, nil
	case Flatten:
		zp := x.ZeroPoint
		return x.DType, []int{x.Size()}, &zp, nil
	case Lookup:
		if x.DType != Int8 {
			return "", nil, nil, fmt.Errorf("lookup input must be int8, got %s", x.DType)
		}
		return Int8, slices.Clone(x.Shape), nil, nil
	}
	return "", nil, nil, fmt.Errorf("unknown op kind %q", op.Kind)
}

func window(h, w, k, s, p int) (int, int, error) {
	if h+2*p < k || w+2*p < k {
		return 0, 0, fmt.Errorf("kernel %d larger than the padded input %dx%d", k, h+2*p, w+2*p)
	}
	return (h+2*p-k)/s + 1, (w+2*p-k)/s + 1, nil
}

// checkRescale proves |x-zx|*M + 2^(s-1) < 2^62 for every element, so the
// requantize product fits in int64 here and stays tiny next to the field
// modulus in the circuits.
func checkRescale(op *Op, x Tensor, b []Interval) error {
	per := len(b) / len(op.Multiplier)
	for i, iv := range b {
		c := i / per
		a := max(abs(iv.Lo-x.ZeroPoint), abs(iv.Hi-x.ZeroPoint))
		if a > (1<<62-1<<(op.Shift[c]-1))/op.Multiplier[c] {
			return fmt.Errorf("element %d: |x-zx| up to %d times multiplier %d overflows 2^62", i, a, op.Multiplier[c])
		}
	}
	return nil
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// opWork is the number of inner-loop steps op takes to run (shapes checked).
func opWork(op *Op, info *Info) int {
	n := op.Out.Size()
	switch op.Kind {
	case Dense:
		return len(op.Weights)
	case Conv2D:
		return n * info.Tensors[op.In[0]].Shape[0] * op.Kernel * op.Kernel
	case MaxPool, AvgPool:
		return n * op.Kernel * op.Kernel
	}
	return n
}
