package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/zkoracle/zkoracle/fixtures/mnist"
	"github.com/zkoracle/zkoracle/model"
	"github.com/zkoracle/zkoracle/model/onnx"
)

func init() {
	register("model import", "import an ONNX model (float with calibration, or onnxruntime QDQ int8) as a zkoracle model", modelImport)
}

// modelImport is `zkoracle model import FILE.onnx --calibrate DATA --out F`.
func modelImport(args []string) error {
	fs := flag.NewFlagSet("model import", flag.ContinueOnError)
	out := fs.String("out", "", "model file to write (default: the ONNX file's name with .zkm.json)")
	name := fs.String("name", "", "model name (default: from the file name)")
	calib := fs.String("calibrate", "", "calibration inputs: a JSON file or a directory of .json/.png samples (float models)")
	calibMNIST := fs.Int("calibrate-mnist", 0, "calibrate on this many images of the embedded MNIST training set (pixels/255)")
	holdMNIST := fs.Int("holdout-mnist", 1000, "with --calibrate-mnist: measure agreement on this many MNIST test images")
	pct := fs.Float64("percentile", 0, "clip each activation's range to this percentile (e.g. 99.99) instead of min/max")
	file, err := parse(fs, args)
	if err != nil {
		return err
	}
	if file == "" {
		return errors.New("usage: zkoracle model import FILE.onnx [--calibrate DATA | --calibrate-mnist N] [--out F]")
	}
	g, err := onnx.ReadFile(file)
	if err != nil {
		return err
	}
	base := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(file), ".onnx"), ".ONNX")
	if *name == "" {
		*name = base
	}
	if *out == "" {
		*out = strings.TrimSuffix(file, ".onnx") + ".zkm.json"
	}
	doc := fmt.Sprintf("imported from %s (%s, opset %d) by zkoracle model import", filepath.Base(file), g.Producer, g.Opset)
	qdq := slices.ContainsFunc(g.Nodes, func(n *onnx.Node) bool { return n.Op == "QuantizeLinear" })

	var m *model.Model
	var net *onnx.Net
	var rep *onnx.Report
	var held [][]float64
	switch {
	case qdq:
		fmt.Printf("%s: a QDQ-quantized graph: importing its own scales (no calibration)\n", file)
		if m, net, rep, err = onnx.ImportQDQ(g, *name, doc); err != nil {
			return err
		}
		held = mnistIfFits(net, *holdMNIST)
	default:
		if net, err = onnx.Lower(g); err != nil {
			return err
		}
		var cal [][]float64
		switch {
		case *calibMNIST > 0:
			train, err := mnist.Train()
			if err != nil {
				return err
			}
			if net.InputSize() != mnist.Pixels {
				return fmt.Errorf("--calibrate-mnist: the model's input %v is not a 28x28 image", net.Shape)
			}
			cal = mnistPixels(train, min(*calibMNIST, train.Len()))
			held = mnistIfFits(net, *holdMNIST)
		case *calib != "":
			all, err := onnx.LoadSamples(*calib, net.Shape)
			if err != nil {
				return err
			}
			// Hold out a fifth for the agreement check.
			n := max(1, len(all)*4/5)
			cal, held = all[:n], all[n:]
		default:
			return errors.New("a float model needs calibration inputs: --calibrate DATA or --calibrate-mnist N")
		}
		doc += fmt.Sprintf("; calibrated on %d samples", len(cal))
		if *pct > 0 {
			doc += fmt.Sprintf(" (percentile %g)", *pct)
		}
		if m, rep, err = onnx.Quantize(net, onnx.Options{Name: *name, Doc: doc, Calibration: cal, Percentile: *pct}); err != nil {
			return err
		}
	}
	fmt.Printf("\n%-34s %-22s %22s %10s %5s %s\n", "tensor", "op", "range", "scale", "zp", "clipped")
	for _, l := range rep.Layers {
		clip := "-"
		if l.Values > 0 {
			clip = fmt.Sprintf("%d/%d (%.3f%%)", l.Clipped, l.Values, 100*float64(l.Clipped)/float64(l.Values))
		}
		fmt.Printf("%-34s %-22s [%9.4f, %9.4f] %10.6f %5d %s\n", trunc(l.Tensor, 34), l.Op, l.Min, l.Max, l.Scale, l.ZeroPoint, clip)
	}
	if len(held) > 0 {
		agree, err := onnx.Agreement(net, m, held)
		if err != nil {
			return err
		}
		fmt.Printf("\ntop-1 agreement of the int8 model with the float model on %d held-out inputs: %.2f%%\n", len(held), 100*agree)
		if agree < onnx.AgreementWarning {
			fmt.Fprintf(os.Stderr, "\n*** WARNING: agreement %.2f%% is below %.0f%%: the quantized model often disagrees with the float one. "+
				"Try more calibration data, --percentile 99.99, or quantization-aware training. ***\n\n", 100*agree, 100*onnx.AgreementWarning)
		}
	} else {
		fmt.Println("\n(no held-out inputs: agreement not measured)")
	}
	enc, err := m.Encode()
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, enc, 0o644); err != nil {
		return err
	}
	fmt.Printf("wrote %s: model %s, id %s, %d ops\n", *out, m.Name, m.ID(), len(m.Ops))
	return nil
}

func mnistPixels(s *mnist.Set, n int) [][]float64 {
	out := make([][]float64, n)
	for i := range out {
		out[i] = make([]float64, len(s.Images[i]))
		for j, p := range s.Images[i] {
			out[i][j] = float64(p) / 255
		}
	}
	return out
}

// mnistIfFits returns n MNIST test images if the input is a 28x28 image.
func mnistIfFits(net *onnx.Net, n int) [][]float64 {
	if net.InputSize() != mnist.Pixels || n <= 0 {
		return nil
	}
	test, err := mnist.Test()
	if err != nil {
		return nil
	}
	return mnistPixels(test, min(n, test.Len()))
}

func trunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n+3:]
}
