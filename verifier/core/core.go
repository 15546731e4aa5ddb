// Package core is the verify core of the verifier: decoding and checking,
// no I/O and no state. It builds for GOOS=wasip1 GOARCH=wasm (see
// verifier/wasm), the form it would take inside a canister.
package core

import (
	"bytes"
	"errors"
	"fmt"
	"math"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	groth16bn254 "github.com/consensys/gnark/backend/groth16/bn254"
	"github.com/consensys/gnark/backend/witness"

	"github.com/zkoracle/zkoracle/model/layout"
)

// Limits of what the core decodes.
const (
	MaxKeyBytes   = 64 << 10 // a verifying key with a few hundred public inputs
	MaxProofBytes = 4 << 10
	MaxValues     = 1 << 16 // input or output values
)

// DecodeKey reads a Groth16 BN254 verifying key in gnark's checked binary
// form: every point is decoded with its on-curve and subgroup checks.
func DecodeKey(b []byte) (groth16.VerifyingKey, error) {
	if len(b) == 0 || len(b) > MaxKeyBytes {
		return nil, fmt.Errorf("verifying key: %d bytes, want 1..%d", len(b), MaxKeyBytes)
	}
	vk := groth16.NewVerifyingKey(ecc.BN254)
	n, err := vk.ReadFrom(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("verifying key: %w", err)
	}
	if int(n) != len(b) {
		return nil, fmt.Errorf("verifying key: %d trailing bytes", len(b)-int(n))
	}
	return vk, nil
}

// DecodeProof reads a Groth16 BN254 proof (compressed or not), points
// checked like the key's.
func DecodeProof(b []byte) (groth16.Proof, error) {
	if len(b) == 0 || len(b) > MaxProofBytes {
		return nil, fmt.Errorf("proof: %d bytes, want 1..%d", len(b), MaxProofBytes)
	}
	p := groth16.NewProof(ecc.BN254)
	n, err := p.ReadFrom(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("proof: %w", err)
	}
	if int(n) != len(b) {
		return nil, fmt.Errorf("proof: %d trailing bytes", len(b)-int(n))
	}
	return p, nil
}

// Claim is what a prover asserts: this model maps Input to Output.
type Claim struct {
	Input  []int   `json:"input"`
	Output []int64 `json:"output"`
}

// InputOf returns an int8 input as the []int a Claim carries.
func InputOf(in []int8) []int {
	out := make([]int, len(in))
	for i, v := range in {
		out[i] = int(v)
	}
	return out
}

// PublicInputs rebuilds the public witness (layout v1) from the claim: the
// verifier never takes public inputs from the prover.
func (c Claim) PublicInputs(inputSize, outputSize int) (witness.Witness, error) {
	if len(c.Input) != inputSize {
		return nil, fmt.Errorf("input has %d values, the model takes %d", len(c.Input), inputSize)
	}
	if len(c.Output) != outputSize {
		return nil, fmt.Errorf("output has %d values, the model gives %d", len(c.Output), outputSize)
	}
	in := make([]int8, len(c.Input))
	for i, v := range c.Input {
		if v < math.MinInt8 || v > math.MaxInt8 {
			return nil, fmt.Errorf("input value %d at %d is outside int8", v, i)
		}
		in[i] = int8(v)
	}
	for i, v := range c.Output {
		if v < math.MinInt32 || v > math.MaxInt32 {
			return nil, fmt.Errorf("output value %d at %d is outside int32", v, i)
		}
	}
	pub, err := layout.Build(in, c.Output)
	if err != nil {
		return nil, err
	}
	w, err := witness.New(ecc.BN254.ScalarField())
	if err != nil {
		return nil, err
	}
	ch := make(chan any, len(pub))
	for i := range pub {
		ch <- pub[i]
	}
	close(ch)
	if err := w.Fill(len(pub), 0, ch); err != nil {
		return nil, err
	}
	return w, nil
}

// NbCommitments returns the number of Pedersen commitments a BN254 key
// checks (each adds pairings to a verification).
func NbCommitments(vk groth16.VerifyingKey) int {
	if k, ok := vk.(*groth16bn254.VerifyingKey); ok {
		return len(k.CommitmentKeys)
	}
	return 0
}

// PublicInputs returns the number of public inputs a key verifies (gnark's
// NbPublicWitness also counts the commitment wires).
func PublicInputs(vk groth16.VerifyingKey) int { return vk.NbPublicWitness() - NbCommitments(vk) }

// ErrInvalid marks a proof that decodes but does not verify.
var ErrInvalid = errors.New("proof does not verify")

// Check verifies proof for the claim under vk. The key must expect exactly
// layout.Len(inputSize, outputSize) public inputs.
func Check(vk groth16.VerifyingKey, proof groth16.Proof, c Claim, inputSize, outputSize int) error {
	if got, want := PublicInputs(vk), layout.Len(inputSize, outputSize); got != want {
		return fmt.Errorf("verifying key takes %d public inputs, layout v%d needs %d", got, layout.Version, want)
	}
	pub, err := c.PublicInputs(inputSize, outputSize)
	if err != nil {
		return err
	}
	if err := groth16.Verify(proof, vk, pub); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}

// Request is one self-contained verification, as the wasm build of this
// core reads it (verifier/wasm): key, proof and claim, with the model's
// input and output sizes.
type Request struct {
	Key        []byte  `json:"verifying_key"`
	Proof      []byte  `json:"proof"`
	Input      []int   `json:"input"`
	Output     []int64 `json:"output"`
	InputSize  int     `json:"input_size"`
	OutputSize int     `json:"output_size"`
}

// Verify decodes and checks a Request.
func (r Request) Verify() error {
	vk, err := DecodeKey(r.Key)
	if err != nil {
		return err
	}
	proof, err := DecodeProof(r.Proof)
	if err != nil {
		return err
	}
	return Check(vk, proof, Claim{Input: r.Input, Output: r.Output}, r.InputSize, r.OutputSize)
}
