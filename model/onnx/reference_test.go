package onnx_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx"
	pb "github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
	"gorgonia.org/tensor"

	"github.com/zkoracle/zkoracle/model/onnx"
)

// A small ONNX builder for synthetic graphs.

type builder struct {
	g   *pb.GraphProto
	rng *rand.Rand
}

func newBuilder(inShape ...int64) *builder {
	return &builder{g: &pb.GraphProto{Name: "synthetic", Input: []*pb.ValueInfoProto{valueInfo("x", inShape...)}},
		rng: rand.New(rand.NewPCG(1, 2))}
}

func valueInfo(name string, dims ...int64) *pb.ValueInfoProto {
	shape := &pb.TensorShapeProto{}
	for _, d := range dims {
		shape.Dim = append(shape.Dim, &pb.TensorShapeProto_Dimension{Value: &pb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
	}
	return &pb.ValueInfoProto{Name: name, Type: &pb.TypeProto{Value: &pb.TypeProto_TensorType{TensorType: &pb.TypeProto_Tensor{ElemType: int32(pb.TensorProto_FLOAT), Shape: shape}}}}
}

// weight adds a random float initializer (scaled by s, plus off).
func (b *builder) weight(name string, s, off float64, dims ...int64) string {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(off + s*(2*b.rng.Float64()-1))
	}
	b.g.Initializer = append(b.g.Initializer, &pb.TensorProto{Name: name, Dims: dims, DataType: int32(pb.TensorProto_FLOAT), FloatData: v})
	return name
}

func (b *builder) node(op string, in []string, out string, attrs ...*pb.AttributeProto) string {
	b.g.Node = append(b.g.Node, &pb.NodeProto{OpType: op, Name: op + "_" + out, Input: in, Output: []string{out}, Attribute: attrs})
	return out
}

func ints(name string, v ...int64) *pb.AttributeProto {
	return &pb.AttributeProto{Name: name, Type: pb.AttributeProto_INTS, Ints: v}
}

func one(name string, v int64) *pb.AttributeProto {
	return &pb.AttributeProto{Name: name, Type: pb.AttributeProto_INT, I: v}
}

func (b *builder) bytes(t testing.TB, out string, outShape ...int64) []byte {
	b.g.Output = []*pb.ValueInfoProto{valueInfo(out, outShape...)}
	mp := &pb.ModelProto{IrVersion: 7, ProducerName: "zkoracle-test", OpsetImport: []*pb.OperatorSetIdProto{{Version: 13}}, Graph: b.g}
	data, err := proto.Marshal(mp)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// lower parses and lowers a float model.
func lower(t testing.TB, data []byte) *onnx.Net {
	t.Helper()
	g, err := onnx.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	net, err := onnx.Lower(g)
	if err != nil {
		t.Fatal(err)
	}
	return net
}

// gonnxRun runs a model in gonnx, the independent float runtime.
func gonnxRun(t testing.TB, data []byte, x []float64, shape ...int) []float64 {
	m, err := gonnx.NewModelFromBytes(data)
	if err != nil {
		t.Fatalf("gonnx: %v", err)
	}
	in := make([]float32, len(x))
	for i, v := range x {
		in[i] = float32(v)
	}
	out, err := m.Run(gonnx.Tensors{m.InputNames()[0]: tensor.New(tensor.WithShape(shape...), tensor.WithBacking(in))})
	if err != nil {
		t.Fatalf("gonnx run: %v", err)
	}
	res := out[m.OutputNames()[0]].Data().([]float32)
	r := make([]float64, len(res))
	for i, v := range res {
		r[i] = float64(v)
	}
	return r
}

func randomInputs(n, size int, rng *rand.Rand) [][]float64 {
	out := make([][]float64, n)
	for i := range out {
		out[i] = make([]float64, size)
		for j := range out[i] {
			out[i][j] = rng.Float64()
		}
	}
	return out
}

// checkAgainstGonnx imports data, checks the float network against gonnx
// on inputs, and quantizes it.
func checkAgainstGonnx(t *testing.T, data []byte, inputs [][]float64, shape ...int) {
	t.Helper()
	net := lower(t, data)
	for i, x := range inputs {
		want := gonnxRun(t, data, x, shape...)
		got, err := net.Predict(x)
		if err != nil {
			t.Fatal(err)
		}
		for j := range want {
			if d := math.Abs(got[j] - want[j]); d > 1e-4*(1+math.Abs(want[j])) {
				t.Fatalf("input %d output %d: zkoracle %g, gonnx %g", i, j, got[j], want[j])
			}
		}
	}
	half := len(inputs) / 2
	m, _, err := onnx.Quantize(net, onnx.Options{Name: "synthetic", Calibration: inputs[:half]})
	if err != nil {
		t.Fatal(err)
	}
	agree, err := onnx.Agreement(net, m, inputs[half:])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("quantized top-1 agreement on %d held-out inputs: %.1f%%", len(inputs)-half, 100*agree)
	if agree < 0.9 {
		t.Errorf("agreement %.3f", agree)
	}
}

// gonnxSample returns a sample model shipped in the gonnx module.
func gonnxSample(t *testing.T, name string) []byte {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/advancedclimatesystems/gonnx").Output()
	if err != nil {
		t.Skipf("locating gonnx: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "sample_models", "onnx_models", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGonnxMLP: gonnx's own sample mlp.onnx (a PyTorch export) imports and
// computes what gonnx computes.
func TestGonnxMLP(t *testing.T) {
	data := gonnxSample(t, "mlp.onnx")
	rng := rand.New(rand.NewPCG(3, 4))
	checkAgainstGonnx(t, data, randomInputs(400, 3, rng), 1, 3)
}

// TestSyntheticAgainstGonnx: a conv net with every op gonnx also runs
// (padded strided Conv, Relu, Add of two branches, Sigmoid, Tanh, Flatten,
// Reshape, MatMul + Add, Gemm) matches gonnx. (gonnx v1.1.0 fails on 1x1
// kernels: "could not perform Unidirectional broadcast", so none here.)
func TestSyntheticAgainstGonnx(t *testing.T) {
	b := newBuilder(1, 2, 8, 8)
	c1 := b.node("Conv", []string{"x", b.weight("w1", 0.5, 0, 4, 2, 3, 3), b.weight("b1", 0.1, 0, 4)}, "c1",
		ints("kernel_shape", 3, 3), ints("pads", 1, 1, 1, 1), ints("strides", 2, 2))
	r1 := b.node("Relu", []string{c1}, "r1")
	c2 := b.node("Conv", []string{r1, b.weight("w2", 0.3, 0, 4, 4, 3, 3), b.weight("b2", 0.1, 0, 4)}, "c2", ints("kernel_shape", 3, 3), ints("pads", 1, 1, 1, 1))
	s := b.node("Add", []string{r1, c2}, "s")
	t1 := b.node("Tanh", []string{s}, "t1")
	f := b.node("Flatten", []string{t1}, "f", one("axis", 1))
	b.g.Initializer = append(b.g.Initializer, &pb.TensorProto{Name: "shape", Dims: []int64{2}, DataType: int32(pb.TensorProto_INT64), Int64Data: []int64{1, -1}})
	rs := b.node("Reshape", []string{f, "shape"}, "rs")
	mm := b.node("MatMul", []string{rs, b.weight("w3", 0.3, 0, 64, 8)}, "mm")
	a := b.node("Add", []string{mm, b.weight("b3", 0.1, 0, 8)}, "a")
	sg := b.node("Sigmoid", []string{a}, "sg")
	b.node("Gemm", []string{sg, b.weight("w4", 0.8, 0, 3, 8), b.weight("b4", 0.2, 0, 3)}, "y", one("transB", 1))
	data := b.bytes(t, "y", 1, 3)
	checkAgainstGonnx(t, data, randomInputs(300, 2*8*8, rand.New(rand.NewPCG(5, 6))), 1, 2, 8, 8)
}

// TestFoldAndPools: BatchNormalization folds into the Conv before it, and
// MaxPool, AveragePool, GlobalAveragePool and Clip (ReLU6) compute what
// their definitions say (gonnx has none of them: checked against a direct
// computation here).
func TestFoldAndPools(t *testing.T) {
	b := newBuilder(1, 1, 6, 6)
	c := b.node("Conv", []string{"x", b.weight("w", 1, 0, 2, 1, 3, 3)}, "c", ints("kernel_shape", 3, 3), ints("pads", 1, 1, 1, 1))
	bn := b.node("BatchNormalization", []string{c, b.weight("gamma", 0.5, 1, 2), b.weight("beta", 0.5, 0, 2), b.weight("mean", 0.3, 0, 2), b.weight("var", 0.2, 1, 2)}, "bn")
	cl := b.node("Clip", []string{bn, b.weight("lo", 0, 0), b.weight("hi", 0, 6)}, "cl")
	mp := b.node("MaxPool", []string{cl}, "mp", ints("kernel_shape", 2, 2), ints("strides", 2, 2))
	ap := b.node("AveragePool", []string{mp}, "ap", ints("kernel_shape", 2, 2), ints("strides", 1, 1))
	b.node("GlobalAveragePool", []string{ap}, "y")
	data := b.bytes(t, "y", 1, 2, 1, 1)
	net := lower(t, data)
	consts := map[string][]float64{}
	for _, in := range b.g.Initializer {
		for _, v := range in.FloatData {
			consts[in.Name] = append(consts[in.Name], float64(v))
		}
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for _, x := range randomInputs(20, 36, rng) {
		// Direct: conv (pad 1), BN, clip [0, 6], maxpool 2/2, avgpool 2/1, global average.
		w, gm, bt, mu, vr := consts["w"], consts["gamma"], consts["beta"], consts["mean"], consts["var"]
		var want [2]float64
		for co := range 2 {
			var y [6][6]float64
			for i := range 6 {
				for j := range 6 {
					s := 0.0
					for ki := range 3 {
						for kj := range 3 {
							if ii, jj := i+ki-1, j+kj-1; ii >= 0 && ii < 6 && jj >= 0 && jj < 6 {
								s += w[co*9+ki*3+kj] * x[ii*6+jj]
							}
						}
					}
					s = gm[co]*(s-mu[co])/math.Sqrt(vr[co]+1e-5) + bt[co]
					y[i][j] = min(max(s, 0), 6)
				}
			}
			var p [3][3]float64
			for i := range 3 {
				for j := range 3 {
					p[i][j] = max(y[2*i][2*j], y[2*i+1][2*j], y[2*i][2*j+1], y[2*i+1][2*j+1])
				}
			}
			for i := range 2 {
				for j := range 2 {
					want[co] += (p[i][j] + p[i+1][j] + p[i][j+1] + p[i+1][j+1]) / 4 / 4
				}
			}
		}
		got, err := net.Predict(x)
		if err != nil {
			t.Fatal(err)
		}
		for co := range 2 {
			if math.Abs(got[co]-want[co]) > 1e-9 {
				t.Fatalf("channel %d: got %g, want %g", co, got[co], want[co])
			}
		}
	}
	m, rep, err := onnx.Quantize(net, onnx.Options{Name: "pools", Calibration: randomInputs(50, 36, rng), Percentile: 99.9})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Ops) == 0 || len(rep.Layers) < 3 {
		t.Fatalf("%d ops, %d report lines", len(m.Ops), len(rep.Layers))
	}
}

// TestErrors: an op the importer does not know is named with where it
// sits; a truncated file says so; shapes that cannot work are refused.
func TestErrors(t *testing.T) {
	b := newBuilder(1, 4)
	h := b.node("Gemm", []string{"x", b.weight("w", 1, 0, 3, 4)}, "h", one("transB", 1))
	b.node("Softmax", []string{h}, "y")
	_, err := onnx.Parse(b.bytes(t, "y", 1, 3))
	var ue *onnx.UnsupportedError
	if !errors.As(err, &ue) || ue.Op != "Softmax" || !strings.Contains(err.Error(), `node 2 of 2 "Softmax_y"`) {
		t.Errorf("unsupported op: %v", err)
	}

	data, err := os.ReadFile(testdata + "lenet_bn_maxpool.onnx")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{len(data) / 2, len(data) - 7, 10} {
		if _, err := onnx.Parse(data[:n]); err == nil || !strings.Contains(err.Error(), "truncated") {
			t.Errorf("truncated at %d bytes: %v", n, err)
		}
	}
	if _, err := onnx.Parse([]byte("definitely not onnx")); err == nil {
		t.Error("garbage parsed")
	}

	b = newBuilder(1, 1<<12, 1<<12)
	b.node("Relu", []string{"x"}, "y")
	if _, err := onnx.Parse(b.bytes(t, "y", 1, 1<<12, 1<<12)); err == nil || !strings.Contains(err.Error(), "over") {
		t.Errorf("a 2^24-value input: %v", err)
	}

	b = newBuilder(1, 1, 4, 4)
	b.node("Conv", []string{"x", b.weight("w", 1, 0, 2, 1, 3, 3)}, "y", ints("kernel_shape", 3, 3), one("group", 2))
	g, err := onnx.Parse(b.bytes(t, "y", 1, 2, 2, 2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := onnx.Lower(g); err == nil || !strings.Contains(err.Error(), "group 2") || !strings.Contains(err.Error(), "Conv_y") {
		t.Errorf("grouped conv: %v", err)
	}
}

// FuzzParse: no file makes the parser or the lowering panic.
func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile(testdata + "lenet_bn_maxpool.onnx"); err == nil { // the real export, whole and cut
		f.Add(data)
		f.Add(data[:len(data)/3])
	}
	b := newBuilder(1, 2)
	b.node("Relu", []string{"x"}, "y")
	f.Add(b.bytes(f, "y", 1, 2))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := onnx.Parse(data)
		if err != nil {
			return
		}
		if net, err := onnx.Lower(g); err == nil {
			net.Predict(make([]float64, net.InputSize()))
		}
	})
}
