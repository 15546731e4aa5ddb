// Command wasm is the verify core as a WASI program, the shape it would take
// inside a canister: it reads one request from stdin and writes the verdict
// to stdout. Build: GOOS=wasip1 GOARCH=wasm go build ./verifier/wasm.
//
// Request: {"verifying_key": base64, "proof": base64, "input": [int8...],
// "output": [int...], "input_size": n, "output_size": k}.
// Reply: {"valid": bool, "reason": "...", "verify_ns": n}, verify_ns being
// the time from decoding the key to the verdict, inside the instance (what
// a canister, instantiated once, pays per call).
package main

import (
	"encoding/json"
	"io"
	"os"
	"time"

	"github.com/consensys/gnark/logger"

	"github.com/zkoracle/zkoracle/verifier/core"
)

type request struct {
	Key        []byte  `json:"verifying_key"`
	Proof      []byte  `json:"proof"`
	Input      []int   `json:"input"`
	Output     []int64 `json:"output"`
	InputSize  int     `json:"input_size"`
	OutputSize int     `json:"output_size"`
}

func main() {
	logger.Disable() // gnark logs to stdout otherwise
	var start time.Time
	verdict := func(valid bool, reason string) {
		json.NewEncoder(os.Stdout).Encode(map[string]any{"valid": valid, "reason": reason, "verify_ns": time.Since(start).Nanoseconds()})
	}
	b, err := io.ReadAll(io.LimitReader(os.Stdin, 4<<20))
	if err != nil {
		verdict(false, err.Error())
		return
	}
	var r request
	if err := json.Unmarshal(b, &r); err != nil {
		verdict(false, "request: "+err.Error())
		return
	}
	start = time.Now()
	vk, err := core.DecodeKey(r.Key)

	if err != nil {
		verdict(false, err.Error())
		return
	}
	proof, err := core.DecodeProof(r.Proof)
	if err != nil {
		verdict(false, err.Error())
		return
	}
	if err := core.Check(vk, proof, core.Claim{Input: r.Input, Output: r.Output}, r.InputSize, r.OutputSize); err != nil {
		verdict(false, err.Error())
		return
	}
	verdict(true, "")
}
