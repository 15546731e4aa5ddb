package bench

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
	cs "github.com/consensys/gnark/constraint/bn254"

	"github.com/zkoracle/zkoracle/circuits"
	"github.com/zkoracle/zkoracle/model"
	"github.com/zkoracle/zkoracle/verifier/ceremony"
)

// CeremonyStep is one timed step of a ceremony.
type CeremonyStep struct {
	Step      string  `json:"step"`
	Ms        float64 `json:"ms"`
	PeakRSSMB float64 `json:"peak_rss_mb"` // of the step alone (the mark is reset before it)
	StateMB   float64 `json:"state_mb,omitempty"`
}

// Ceremony times each step of the ceremony the oracle runs for m, on a
// phase 1 sized to its circuit: two phase-1 contributions, their
// verification, the phase-2 start, three phase-2 contributions (one per
// participant), their verification and sealing into keys. The phase-2 start
// is derived afresh (not taken from the in-process cache). progress, if set, hears each step as it starts.
func Ceremony(m *model.Model, progress io.Writer) ([]CeremonyStep, error) {
	ccs, err := circuits.Compile(m)
	if err != nil {
		return nil, err
	}
	var circuit bytes.Buffer
	ccs.WriteTo(&circuit)
	r1cs := ccs.(*cs.R1CS)
	power := ceremony.Power(r1cs)
	var steps []CeremonyStep
	run := func(name string, f func() ([]byte, error)) ([]byte, error) {
		if progress != nil {
			fmt.Fprintf(progress, "%s: %s\n", m.Name, name)
		}
		runtime.GC()
		resetPeakRSS()
		t := time.Now()
		out, err := f()
		steps = append(steps, CeremonyStep{Step: name, Ms: ms(time.Since(t)), PeakRSSMB: float64(peakRSSKB()) / 1024, StateMB: float64(len(out)) / 1e6})
		return out, err
	}
	s0, _ := ceremony.NewPhase1(power)
	var states1 [][]byte
	for i := range 2 {
		s, err := run(fmt.Sprintf("phase 1 (2^%d): contribution %d", power, i+1), func() ([]byte, error) {
			prev := s0
			if i > 0 {
				prev = states1[i-1]
			}
			out, _, err := ceremony.ContributePhase1(prev, "bench")
			return out, err
		})
		if err != nil {
			return nil, err
		}
		states1 = append(states1, s)
	}
	var srs *mpcsetup.SrsCommons
	if _, err := run("phase 1: verify 2 contributions and seal", func() ([]byte, error) {
		c, _, err := ceremony.VerifyPhase1(power, []byte("beacon 1"), states1, nil)
		srs = c
		if err != nil {
			return nil, err
		}
		return ceremony.EncodeSRS(c), nil
	}); err != nil {
		return nil, err
	}
	var p2 *ceremony.Phase2
	if _, err := run(fmt.Sprintf("phase 2 (%d constraints): derive the initial state", r1cs.GetNbConstraints()), func() ([]byte, error) {
		p2, err = ceremony.NewPhase2(r1cs, ceremony.Hash(circuit.Bytes())+"/bench", srs, "bench")
		if err != nil {
			return nil, err
		}
		return p2.Initial(), nil
	}); err != nil {
		return nil, err
	}
	states2 := [][]byte{}
	prev := p2.Initial()
	for i, who := range []string{"operator", "verifier", "outside contributor"} {
		s, err := run(fmt.Sprintf("phase 2: contribution %d (%s)", i+1, who), func() ([]byte, error) {
			out, _, err := ceremony.ContributePhase2(prev, who)
			return out, err
		})
		if err != nil {
			return nil, err
		}
		states2, prev = append(states2, s), s
	}
	if _, err := run("phase 2: verify 3 contributions and seal the keys", func() ([]byte, error) {
		_, vk, _, err := p2.Verify([]byte("beacon 2"), states2, nil)
		if err != nil {
			return nil, err
		}
		return ceremony.EncodeKey(vk), nil
	}); err != nil {
		return nil, err
	}
	return steps, nil
}
