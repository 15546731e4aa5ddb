// Package layout defines the public inputs of a zkoracle proof, version 1.
//
// It imports nothing of gnark's frontend (only gnark-crypto and the
// stdlib-only package model), so a verifier can rebuild the public inputs
// from a submitted input and output without the circuits.
//
// Layout v1, for a model with an int8 input of n values and an output of k
// values (BN254 scalar field elements, in this order):
//
//	[0, P)          the input, P = ceil(n/31): element j packs the bytes
//	                u_i = x_i + 128 (0..255) of values 31j .. 31j+30,
//	                little endian: sum_i u_{31j+i} * 256^i
//	[P]             the predicted class: index of the first maximum output
//	[P+1, P+1+k)    the output values, signed (negative v is r - |v|)
//
// The circuit range-checks every u_i to 8 bits, so the packing is injective
// and costs one constraint per element.
package layout

import (
	"fmt"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/zkoracle/zkoracle/model"
)

// Version is the layout version this package builds.
const Version = 1

// BytesPerElement is how many input bytes one public input packs.
const BytesPerElement = 31

// PackedLen returns P, the number of public inputs the input takes.
func PackedLen(n int) int { return (n + BytesPerElement - 1) / BytesPerElement }

// Len returns the number of public inputs for n input and k output values.
func Len(n, k int) int { return PackedLen(n) + 1 + k }

// Pack returns the packed input elements.
func Pack(input []int8) []*big.Int {
	out := make([]*big.Int, PackedLen(len(input)))
	for j := range out {
		v := new(big.Int)
		for i := min(len(input), (j+1)*BytesPerElement) - 1; i >= j*BytesPerElement; i-- {
			v.Lsh(v, 8)
			v.Add(v, big.NewInt(int64(input[i])+128))
		}
		out[j] = v
	}
	return out
}

// Argmax returns the predicted class: the index of the first maximum of v
// (model.Argmax, the one definition).
func Argmax(v []int64) int { return model.Argmax(v) }

// Build returns the public inputs for input and output, in layout order.
func Build(input []int8, output []int64) ([]fr.Element, error) {
	if len(input) == 0 || len(output) == 0 {
		return nil, fmt.Errorf("layout: empty input or output")
	}
	pub := make([]fr.Element, 0, Len(len(input), len(output)))
	for _, p := range Pack(input) {
		var e fr.Element
		e.SetBigInt(p)
		pub = append(pub, e)
	}
	var e fr.Element
	e.SetInt64(int64(Argmax(output)))
	pub = append(pub, e)
	for _, v := range output {
		e.SetInt64(v)
		pub = append(pub, e)
	}
	return pub, nil
}
