package prover

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
	csbn254 "github.com/consensys/gnark/constraint/bn254"

	"github.com/zkoracle/zkoracle/circuits"
	"github.com/zkoracle/zkoracle/model"
	"github.com/zkoracle/zkoracle/verifier/ceremony"
)

// Contributor adds its own randomness to a ceremony state: the operator in
// this process (Operator), the verifier, or a human with the CLI.
type Contributor interface {
	Name() string
	// Contribute returns state (of phase 1 or of modelID's phase 2) with the
	// contributor's secret applied and proven.
	Contribute(ctx context.Context, phase int, modelID string, state []byte) ([]byte, error)
}

// Operator contributes in this process from crypto/rand; the secret is
// gone when Contribute returns.
type Operator struct{ Label string }

// Name implements Contributor.
func (o Operator) Name() string { return o.Label }

// Contribute implements Contributor.
func (o Operator) Contribute(_ context.Context, phase int, _ string, state []byte) ([]byte, error) {
	out, _, err := ceremony.Contribute(phase, state, o.Label)
	return out, err
}

// contributeAll has each contributor in turn add to state (of phase 1, or
// of modelID's phase 2) and returns every state made and its author.
func contributeAll(ctx context.Context, phase int, modelID string, state []byte, cs []Contributor, progress func(string)) ([][]byte, []string, error) {
	if len(cs) == 0 {
		return nil, nil, fmt.Errorf("phase %d needs at least one contributor", phase)
	}
	states := make([][]byte, len(cs))
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.Name()
		step(progress, fmt.Sprintf("phase %d: contribution %d (%s)", phase, i+1, names[i]))
		var err error
		if state, err = c.Contribute(ctx, phase, modelID, state); err != nil {
			return nil, nil, fmt.Errorf("phase %d contribution %d (%s): %w", phase, i+1, names[i], err)
		}
		states[i] = state
	}
	return states, names, nil
}

// Ceremony says how Prepare makes keys by a multi-party setup.
type Ceremony struct {
	// Contributors make the phase-2 contributions, in order. Keys the
	// verifier accepts need the verifier among them.
	Contributors []Contributor
	// Beacon returns the public random value that seals a phase, published
	// after its last contribution (whose hash it is given). Nil uses
	// DerivedBeacon, which is reproducible but not unpredictable: a real
	// deployment reads a public beacon (drand, a block hash) here.
	Beacon func(last string) ([]byte, error)
}

// DerivedBeacon is SHA-256("zkoracle beacon" | last | UTC minute).
func DerivedBeacon(last string) ([]byte, error) {
	h := sha256.Sum256([]byte("zkoracle beacon|" + last + "|" + time.Now().UTC().Format("2006-01-02T15:04Z")))
	return h[:], nil
}

func (c *Ceremony) beacon(last string) ([]byte, error) {
	if c.Beacon == nil {
		return DerivedBeacon(last)
	}
	return c.Beacon(last)
}

// Phase 1 lives in Store.Dir/phase1/<srs sha256>/: transcript.json, the
// contributions' states and srs.bin (the sealed result); Store.Dir/phase1/
// current names the one Prepare uses.
const (
	fileTranscript = "transcript.json"
	fileSRS        = "srs.bin"
	dirCeremony    = "ceremony" // in a model's directory: transcript.json, phase2-NN.bin
)

func (s *Store) phase1Dir(srs string) string { return filepath.Join(s.Dir, "phase1", srs) }

// Phase1 returns the transcript of the store's current phase 1 and the
// directory with its files, or ErrNoPhase1.
func (s *Store) Phase1() (*ceremony.Phase1Transcript, string, error) {
	cur, err := os.ReadFile(filepath.Join(s.Dir, "phase1", "current"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", ErrNoPhase1
	}
	if err != nil {
		return nil, "", err
	}
	dir := s.phase1Dir(string(bytes.TrimSpace(cur)))
	t, err := readJSON[ceremony.Phase1Transcript](filepath.Join(dir, fileTranscript))
	if err != nil {
		return nil, "", err
	}
	return t, dir, nil
}

// ErrNoPhase1 is returned when a ceremony needs a phase 1 the store lacks.
var ErrNoPhase1 = errors.New("no phase 1 in the store (run one: zkoracle ceremony phase1)")

// RunPhase1 runs a phase 1 for circuits of up to 2^power constraints with
// the contributors in order, verifies the chain, seals it and makes it the
// store's current phase 1. progress, if set, hears each step.
func (s *Store) RunPhase1(ctx context.Context, power int, contributors []Contributor, beacon func(string) ([]byte, error), progress func(string)) (*ceremony.Phase1Transcript, error) {
	if beacon == nil {
		beacon = DerivedBeacon
	}
	initial, err := ceremony.NewPhase1(power)
	if err != nil {
		return nil, err
	}
	states, names, err := contributeAll(ctx, 1, "", initial, contributors, progress)
	if err != nil {
		return nil, err
	}
	b, err := beacon(ceremony.Hash(states[len(states)-1]))
	if err != nil {
		return nil, err
	}
	step(progress, "phase 1: verify and seal")
	srs, chain, err := ceremony.VerifyPhase1(power, b, states, names)
	if err != nil {
		return nil, err
	}
	enc := ceremony.EncodeSRS(srs)
	t := &ceremony.Phase1Transcript{Power: power, Beacon: hex.EncodeToString(b), Contributions: chain, SRS: ceremony.Hash(enc)}
	files := map[string][]byte{fileSRS: enc}
	for i, st := range states {
		files[ceremony.StateFile(1, i)] = st
	}
	if files[fileTranscript], err = json.MarshalIndent(t, "", "  "); err != nil {
		return nil, err
	}
	if err := s.writeDir(s.phase1Dir(t.SRS), files); err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(s.Dir, "phase1", "current"), bytesWriter([]byte(t.SRS+"\n"))); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.srs = nil
	s.mu.Unlock()
	return t, nil
}

// Phase1States reads the states of the current phase 1, in order.
func (s *Store) Phase1States() (*ceremony.Phase1Transcript, [][]byte, error) {
	t, dir, err := s.Phase1()
	if err != nil {
		return nil, nil, err
	}
	states := make([][]byte, len(t.Contributions))
	for i := range states {
		if states[i], err = os.ReadFile(filepath.Join(dir, ceremony.StateFile(1, i))); err != nil {
			return nil, nil, err
		}
	}
	return t, states, nil
}

// loadSRS returns the decoded current phase 1 (cached).
func (s *Store) loadSRS() (*ceremony.Phase1Transcript, *mpcsetup.SrsCommons, error) {
	t, dir, err := s.Phase1()
	if err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srs != nil && s.srsHash == t.SRS {
		return t, s.srs, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, fileSRS))
	if err != nil {
		return nil, nil, err
	}
	if ceremony.Hash(b) != t.SRS {
		return nil, nil, fmt.Errorf("%s: does not hash to its transcript's %s", filepath.Join(dir, fileSRS), t.SRS)
	}
	srs, err := ceremony.DecodeSRS(b)
	if err != nil {
		return nil, nil, err
	}
	s.srs, s.srsHash = srs, t.SRS
	return t, srs, nil
}

// runPhase2 runs a model's phase 2 on the store's current phase 1 and
// returns the keys' sealed transcript and the files of its ceremony
// directory (transcript.json and the states).
func (s *Store) runPhase2(ctx context.Context, c *Ceremony, modelID string, cc *compiled, progress func(string)) (*ceremony.Transcript, map[string][]byte, *keyPair, error) {
	step(progress, "phase 2: derive the initial state")
	p1, p2, err := s.phase2Start(cc)
	if err != nil {
		return nil, nil, nil, err
	}
	states, names, err := contributeAll(ctx, 2, modelID, p2.Initial(), c.Contributors, progress)
	if err != nil {
		return nil, nil, nil, err
	}
	b, err := c.beacon(ceremony.Hash(states[len(states)-1]))
	if err != nil {
		return nil, nil, nil, err
	}
	step(progress, "phase 2: verify and seal")
	pk, vk, chain, err := p2.Verify(b, states, names)
	if err != nil {
		return nil, nil, nil, err
	}
	t := &ceremony.Transcript{Format: ceremony.Format, Version: ceremony.Version, Phase1: *p1,
		Phase2: ceremony.Phase2Transcript{ModelID: modelID, Circuit: cc.hash, Constraints: cc.r1cs.GetNbConstraints(),
			Domain: ceremony.Domain(cc.r1cs), Beacon: hex.EncodeToString(b), Contributions: chain, VerifyingKey: ceremony.Hash(ceremony.EncodeKey(vk))}}
	files := map[string][]byte{}
	for i, st := range states {
		files[ceremony.StateFile(2, i)] = st
	}
	if files[fileTranscript], err = json.MarshalIndent(t, "", "  "); err != nil {
		return nil, nil, nil, err
	}
	return t, files, &keyPair{pk, vk}, nil
}

// Transcript reads a prepared model's ceremony transcript.
func (s *Store) Transcript(id string) (*ceremony.Transcript, error) {
	return readJSON[ceremony.Transcript](filepath.Join(s.modelDir(id), dirCeremony, fileTranscript))
}

// CeremonyFile is the path of a file of a model's ceremony directory.
func (s *Store) CeremonyFile(id, name string) string {
	return filepath.Join(s.modelDir(id), dirCeremony, name)
}

// writeDir writes files into dir, whole or not at all.
func (s *Store) writeDir(dir string, files map[string][]byte) error {
	if _, err := os.Stat(dir); err == nil {
		return nil // content-addressed: already there
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	tmp := dir + ".tmp-" + randHex()
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for name, b := range files {
		if err := writeFile(filepath.Join(tmp, name), bytesWriter(b)); err != nil {
			return err
		}
	}
	return os.Rename(tmp, dir)
}

func readJSON[T any](path string) (*T, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var t T
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &t, nil
}

func step(progress func(string), s string) {
	if progress != nil {
		progress(s)
	}
}

// compiled is a model's constraint system with its serialization, whose
// hash names the circuit in transcripts.
type compiled struct {
	r1cs  *csbn254.R1CS
	bytes []byte
	hash  string
}

func compile(m *model.Model) (*compiled, error) {
	ccs, err := circuits.Compile(m)
	if err != nil {
		return nil, err
	}
	r1cs, ok := ccs.(*csbn254.R1CS)
	if !ok {
		return nil, fmt.Errorf("%T is not a BN254 R1CS", ccs)
	}
	var b bytes.Buffer
	if _, err := r1cs.WriteTo(&b); err != nil {
		return nil, err
	}
	return &compiled{r1cs: r1cs, bytes: b.Bytes(), hash: ceremony.Hash(b.Bytes())}, nil
}

// phase2Start derives (or recalls) the start of a circuit's phase 2 on the
// store's current phase 1.
func (s *Store) phase2Start(cc *compiled) (*ceremony.Phase1Transcript, *ceremony.Phase2, error) {
	p1, srs, err := s.loadSRS()
	if err != nil {
		return nil, nil, err
	}
	if k := ceremony.Power(cc.r1cs); k > p1.Power {
		return nil, nil, fmt.Errorf("the circuit needs a phase 1 of 2^%d or more, the store's is 2^%d", k, p1.Power)
	}
	p2, err := ceremony.NewPhase2(cc.r1cs, cc.hash, srs, p1.SRS)
	return p1, p2, err
}

// CheckCeremony verifies a model's ceremony from scratch: it compiles the
// model and checks the circuit's hash, re-verifies the phase-1 chain from
// the states in phase1Dir and the phase-2 chain from the states next to the
// transcript, compares every recomputed transcript entry (hashes, public
// keys, the sealed SRS and the key) with the recorded one, and returns the
// transcript and the verifying key the ceremony yields.
func CheckCeremony(m *model.Model, transcriptPath, phase1Dir string, progress func(string)) (*ceremony.Transcript, []byte, error) {
	t, err := readJSON[ceremony.Transcript](transcriptPath)
	if err != nil {
		return nil, nil, err
	}
	if t.Format != ceremony.Format || t.Version != ceremony.Version {
		return nil, nil, fmt.Errorf("%s: format %q v%d, want %q v%d", transcriptPath, t.Format, t.Version, ceremony.Format, ceremony.Version)
	}
	if t.Phase2.ModelID != m.ID() {
		return nil, nil, fmt.Errorf("the transcript is for model %s, the model file is %s", t.Phase2.ModelID, m.ID())
	}
	step(progress, "compile the model")
	cc, err := compile(m)
	if err != nil {
		return nil, nil, err
	}
	if cc.hash != t.Phase2.Circuit {
		return nil, nil, fmt.Errorf("the model compiles to circuit %s, the transcript's is %s", cc.hash, t.Phase2.Circuit)
	}

	step(progress, fmt.Sprintf("phase 1: verify %d contributions (2^%d)", len(t.Phase1.Contributions), t.Phase1.Power))
	read := func(dir string, phase, n int) ([][]byte, error) {
		out := make([][]byte, n)
		for i := range out {
			if out[i], err = os.ReadFile(filepath.Join(dir, ceremony.StateFile(phase, i))); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	states1, err := read(phase1Dir, 1, len(t.Phase1.Contributions))
	if err != nil {
		return nil, nil, err
	}
	beacon1, err := hex.DecodeString(t.Phase1.Beacon)
	if err != nil {
		return nil, nil, fmt.Errorf("phase 1 beacon: %w", err)
	}
	srs, chain1, err := ceremony.VerifyPhase1(t.Phase1.Power, beacon1, states1, ceremony.Names(t.Phase1.Contributions))
	if err != nil {
		return nil, nil, err
	}
	if err := ceremony.Compare(t.Phase1.Contributions, chain1); err != nil {
		return nil, nil, fmt.Errorf("phase 1: %w", err)
	}
	if h := ceremony.Hash(ceremony.EncodeSRS(srs)); h != t.Phase1.SRS {
		return nil, nil, fmt.Errorf("phase 1 seals to %s, the transcript says %s", h, t.Phase1.SRS)
	}

	step(progress, fmt.Sprintf("phase 2: derive the initial state and verify %d contributions", len(t.Phase2.Contributions)))
	states2, err := read(filepath.Dir(transcriptPath), 2, len(t.Phase2.Contributions))
	if err != nil {
		return nil, nil, err
	}
	beacon2, err := hex.DecodeString(t.Phase2.Beacon)
	if err != nil {
		return nil, nil, fmt.Errorf("phase 2 beacon: %w", err)
	}
	p2, err := ceremony.NewPhase2(cc.r1cs, cc.hash, srs, t.Phase1.SRS)
	if err != nil {
		return nil, nil, err
	}
	_, vk, chain2, err := p2.Verify(beacon2, states2, ceremony.Names(t.Phase2.Contributions))
	if err != nil {
		return nil, nil, err
	}
	if err := ceremony.Compare(t.Phase2.Contributions, chain2); err != nil {
		return nil, nil, fmt.Errorf("phase 2: %w", err)
	}
	key := ceremony.EncodeKey(vk)
	if h := ceremony.Hash(key); h != t.Phase2.VerifyingKey {
		return nil, nil, fmt.Errorf("phase 2 seals to key %s, the transcript says %s", h, t.Phase2.VerifyingKey)
	}
	return t, key, nil
}

// Phase1Dir is the directory of the phase 1 with the given SRS hash.
func (s *Store) Phase1Dir(srs string) string { return s.phase1Dir(srs) }

// TranscriptPath is the path of a prepared model's transcript.
func (s *Store) TranscriptPath(id string) string { return s.CeremonyFile(id, fileTranscript) }

// Replay is a contributor whose contributions were made elsewhere (by
// people running `zkoracle ceremony contribute` on files): each call
// returns the next of States after checking that it builds on the state it
// is given (its recorded challenge is that state's hash).
type Replay struct {
	Label  string
	States [][]byte
	next   int
}

// Name implements Contributor.
func (r *Replay) Name() string { return fmt.Sprintf("%s %d", r.Label, r.next+1) }

// Contribute implements Contributor.
func (r *Replay) Contribute(_ context.Context, phase int, _ string, state []byte) ([]byte, error) {
	if r.next >= len(r.States) {
		return nil, errors.New("no more recorded contributions")
	}
	out := r.States[r.next]
	challenge, err := ceremony.Challenge(phase, out)
	if err != nil {
		return nil, err
	}
	if challenge != ceremony.Hash(state) {
		return nil, fmt.Errorf("recorded contribution %d does not build on the current state %s", r.next+1, ceremony.Hash(state))
	}
	r.next++
	return out, nil
}

// Replays returns one contributor per recorded state, all reading from one
// Replay.
func (r *Replay) Replays() []Contributor {
	out := make([]Contributor, len(r.States))
	for i := range out {
		out[i] = r
	}
	return out
}

// InitialPhase2 returns the initial phase-2 state of m's circuit on the
// store's current phase 1: what outside contributors start from.
func (s *Store) InitialPhase2(m *model.Model) ([]byte, error) {
	cc, err := compile(m)
	if err != nil {
		return nil, err
	}
	_, p2, err := s.phase2Start(cc)
	if err != nil {
		return nil, err
	}
	return p2.Initial(), nil
}
