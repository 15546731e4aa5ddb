package oracle

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/zkoracle/zkoracle/prover"
	"github.com/zkoracle/zkoracle/verifier"
	"github.com/zkoracle/zkoracle/verifier/ceremony"
)

// VerifierContributor makes the verifier a ceremony contributor: the state
// goes up as a blob, the verifier adds its randomness, the new state comes
// back.
type VerifierContributor struct{ V Verifier }

// Name implements prover.Contributor.
func (VerifierContributor) Name() string { return "verifier" }

// Contribute implements prover.Contributor.
func (c VerifierContributor) Contribute(ctx context.Context, phase int, modelID string, state []byte) ([]byte, error) {
	sha, err := c.V.Upload(ctx, state)
	if err != nil {
		return nil, fmt.Errorf("upload state: %w", err)
	}
	own, err := c.V.Contribute(ctx, verifier.ContributeRequest{Phase: phase, ModelID: modelID, State: sha})
	if err != nil {
		return nil, err
	}
	out, err := c.V.Download(ctx, own.Entry.Hash)
	if err != nil {
		return nil, fmt.Errorf("download state: %w", err)
	}
	if ceremony.Hash(out) != own.Entry.Hash {
		return nil, fmt.Errorf("the verifier's state does not hash to %s", own.Entry.Hash)
	}
	return out, nil
}

// CeremonyWith returns the ceremony the oracle runs for each model: the
// operator's contribution, then the verifier's.
func CeremonyWith(v Verifier) *prover.Ceremony {
	return &prover.Ceremony{Contributors: []prover.Contributor{prover.Operator{Label: "operator"}, VerifierContributor{v}}}
}

// EnsurePhase1 makes the store and the verifier share a phase 1 of at least
// 2^power that includes the verifier's contribution. If they do not yet,
// it runs one (operator, then verifier), uploads its states and has the
// verifier verify and keep it.
func EnsurePhase1(ctx context.Context, store *prover.Store, v Verifier, power int, progress func(string)) (*ceremony.Phase1Transcript, error) {
	rec, err := v.Phase1(ctx)
	if err != nil {
		return nil, fmt.Errorf("verifier phase 1: %w", err)
	}
	t, _, err := store.Phase1()
	if err != nil && !errors.Is(err, prover.ErrNoPhase1) {
		return nil, err
	}
	if t != nil && rec != nil && t.SRS == rec.SRS && t.Power >= power {
		return t, nil
	}
	// The verifier's contribution must be in the chain, so a phase 1 the
	// verifier does not hold is run again rather than reused.
	if _, err = store.RunPhase1(ctx, power, []prover.Contributor{prover.Operator{Label: "operator"}, VerifierContributor{v}}, nil, progress); err != nil {
		return nil, err
	}
	if progress != nil {
		progress("phase 1: the verifier verifies and keeps it")
	}
	t, states, err := store.Phase1States()
	if err != nil {
		return nil, err
	}
	shas := make([]string, len(states))
	for i, st := range states {
		if shas[i], err = v.Upload(ctx, st); err != nil {
			return nil, err
		}
	}
	rec, err = v.SetPhase1(ctx, verifier.SetPhase1Request{Power: t.Power, Contributions: shas, Names: ceremony.Names(t.Contributions), Beacon: t.Beacon})
	if err != nil {
		return nil, fmt.Errorf("verifier set_phase1: %w", err)
	}
	if rec.SRS != t.SRS {
		return nil, fmt.Errorf("the verifier sealed phase 1 as %s, the store as %s", rec.SRS, t.SRS)
	}
	return t, nil
}

// RegisterRequest builds a model's registration: for ceremony keys it
// uploads the circuit and the phase-2 states so the verifier can re-derive
// the key.
func RegisterRequest(ctx context.Context, store *prover.Store, v Verifier, meta *prover.Meta) (verifier.RegisterRequest, error) {
	id := meta.ModelID
	r := verifier.RegisterRequest{ModelID: id, Name: meta.Name, LayoutVersion: meta.LayoutVersion,
		InputShape: meta.InputShape, OutputShape: meta.OutputShape, Setup: meta.Setup}
	var err error
	if r.VerifyingKey, err = os.ReadFile(store.Path(id, "vk.bin")); err != nil {
		return r, err
	}
	if meta.Setup != prover.SetupMPC {
		return r, nil
	}
	t, err := store.Transcript(id)
	if err != nil {
		return r, err
	}
	circuit, err := os.ReadFile(store.Path(id, "circuit.r1cs"))
	if err != nil {
		return r, err
	}
	c := &verifier.CeremonySetup{Beacon: t.Phase2.Beacon, Names: ceremony.Names(t.Phase2.Contributions)}
	if c.Circuit, err = v.Upload(ctx, circuit); err != nil {
		return r, fmt.Errorf("upload circuit: %w", err)
	}
	for i := range t.Phase2.Contributions {
		st, err := os.ReadFile(store.CeremonyFile(id, ceremony.StateFile(2, i)))
		if err != nil {
			return r, err
		}
		sha, err := v.Upload(ctx, st)
		if err != nil {
			return r, fmt.Errorf("upload phase 2 state %d: %w", i+1, err)
		}
		c.Contributions = append(c.Contributions, sha)
	}
	r.Ceremony = c
	return r, nil
}
