package onnx_test

import (
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zkoracle/zkoracle/model/onnx"
)

func TestLoadSamples(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.json", `[0, 0.5, 1, 0.25]`)
	write("b.json", `{"inputs": [[1, 1, 1, 1], [0, 0, 0, 0]]}`)
	im := image.NewGray(image.Rect(0, 0, 2, 2))
	im.SetGray(1, 0, color.Gray{Y: 255})
	f, _ := os.Create(filepath.Join(dir, "c.png"))
	png.Encode(f, im)
	f.Close()
	write("notes.txt", "ignored")

	s, err := onnx.LoadSamples(dir, []int{1, 2, 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 4 || s[0][1] != 0.5 || s[2][0] != 0 || s[3][1] != 1 || s[3][0] != 0 {
		t.Fatalf("samples %v", s)
	}
	one, err := onnx.LoadSamples(filepath.Join(dir, "b.json"), []int{4})
	if err != nil || len(one) != 2 {
		t.Fatalf("file: %v %v", one, err)
	}
	if _, err := onnx.LoadSamples(dir, []int{1, 3, 3}); err == nil || !strings.Contains(err.Error(), "takes 9") {
		t.Errorf("wrong size: %v", err)
	}
	write("bad.json", `{"nope": 1}`)
	if _, err := onnx.LoadSamples(filepath.Join(dir, "bad.json"), []int{4}); err == nil {
		t.Error("bad json accepted")
	}
	if _, err := onnx.LoadSamples(t.TempDir(), []int{4}); err == nil || !strings.Contains(err.Error(), "no samples") {
		t.Errorf("empty dir: %v", err)
	}
}
