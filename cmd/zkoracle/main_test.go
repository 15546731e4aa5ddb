package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
