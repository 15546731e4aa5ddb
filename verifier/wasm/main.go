// Command wasm is the verify core as a WASI program, the shape it would take
// inside a canister: it reads one request from stdin and writes the verdict
// to stdout. Build: GOOS=wasip1 GOARCH=wasm go build ./verifier/wasm.
//
// Request: {"verifying_key": base64, "proof": base64, "input": [int8...],
// "output": [int...], "input_size": n, "output_size": k}.
// Reply: {"valid": bool, "reason": "...", "verify_ns": n}, verify_ns being
// the time from decoding the proof to the verdict, inside the instance: what
// a canister, instantiated once and holding the decoded key, pays per call.
package main

import (
	"encoding/json"
	"io"
	"os"
	"time"

	"github.com/consensys/gnark/logger"

	"github.com/zkoracle/zkoracle/verifier/core"
)

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
	var r core.Request
	if err := json.Unmarshal(b, &r); err != nil {
		verdict(false, "request: "+err.Error())
		return
	}
	// A canister decodes a model's key once, at registration, and keeps it
	// in its heap: verify_ns covers what each call pays, from the proof on.
	vk, err := core.DecodeKey(r.Key)
	start = time.Now()
	if err != nil {
		verdict(false, err.Error())
		return
	}
	proof, err := core.DecodeProof(r.Proof)
	if err == nil {
		err = core.Check(vk, proof, core.Claim{Input: r.Input, Output: r.Output}, r.InputSize, r.OutputSize)
	}
	if err != nil {
		verdict(false, err.Error())
		return
	}
	verdict(true, "")
}
