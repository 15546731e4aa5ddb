package main

import (
	"encoding/json"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zkoracle/zkoracle/fixtures/mnist"
	"github.com/zkoracle/zkoracle/verifier"
	"github.com/zkoracle/zkoracle/verifier/ceremony"
)

func TestModelCommands(t *testing.T) {
	if err := modelInspect([]string{"mnist-mlp"}); err != nil {
		t.Fatalf("model inspect: %v", err)
	}
	if err := modelRun([]string{"mnist-cnn", "--image", "3"}); err != nil {
		t.Fatalf("model run: %v", err)
	}
	if err := modelRun([]string{"--image", "10000", "mnist-cnn"}); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("model run --image 10000: got %v, want an out of range error", err)
	}
	if err := modelInspect([]string{"mnist-mlp", "mnist-cnn"}); err == nil {
		t.Fatal("two models: got no error")
	}
	bad := filepath.Join(t.TempDir(), "bad.zkm.json")
	if err := os.WriteFile(bad, []byte(`{"format":"zkoracle.model","version":7}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := modelInspect([]string{bad}); err == nil || !strings.Contains(err.Error(), "unsupported version 7") {
		t.Fatalf("bad file: got %v", err)
	}
	if _, err := loadModel("no-such-model"); err == nil {
		t.Fatal("unknown fixture: got no error")
	}
}

func TestCircuitInspect(t *testing.T) {
	if err := circuitInspect([]string{"mnist-mlp"}); err != nil {
		t.Fatal(err)
	}
}

func TestReadPNG(t *testing.T) {
	raw, _, err := mnist.TestImage(5)
	if err != nil {
		t.Fatal(err)
	}
	// Save it as a dark digit on a light background, as people draw them.
	im := image.NewGray(image.Rect(0, 0, 28, 28))
	for i, v := range raw {
		im.Pix[i] = 255 - v
	}
	path := filepath.Join(t.TempDir(), "digit.png")
	f, _ := os.Create(path)
	if err := png.Encode(f, im); err != nil {
		t.Fatal(err)
	}
	f.Close()
	px, err := readPNG(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range raw {
		if px[i] != int(v) {
			t.Fatalf("pixel %d: got %d, want %d", i, px[i], v)
		}
	}
	small := filepath.Join(t.TempDir(), "small.png")
	f, _ = os.Create(small)
	png.Encode(f, image.NewGray(image.Rect(0, 0, 10, 10)))
	f.Close()
	if _, err := readPNG(small); err == nil || !strings.Contains(err.Error(), "want 28x28") {
		t.Fatalf("10x10 PNG: got %v", err)
	}
}

func TestCeremonyCommands(t *testing.T) {
	store := t.TempDir()
	if err := ceremonyPhase1Cmd([]string{"--store", store, "--power", "4", "--contributions", "1"}); err != nil {
		t.Fatalf("ceremony phase1: %v", err)
	}
	states, _ := filepath.Glob(filepath.Join(store, "phase1", "*", "phase1-01.bin"))
	if len(states) != 1 {
		t.Fatalf("phase-1 states %v", states)
	}
	out := filepath.Join(t.TempDir(), "next.bin")
	if err := ceremonyContributeCmd([]string{"--in", states[0], "--out", out, "--name", "me"}); err != nil {
		t.Fatalf("ceremony contribute: %v", err)
	}
	if b, _ := os.ReadFile(out); len(b) == 0 {
		t.Fatal("no state written")
	}
	junk := filepath.Join(t.TempDir(), "junk.bin")
	os.WriteFile(junk, []byte("not a state"), 0o644)
	if err := ceremonyContributeCmd([]string{"--in", junk, "--out", out}); err == nil || !strings.Contains(err.Error(), "neither") {
		t.Fatalf("junk state: %v", err)
	}
	if err := ceremonyVerifyCmd([]string{"--store", store, "--model", "mnist-mlp"}); err == nil {
		t.Fatal("verify without a transcript passed")
	}
}

func TestModelImport(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "lenet.zkm.json")
	src := "../../model/onnx/testdata/"
	if err := modelImport([]string{src + "lenet_bn_maxpool.onnx", "--calibrate-mnist", "50", "--holdout-mnist", "50", "--out", out}); err != nil {
		t.Fatal(err)
	}
	if _, err := loadModel(out); err != nil {
		t.Fatalf("written model: %v", err)
	}
	if err := modelImport([]string{src + "lenet_bn_maxpool.int8_qdq.onnx", "--holdout-mnist", "20", "--out", filepath.Join(dir, "q.zkm.json")}); err != nil {
		t.Fatal(err)
	}
	if err := modelImport([]string{src + "lenet_bn_maxpool.onnx", "--out", filepath.Join(dir, "x.zkm.json")}); err == nil || !strings.Contains(err.Error(), "calibration") {
		t.Errorf("float model without calibration: %v", err)
	}
	trunc := filepath.Join(dir, "cut.onnx")
	b, _ := os.ReadFile(src + "lenet_bn_maxpool.onnx")
	os.WriteFile(trunc, b[:len(b)/2], 0o644)
	if err := modelImport([]string{trunc, "--calibrate-mnist", "10"}); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("truncated file: %v", err)
	}
}

func TestCeremonyCrossCheck(t *testing.T) {
	tr := ceremony.Transcript{Format: ceremony.Format, Version: ceremony.Version,
		Phase1: ceremony.Phase1Transcript{Power: 12, SRS: "s", Contributions: []ceremony.Contribution{{Name: "operator", Hash: "a"}, {Name: "verifier", Hash: "b"}}},
		Phase2: ceremony.Phase2Transcript{ModelID: "m", Circuit: "c", VerifyingKey: "k", Contributions: []ceremony.Contribution{{Name: "operator", Hash: "x"}, {Name: "verifier", Hash: "y"}}}}
	serve := func(mc *verifier.ModelCeremony) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if mc == nil {
				w.WriteHeader(404)
				json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": "no_transcript", "message": "none"}})
				return
			}
			json.NewEncoder(w).Encode(map[string]any{"result": mc})
		}))
	}
	same := serve(&verifier.ModelCeremony{Transcript: tr, OwnPhase1: 1, OwnPhase2: 1})
	defer same.Close()
	if err := crossCheck(same.URL, "m", &tr); err != nil {
		t.Fatalf("matching transcript: %v", err)
	}
	other := tr
	other.Phase2.VerifyingKey = "another"
	diff := serve(&verifier.ModelCeremony{Transcript: other})
	defer diff.Close()
	if err := crossCheck(diff.URL, "m", &tr); err == nil {
		t.Error("a verifier with another key passed")
	}
	none := serve(nil)
	defer none.Close()
	if err := crossCheck(none.URL, "m", &tr); err == nil {
		t.Error("a verifier without the model passed")
	}
}
