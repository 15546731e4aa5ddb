package onnx_test

import (
	"math"
	"math/rand/v2"
	"testing"

	pb "github.com/advancedclimatesystems/gonnx/onnx"

	"github.com/zkoracle/zkoracle/model/onnx"
)

// qdqMLP builds x[1,8] -> Q/DQ (uint8) -> Gemm (int8 weights, one scale,
// int32 bias) -> Relu -> Q/DQ (uint8) -> Gemm (int8 weights per channel)
// -> Q/DQ (int8): the uint8 and per-tensor cases the LeNet export lacks.
// It returns the file and a float emulation of the QDQ semantics.
func qdqMLP(t *testing.T) ([]byte, func([]float64) []float64) {
	b := newBuilder(1, 8)
	rng := rand.New(rand.NewPCG(9, 10))
	scalar := func(name string, typ pb.TensorProto_DataType, f float64, i int64) string {
		tp := &pb.TensorProto{Name: name, DataType: int32(typ)}
		if typ == pb.TensorProto_FLOAT {
			tp.FloatData = []float32{float32(f)}
		} else {
			tp.Int32Data = []int32{int32(i)}
		}
		b.g.Initializer = append(b.g.Initializer, tp)
		return name
	}
	ints8 := func(name string, n int, dims ...int64) []int64 {
		v := make([]int32, n)
		out := make([]int64, n)
		for i := range v {
			v[i] = int32(rng.IntN(255) - 127)
			out[i] = int64(v[i])
		}
		b.g.Initializer = append(b.g.Initializer, &pb.TensorProto{Name: name, Dims: dims, DataType: int32(pb.TensorProto_INT8), Int32Data: v})
		return out
	}
	bias32 := func(name string, n int) []int64 {
		v := make([]int32, n)
		out := make([]int64, n)
		for i := range v {
			v[i] = int32(rng.IntN(2001) - 1000)
			out[i] = int64(v[i])
		}
		b.g.Initializer = append(b.g.Initializer, &pb.TensorProto{Name: name, Dims: []int64{int64(n)}, DataType: int32(pb.TensorProto_INT32), Int32Data: v})
		return out
	}
	floats := func(name string, v ...float64) {
		f := make([]float32, len(v))
		for i, x := range v {
			f[i] = float32(x)
		}
		b.g.Initializer = append(b.g.Initializer, &pb.TensorProto{Name: name, Dims: []int64{int64(len(v))}, DataType: int32(pb.TensorProto_FLOAT), FloatData: f})
	}
	qdq := func(x, name string, s float64, zp int64, typ pb.TensorProto_DataType) string {
		sc, z := scalar(name+"_s", pb.TensorProto_FLOAT, s, 0), scalar(name+"_z", typ, 0, zp)
		q := b.node("QuantizeLinear", []string{x, sc, z}, name+"_q")
		return b.node("DequantizeLinear", []string{q, sc, z}, name+"_dq")
	}
	const sIn, s1, s2 = 1.0 / 255, 0.05, 0.1
	x := qdq("x", "in", sIn, 0, pb.TensorProto_UINT8)
	w1 := ints8("w1q", 6*8, 6, 8)
	sw1 := 0.01
	scalar("w1_s", pb.TensorProto_FLOAT, sw1, 0)
	scalar("w1_z", pb.TensorProto_INT8, 0, 0)
	b.node("DequantizeLinear", []string{"w1q", "w1_s", "w1_z"}, "w1")
	b1 := bias32("b1q", 6)
	floats("b1_s", sIn*sw1, sIn*sw1, sIn*sw1, sIn*sw1, sIn*sw1, sIn*sw1)
	b.g.Initializer = append(b.g.Initializer, &pb.TensorProto{Name: "b1_z", Dims: []int64{6}, DataType: int32(pb.TensorProto_INT32), Int32Data: make([]int32, 6)})
	b.node("DequantizeLinear", []string{"b1q", "b1_s", "b1_z"}, "b1", one("axis", 0))
	h := b.node("Gemm", []string{x, "w1", "b1"}, "h", one("transB", 1))
	r := b.node("Relu", []string{h}, "r")
	hq := qdq(r, "hid", s1, 3, pb.TensorProto_UINT8)
	w2 := ints8("w2q", 3*6, 3, 6)
	sw2 := []float64{0.02, 0.015, 0.03}
	floats("w2_s", sw2...)
	b.g.Initializer = append(b.g.Initializer, &pb.TensorProto{Name: "w2_z", Dims: []int64{3}, DataType: int32(pb.TensorProto_INT8), Int32Data: make([]int32, 3)})
	b.node("DequantizeLinear", []string{"w2q", "w2_s", "w2_z"}, "w2", one("axis", 0))
	y := b.node("Gemm", []string{hq, "w2"}, "y", one("transB", 1))
	out := qdq(y, "out", s2, -5, pb.TensorProto_INT8)
	data := b.bytes(t, out, 1, 3)

	quant := func(v, s float64, zp, lo, hi int64) float64 { // onnxruntime: round half to even, saturate
		q := math.RoundToEven(v/s) + float64(zp)
		return s * (min(max(q, float64(lo)), float64(hi)) - float64(zp))
	}
	emulate := func(in []float64) []float64 {
		xs := make([]float64, 8)
		for i, v := range in {
			xs[i] = quant(v, sIn, 0, 0, 255)
		}
		hid := make([]float64, 6)
		for j := range hid {
			acc := sIn * sw1 * float64(b1[j])
			for i := range 8 {
				acc += sw1 * float64(w1[j*8+i]) * xs[i]
			}
			hid[j] = quant(max(acc, 0), s1, 3, 0, 255)
		}
		o := make([]float64, 3)
		for k := range o {
			acc := 0.0
			for j := range 6 {
				acc += sw2[k] * float64(w2[k*6+j]) * hid[j]
			}
			o[k] = quant(acc, s2, -5, -128, 127)
		}
		return o
	}
	return data, emulate
}

// TestQDQUint8PerTensor: uint8 activations, one weight scale per tensor,
// an explicit Relu and an output without bias import and compute what the
// QDQ semantics say, within one output step.
func TestQDQUint8PerTensor(t *testing.T) {
	data, emulate := qdqMLP(t)
	g, err := onnx.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	m, _, _, err := onnx.ImportQDQ(g, "qdq-mlp", "")
	if err != nil {
		t.Fatal(err)
	}
	if m.Input.ZeroPoint != -128 {
		t.Errorf("uint8 input zero point 0 should be int8 -128, got %d", m.Input.ZeroPoint)
	}
	rng := rand.New(rand.NewPCG(11, 12))
	within, total := 0, 0
	for range 300 {
		x := make([]float64, 8)
		for i := range x {
			x[i] = rng.Float64()
		}
		tr, err := m.Run(onnx.QuantizeInput(m, x))
		if err != nil {
			t.Fatal(err)
		}
		got, want := onnx.Dequantize(m, tr.Output), emulate(x)
		for k := range got {
			if math.Abs(got[k]-want[k]) <= 0.1*1.0001 {
				within++
			}
			total++
		}
	}
	t.Logf("%d/%d outputs within one step of the QDQ emulation", within, total)
	if within < total*99/100 {
		t.Errorf("%d/%d within one step", within, total)
	}
}
