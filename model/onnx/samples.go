package onnx

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	_ "image/png" // PNG calibration images
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// LoadSamples reads calibration (or held-out) inputs for a network whose
// per-sample input shape is shape:
//
//   - a JSON file: a list of samples, or {"inputs": [...]}, each sample a
//     flat list of numbers (row major, the input's shape);
//   - a directory: its *.json files (each one sample, a list of them, or
//     {"inputs": ...}) and *.png files (grayscale, each pixel/255; the
//     image must be the input's last two dimensions, one channel), in name
//     order.
func LoadSamples(path string, shape []int) ([][]float64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	files := []string{path}
	if fi.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, err
		}
		files = files[:0]
		for _, e := range entries {
			if ext := strings.ToLower(filepath.Ext(e.Name())); !e.IsDir() && (ext == ".json" || ext == ".png") {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
		slices.Sort(files)
	}
	var out [][]float64
	for _, f := range files {
		var s [][]float64
		if strings.EqualFold(filepath.Ext(f), ".png") {
			s, err = pngSample(f, shape)
		} else {
			s, err = jsonSamples(f)
		}
		if err != nil {
			return nil, err
		}
		for i, x := range s {
			if len(x) != size(shape) {
				return nil, fmt.Errorf("%s: sample %d has %d values, the input %v takes %d", f, i, len(x), shape, size(shape))
			}
		}
		out = append(out, s...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no samples (*.json or *.png)", path)
	}
	return out, nil
}

func jsonSamples(path string) ([][]float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var wrapped struct {
		Inputs [][]float64 `json:"inputs"`
	}
	if json.Unmarshal(b, &wrapped) == nil && wrapped.Inputs != nil {
		return wrapped.Inputs, nil
	}
	var many [][]float64
	if json.Unmarshal(b, &many) == nil {
		return many, nil
	}
	var one []float64
	if err := json.Unmarshal(b, &one); err != nil {
		return nil, fmt.Errorf("%s: want a sample (list of numbers), a list of samples or {\"inputs\": [...]}: %w", path, err)
	}
	return [][]float64{one}, nil
}

// ReadGray decodes an image file (PNG) into its width, height and
// grayscale pixels, row major.
func ReadGray(path string) (int, int, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, nil, err
	}
	defer f.Close()
	im, _, err := image.Decode(f)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("%s: %w", path, err)
	}
	b := im.Bounds()
	px := make([]byte, 0, b.Dx()*b.Dy())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			px = append(px, color.GrayModel.Convert(im.At(x, y)).(color.Gray).Y)
		}
	}
	return b.Dx(), b.Dy(), px, nil
}

func pngSample(path string, shape []int) ([][]float64, error) {
	w, h, px, err := ReadGray(path)
	if err != nil {
		return nil, err
	}
	if len(shape) < 2 || size(shape) != w*h {
		return nil, fmt.Errorf("%s is %dx%d, the input is %v", path, w, h, shape)
	}
	x := make([]float64, len(px))
	for i, p := range px {
		x[i] = float64(p) / 255
	}
	return [][]float64{x}, nil
}
