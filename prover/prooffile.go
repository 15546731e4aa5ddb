package prover

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/consensys/gnark/backend/groth16"

	"github.com/zkoracle/zkoracle/model/layout"
	"github.com/zkoracle/zkoracle/verifier/core"
)

// ProofFile is the self-contained record `zkoracle prove` writes and
// `zkoracle verify` checks: the claim (model, input, output) and its proof.
// The verifier rebuilds the public inputs from the claim; nothing in the
// file is trusted beyond that.
type ProofFile struct {
	Version   int     `json:"version"` // layout version of the public inputs
	ModelID   string  `json:"model_id"`
	ModelName string  `json:"model_name,omitempty"`
	Input     []int   `json:"input"`
	Output    []int64 `json:"output"`
	Class     int     `json:"class"`
	Proof     []byte  `json:"proof"`
	Setup     string  `json:"setup,omitempty"`
}

// MaxProofFile bounds what DecodeProofFile reads.
const MaxProofFile = 1 << 20

// DecodeProofFile parses a proof file, rejecting unknown fields, a version
// other than layout.Version, and values outside int8.
func DecodeProofFile(r io.Reader) (*ProofFile, error) {
	dec := json.NewDecoder(io.LimitReader(r, MaxProofFile))
	dec.DisallowUnknownFields()
	var pf ProofFile
	if err := dec.Decode(&pf); err != nil {
		return nil, fmt.Errorf("proof file: %w", err)
	}
	if pf.Version != layout.Version {
		return nil, fmt.Errorf("proof file: layout version %d, this build verifies %d", pf.Version, layout.Version)
	}
	if len(pf.Input) == 0 || len(pf.Output) == 0 || len(pf.Proof) == 0 {
		return nil, fmt.Errorf("proof file: missing input, output or proof")
	}
	if _, err := (&Job{Input: pf.Input}).Int8Input(); err != nil {
		return nil, fmt.Errorf("proof file: %w", err)
	}
	return &pf, nil
}

// Verify checks the proof against vk with public inputs rebuilt from the
// file's input and output (the verifier's own core does it); the class is
// checked against the output too.
func (pf *ProofFile) Verify(vk groth16.VerifyingKey) error {
	if c := layout.Argmax(pf.Output); c != pf.Class {
		return fmt.Errorf("class %d is not the arg max %d of the output", pf.Class, c)
	}
	proof, err := core.DecodeProof(pf.Proof)
	if err != nil {
		return err
	}
	return core.Check(vk, proof, core.Claim{Input: pf.Input, Output: pf.Output}, len(pf.Input), len(pf.Output))
}
