package ceremony_test

import (
	"bytes"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	cs "github.com/consensys/gnark/constraint/bn254"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"

	"github.com/zkoracle/zkoracle/verifier/ceremony"
)

type square struct {
	X frontend.Variable
	Y frontend.Variable `gnark:",public"`
}

func (c *square) Define(api frontend.API) error {
	api.AssertIsEqual(api.Mul(c.X, c.X), c.Y)
	return nil
}

// seeds returns a phase-1 state with one contribution, its sealed SRS, and
// a phase-2 state of a one-constraint circuit on it.
func seeds(t testing.TB) (p1, srs, p2 []byte) {
	s0, _ := ceremony.NewPhase1(2)
	p1, _, err := ceremony.ContributePhase1(s0, "a")
	if err != nil {
		t.Fatal(err)
	}
	commons, _, err := ceremony.VerifyPhase1(2, []byte{1}, [][]byte{p1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ccs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, &square{})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	ccs.WriteTo(&b)
	p, err := ceremony.NewPhase2(ccs.(*cs.R1CS), ceremony.Hash(b.Bytes()), commons, "fuzz")
	if err != nil {
		t.Fatal(err)
	}
	p2, _, err = ceremony.ContributePhase2(p.Initial(), "a")
	if err != nil {
		t.Fatal(err)
	}
	return p1, ceremony.EncodeSRS(commons), p2
}

// The decoders take states from outside: no input may panic them or make
// them allocate beyond what the bytes can hold.
func FuzzDecodePhase1(f *testing.F) {
	p1, _, _ := seeds(f)
	f.Add(p1)
	f.Add(p1[:len(p1)-1])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := ceremony.DecodePhase1(b); err == nil && p == nil {
			t.Fatal("nil state without an error")
		}
	})
}

func FuzzDecodePhase2(f *testing.F) {
	_, _, p2 := seeds(f)
	f.Add(p2)
	f.Add(p2[:len(p2)/2])
	f.Add([]byte{0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := ceremony.DecodePhase2(b); err == nil && p == nil {
			t.Fatal("nil state without an error")
		}
	})
}

func FuzzDecodeSRS(f *testing.F) {
	_, srs, _ := seeds(f)
	f.Add(srs)
	f.Add(srs[:40])
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := ceremony.DecodeSRS(b); err == nil && c == nil {
			t.Fatal("nil srs without an error")
		}
	})
}

// TestDecodeRefusesForgedSizes: a header announcing more points than the
// bytes hold is refused before anything is allocated.
func TestDecodeRefusesForgedSizes(t *testing.T) {
	p1, srs, p2 := seeds(t)
	big := bytes.Clone(p1)
	big[3*96+4] = 0xff // domain 2^... in the u64 after the three proofs
	if _, err := ceremony.DecodePhase1(big); err == nil {
		t.Error("phase 1 with a forged domain decoded")
	}
	big = bytes.Clone(p2)
	big[2+32] = 0x7f // PKK length
	if _, err := ceremony.DecodePhase2(big); err == nil {
		t.Error("phase 2 with a forged vector length decoded")
	}
	big = bytes.Clone(srs)
	big[0] = 1
	if _, err := ceremony.DecodeSRS(big); err == nil {
		t.Error("srs with a forged domain decoded")
	}
}
