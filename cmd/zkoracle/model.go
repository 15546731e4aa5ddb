package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/zkoracle/zkoracle/fixtures"
	"github.com/zkoracle/zkoracle/fixtures/mnist"
	"github.com/zkoracle/zkoracle/model"
)

func init() {
	register("model inspect", "print a model's ops, shapes and parameter count", modelInspect)
	register("model run", "run the integer reference executor on an MNIST test image", modelRun)
}

// loadModel reads a model file, or a fixture by name (mnist-mlp, mnist-cnn).
func loadModel(arg string) (*model.Model, error) {
	if _, err := os.Stat(arg); err == nil {
		return model.Load(arg)
	} else if !errors.Is(err, os.ErrNotExist) || strings.ContainsAny(arg, "/.") {
		return nil, err
	}
	return fixtures.Load(arg)
}

// parse parses flags that may come before or after the one positional
// argument (FILE).
func parse(fs *flag.FlagSet, args []string) (string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return "", err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 1 {
		return "", fmt.Errorf("want one MODEL (a file or a fixture name: %s), got %d", strings.Join(fixtures.Names, ", "), len(pos))
	}
	return pos[0], nil
}

// parseModel parses fs from args and loads its one MODEL argument.
func parseModel(fs *flag.FlagSet, args []string) (*model.Model, error) {
	file, err := parse(fs, args)
	if err != nil {
		return nil, err
	}
	return loadModel(file)
}

func modelInspect(args []string) error {
	m, err := parseModel(flag.NewFlagSet("model inspect", flag.ContinueOnError), args)
	if err != nil {
		return err
	}
	fmt.Printf("model %s (format %s v%d)\nid    %s\n", m.Name, m.Format, m.Version, m.ID())
	if m.Doc != "" {
		fmt.Printf("doc   %s\n", m.Doc)
	}
	fmt.Printf("input %s %s %v scale %.6g zero point %d\n\n", m.Input.Name, m.Input.DType, m.Input.Shape, m.Input.Scale, m.Input.ZeroPoint)
	fmt.Printf("%-3s %-11s %-8s %-6s %-14s %-10s %s\n", "#", "op", "output", "dtype", "shape", "params", "details")
	total := 0
	for i, op := range m.Ops {
		params := len(op.Weights) + len(op.Bias) + len(op.Table)
		total += params
		var d []string
		if op.Kernel > 0 {
			d = append(d, fmt.Sprintf("kernel %d stride %d pad %d", op.Kernel, max(op.Stride, 1), op.Padding))
		}
		if op.Kind == model.Requantize {
			d = append(d, fmt.Sprintf("%d multiplier(s), shift %d..%d, clamp [%d, %d], zp %d",
				len(op.Multiplier), minOf(op.Shift), maxOf(op.Shift), *op.Min, *op.Max, op.Out.ZeroPoint))
		}
		b := m.Info().Bounds[op.Out.Name]
		lo, hi := b[0].Lo, b[0].Hi
		for _, iv := range b {
			lo, hi = min(lo, iv.Lo), max(hi, iv.Hi)
		}
		d = append(d, fmt.Sprintf("bound [%d, %d]", lo, hi))
		fmt.Printf("%-3d %-11s %-8s %-6s %-14s %-10d %s\n", i, op.Kind, op.Out.Name, op.Out.DType, fmt.Sprint(op.Out.Shape), params, strings.Join(d, "; "))
	}
	fmt.Printf("\noutput %s; %d ops; %d parameters\n", m.Output, len(m.Ops), total)
	return nil
}

func minOf(v []int) int {
	r := v[0]
	for _, x := range v {
		r = min(r, x)
	}
	return r
}

func maxOf(v []int) int {
	r := v[0]
	for _, x := range v {
		r = max(r, x)
	}
	return r
}

func modelRun(args []string) error {
	fs := flag.NewFlagSet("model run", flag.ContinueOnError)
	image := fs.Int("image", 0, "MNIST test image index (0..9999)")
	m, err := parseModel(fs, args)
	if err != nil {
		return err
	}
	img, label, err := mnist.TestImage(*image)
	if err != nil {
		return err
	}
	tr, err := m.Run(model.PixelsToInput(img))
	if err != nil {
		return err
	}
	fmt.Printf("model %s, MNIST test image %d (label %d)\n", m.Name, *image, label)
	fmt.Printf("logits %v\n", tr.Output)
	fmt.Printf("predicted digit %d\n", model.Argmax(tr.Output))
	return nil
}
