package onnx_test

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/zkoracle/zkoracle/fixtures/mnist"
	"github.com/zkoracle/zkoracle/internal/testenv"
	"github.com/zkoracle/zkoracle/model"
	"github.com/zkoracle/zkoracle/model/onnx"
)

const testdata = "testdata/"

// ref is lenet_bn_maxpool.ref.json: onnxruntime's logits on MNIST test
// images 0..99 (pixels/255).
type ref struct {
	Labels   []int       `json:"labels"`
	FP32     [][]float64 `json:"onnxruntime_fp32_logits"`
	Int8QDQ  [][]float64 `json:"onnxruntime_int8_qdq_logits"`
	Accuracy struct {
		FP32    float64 `json:"fp32"`
		Int8QDQ float64 `json:"int8_qdq"`
	} `json:"onnxruntime_test_accuracy_10k"`
}

func loadRef(t testing.TB) *ref {
	b, err := os.ReadFile(testdata + "lenet_bn_maxpool.ref.json")
	if err != nil {
		t.Fatal(err)
	}
	var r ref
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

// pixels returns MNIST images as floats pixel/255, as the reference used.
func pixels(s *mnist.Set, from, n int) [][]float64 {
	out := make([][]float64, n)
	for i := range out {
		img := s.Images[from+i]
		out[i] = make([]float64, len(img))
		for j, p := range img {
			out[i][j] = float64(p) / 255
		}
	}
	return out
}

func testSet(t testing.TB) *mnist.Set {
	s, err := mnist.Test()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// importLeNet imports the float LeNet with calibration on 500 training
// images.
func importLeNet(t testing.TB) (*onnx.Net, *model.Model, *onnx.Report) {
	g, err := onnx.ReadFile(testdata + "lenet_bn_maxpool.onnx")
	if err != nil {
		t.Fatal(err)
	}
	net, err := onnx.Lower(g)
	if err != nil {
		t.Fatal(err)
	}
	train, err := mnist.Train()
	if err != nil {
		t.Fatal(err)
	}
	m, rep, err := onnx.Quantize(net, onnx.Options{Name: "lenet-bn-maxpool", Calibration: pixels(train, 0, 500)})
	if err != nil {
		t.Fatal(err)
	}
	return net, m, rep
}

// TestLeNetFloat: the float model as zkoracle runs it matches
// onnxruntime's fp32 logits, and its quantization agrees with onnxruntime's
// fp32 top-1 on >= 99% of test images 0..99 and reaches >= 98.5% on the
// 10k test set.
func TestLeNetFloat(t *testing.T) {
	testenv.SkipUnderRace(t)
	r := loadRef(t)
	net, m, rep := importLeNet(t)
	test := testSet(t)
	xs := pixels(test, 0, 100)
	agree := 0
	for i, x := range xs {
		f, err := net.Predict(x)
		if err != nil {
			t.Fatal(err)
		}
		for j := range f {
			if d := math.Abs(f[j] - r.FP32[i][j]); d > 1e-3 {
				t.Fatalf("image %d logit %d: zkoracle float %g, onnxruntime %g", i, j, f[j], r.FP32[i][j])
			}
		}
		tr, err := m.Run(onnx.QuantizeInput(m, x))
		if err != nil {
			t.Fatal(err)
		}
		if model.Argmax(tr.Output) == model.Argmax(r.FP32[i]) {
			agree++
		}
	}
	if agree < 99 {
		t.Errorf("quantized top-1 agrees with onnxruntime fp32 on %d/100 images, want >= 99", agree)
	}
	n := test.Len()
	if testing.Short() {
		n = 2000
	}
	correct := 0
	for i, x := range pixels(test, 0, n) {
		tr, err := m.Run(onnx.QuantizeInput(m, x))
		if err != nil {
			t.Fatal(err)
		}
		if model.Argmax(tr.Output) == int(test.Labels[i]) {
			correct++
		}
	}
	acc := float64(correct) / float64(n)
	t.Logf("agreement with onnxruntime fp32 on images 0..99: %d%%; int8 accuracy on %d test images: %.2f%% (onnxruntime fp32 %.2f%%)",
		agree, n, 100*acc, 100*r.Accuracy.FP32)
	for _, l := range rep.Layers {
		t.Logf("  %-28s %-22s [%8.3f, %8.3f] scale %.5f zp %4d clipped %d/%d", l.Tensor, l.Op, l.Min, l.Max, l.Scale, l.ZeroPoint, l.Clipped, l.Values)
	}
	if acc < 0.985 {
		t.Errorf("int8 accuracy %.4f, want >= 0.985", acc)
	}
}

// TestLeNetQDQ: onnxruntime's int8 QDQ model imports with its own scales;
// its dequantized logits match onnxruntime's int8 logits within one
// quantization step on >= 99% of values, with the same top-1 on >= 99.5%
// of the images.
func TestLeNetQDQ(t *testing.T) {
	r := loadRef(t)
	g, err := onnx.ReadFile(testdata + "lenet_bn_maxpool.int8_qdq.onnx")
	if err != nil {
		t.Fatal(err)
	}
	m, _, rep, err := onnx.ImportQDQ(g, "lenet-bn-maxpool-int8", "")
	if err != nil {
		t.Fatal(err)
	}
	out := m.Info().Tensors[m.Output]
	within, values, sameTop := 0, 0, 0
	worst := 0.0
	for i, x := range pixels(testSet(t), 0, 100) {
		tr, err := m.Run(onnx.QuantizeInput(m, x))
		if err != nil {
			t.Fatal(err)
		}
		got := onnx.Dequantize(m, tr.Output)
		for j := range got {
			d := math.Abs(got[j] - r.Int8QDQ[i][j])
			worst = max(worst, d/out.Scale)
			if d <= out.Scale*1.0001 {
				within++
			}
			values++
		}
		if model.Argmax(got) == model.Argmax(r.Int8QDQ[i]) {
			sameTop++
		}
	}
	t.Logf("within one step (%.5f): %d/%d values (worst %.2f steps); same top-1 %d/100", out.Scale, within, values, worst, sameTop)
	for _, l := range rep.Layers {
		t.Logf("  %-36s %-20s scale %.6f zp %4d", l.Tensor, l.Op, l.Scale, l.ZeroPoint)
	}
	if float64(within) < 0.99*float64(values) {
		t.Errorf("%d/%d values within one step, want >= 99%%", within, values)
	}
	if float64(sameTop) < 99.5 {
		t.Errorf("same top-1 on %d/100 images, want >= 99.5%%", sameTop)
	}
}
