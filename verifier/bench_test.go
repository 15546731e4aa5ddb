package verifier

import (
	"path/filepath"
	"testing"

	"github.com/zkoracle/zkoracle/verifier/core"
)

// BenchmarkNativeVerify measures verifications per second on all cores
// (decoded key, proof decoded per call) and reports the metered estimate.
func BenchmarkNativeVerify(b *testing.B) {
	mods := fixtureProofs(b)
	c := mods["mnist-cnn"]
	vk, err := core.DecodeKey(c.reg.VerifyingKey)
	if err != nil {
		b.Fatal(err)
	}
	claim := c.claims[0]
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p, err := core.DecodeProof(claim.Proof)
			if err != nil {
				b.Fatal(err)
			}
			if err := core.Check(vk, p, claim.Claim, 784, 10); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
	cost := verifyCost(core.PublicInputs(vk), core.NbCommitments(vk), 4000)
	b.ReportMetric(float64(cost.Instructions), "IC-instructions")
}

// BenchmarkSubmitResult measures the whole update call (HTTP decode, state
// transaction, verification) through the service.
func BenchmarkSubmitResult(b *testing.B) {
	mods := fixtureProofs(b)
	s, err := Open(Options{Path: filepath.Join(b.TempDir(), "s.db"), AllowDevKeys: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := mods["mnist-cnn"]
	if _, _, err := s.RegisterModel("admin", c.reg); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		i++
		if _, _, err := s.SubmitResult("bench", submit(c.claims[0], string(rune('a'+i%26))+string(rune(i))), 4000); err != nil {
			b.Fatal(err)
		}
	}
}
