package layout

import (
	"math/big"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
)

func TestPack(t *testing.T) {
	in := make([]int8, 33)
	for i := range in {
		in[i] = int8(i - 128) // bytes 0, 1, 2, ...
	}
	in[30] = 127 // byte 255 at the top of element 0
	p := Pack(in)
	if len(p) != 2 {
		t.Fatalf("got %d elements, want 2", len(p))
	}
	want := new(big.Int)
	for i := 30; i >= 0; i-- {
		want.Lsh(want, 8)
		want.Add(want, big.NewInt(int64(in[i])+128))
	}
	if p[0].Cmp(want) != 0 {
		t.Errorf("element 0: got %x, want %x", p[0], want)
	}
	if got := p[1].Int64(); got != 31+32*256 {
		t.Errorf("element 1: got %d, want %d", got, 31+32*256)
	}
	if p[0].BitLen() > 248 {
		t.Errorf("element 0 has %d bits, more than 31 bytes", p[0].BitLen())
	}
}

func TestBuild(t *testing.T) {
	pub, err := Build([]int8{-128, 5}, []int64{3, -7, 9, 9})
	if err != nil {
		t.Fatal(err)
	}
	if len(pub) != Len(2, 4) || len(pub) != 6 {
		t.Fatalf("got %d public inputs, want 6", len(pub))
	}
	if got := pub[0].Uint64(); got != 0+133*256 {
		t.Errorf("packed input: got %d", got)
	}
	if got := pub[1].Uint64(); got != 2 {
		t.Errorf("class: got %d, want 2 (first of the tied maxima)", got)
	}
	var neg big.Int
	pub[3].BigInt(&neg)
	neg.Sub(&neg, fr.Modulus())
	if neg.Int64() != -7 {
		t.Errorf("negative output: got %v, want -7", &neg)
	}
	if _, err := Build(nil, []int64{1}); err == nil {
		t.Error("empty input: got no error")
	}
}
