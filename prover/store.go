package prover

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
	"github.com/consensys/gnark/constraint"

	"github.com/zkoracle/zkoracle/model"
	"github.com/zkoracle/zkoracle/model/layout"
	"github.com/zkoracle/zkoracle/verifier/ceremony"
)

// SetupSingleParty marks keys from gnark's single-party Groth16 setup: whoever
// ran it could forge proofs, so they are for development only. SetupMPC
// marks keys from a ceremony.
const (
	SetupSingleParty = ceremony.SetupSingleParty
	SetupMPC         = ceremony.SetupMPC
)

// Meta describes a model's prepared artifacts.
type Meta struct {
	ModelID       string    `json:"model_id"`
	Name          string    `json:"name"`
	Constraints   int       `json:"constraints"`
	PublicInputs  int       `json:"public_inputs"`
	LayoutVersion int       `json:"layout_version"`
	InputShape    []int     `json:"input_shape"`
	OutputShape   []int     `json:"output_shape"`
	Setup         string    `json:"setup"`
	Created       time.Time `json:"created"`
}

// The files of a prepared model, in Store.Dir/models/<id>/. Keys are in
// gnark's raw (unchecked) form: they are only ever read back from this
// store, never from outside.
const (
	fileModel   = "model.zkm.json"
	fileCircuit = "circuit.r1cs"
	filePK      = "pk.raw"
	fileVK      = "vk.bin"
	fileMeta    = "meta.json"
)

// ArtifactFiles lists the files that make a prepared model, meta last: its
// presence marks a complete set.
var ArtifactFiles = []string{fileModel, fileCircuit, filePK, fileVK, fileMeta}

// Store keeps compiled circuits and keys on disk, content-addressed by model
// ID. Preparing compiles and sets up once; later loads read the raw files.
// Two processes preparing the same model serialise on a file lock, and a
// model directory appears whole (renamed into place) or not at all.
//
// Keys come from a ceremony (Ceremony, on the store's phase 1) or, for
// development, from gnark's single-party setup (DevSetup). A store that
// only serves prepared models (a worker's) needs neither.
type Store struct {
	Dir      string
	Ceremony *Ceremony
	DevSetup bool

	mu      sync.Mutex // guards the decoded phase-1 SRS
	srs     *mpcsetup.SrsCommons
	srsHash string
}

type keyPair struct {
	pk groth16.ProvingKey
	vk groth16.VerifyingKey
}

// ErrNotPrepared is returned for a model the store has no artifacts for.
var ErrNotPrepared = errors.New("model not prepared")

func (s *Store) modelDir(id string) string { return filepath.Join(s.Dir, "models", id) }

// Path returns the path of one of a model's artifact files.
func (s *Store) Path(id, file string) string { return filepath.Join(s.modelDir(id), file) }

// Has reports whether the model's artifacts are complete.
func (s *Store) Has(id string) bool {
	_, err := os.Stat(s.Path(id, fileMeta))
	return err == nil
}

// Meta reads a prepared model's metadata.
func (s *Store) Meta(id string) (*Meta, error) {
	b, err := os.ReadFile(s.Path(id, fileMeta))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotPrepared, id)
	}
	if err != nil {
		return nil, err
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("meta of %s: %w", id, err)
	}
	return &m, nil
}

// Prepare compiles m's circuit and runs the setup unless the store already
// has them, and returns the metadata. progress, if set, hears each step.
func (s *Store) Prepare(ctx context.Context, m *model.Model, progress func(step string)) (*Meta, error) {
	id := m.ID()
	if meta, err := s.Meta(id); err == nil && s.usable(meta) {
		return meta, nil
	}
	if err := os.MkdirAll(filepath.Join(s.Dir, "locks"), 0o755); err != nil {
		return nil, err
	}
	unlock, err := lockFile(ctx, filepath.Join(s.Dir, "locks", id+".lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	if meta, err := s.Meta(id); err == nil && s.usable(meta) {
		return meta, nil // another process prepared it while we waited
	}
	step := func(s string) { step(progress, s) }
	step("compile")
	cc, err := compile(m)
	if err != nil {
		return nil, err
	}
	cs := cc.r1cs
	var k *keyPair
	var ceremonyFiles map[string][]byte
	setup := SetupSingleParty
	switch {
	case s.DevSetup:
		step("single-party setup (insecure)")
		pk, vk, err := groth16.Setup(cs)
		if err != nil {
			return nil, fmt.Errorf("setup %s: %w", m.Name, err)
		}
		k = &keyPair{pk, vk}
	case s.Ceremony != nil:
		if _, ceremonyFiles, k, err = s.runPhase2(ctx, s.Ceremony, id, cc, step); err != nil {
			return nil, fmt.Errorf("ceremony for %s: %w", m.Name, err)
		}
		setup = SetupMPC
	default:
		return nil, errors.New("store: no way to make keys (set Store.Ceremony, or Store.DevSetup for development)")
	}
	pk, vk := k.pk, k.vk
	step("write")
	tmp := filepath.Join(s.Dir, "models", ".tmp-"+id+"-"+randHex())
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	enc, err := m.Encode()
	if err != nil {
		return nil, err
	}
	meta := &Meta{
		ModelID: id, Name: m.Name, Constraints: cs.GetNbConstraints(), PublicInputs: cs.GetNbPublicVariables() - 1,
		LayoutVersion: layout.Version, InputShape: m.Input.Shape, OutputShape: m.Info().Tensors[m.Output].Shape,
		Setup: setup, Created: time.Now().UTC(),
	}
	metaJSON, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return nil, err
	}
	writes := []struct {
		file string
		w    func(io.Writer) error
	}{
		{fileModel, bytesWriter(enc)},
		{fileCircuit, bytesWriter(cc.bytes)},
		{filePK, func(w io.Writer) error { _, err := pk.WriteRawTo(w); return err }},
		{fileVK, func(w io.Writer) error { _, err := vk.WriteTo(w); return err }},
		{fileMeta, bytesWriter(metaJSON)},
	}
	for _, f := range writes {
		if err := writeFile(filepath.Join(tmp, f.file), f.w); err != nil {
			return nil, fmt.Errorf("write %s: %w", f.file, err)
		}
	}
	if ceremonyFiles != nil {
		if err := s.writeDir(filepath.Join(tmp, dirCeremony), ceremonyFiles); err != nil {
			return nil, err
		}
	}
	if s.Has(id) { // keys of another setup: replace them
		old := filepath.Join(s.Dir, "models", ".old-"+id+"-"+randHex())
		if err := os.Rename(s.modelDir(id), old); err != nil {
			return nil, err
		}
		defer os.RemoveAll(old)
	}
	if err := os.Rename(tmp, s.modelDir(id)); err != nil {
		return nil, err
	}
	return meta, nil
}

// usable reports whether prepared keys fit the store's setup: any keys do
// for development; a ceremony needs keys from a ceremony on the store's
// current phase 1 (the one the verifier holds).
func (s *Store) usable(meta *Meta) bool {
	if s.DevSetup || s.Ceremony == nil {
		return true
	}
	if meta.Setup != SetupMPC {
		return false
	}
	t, err := s.Transcript(meta.ModelID)
	p1, _, err1 := s.Phase1()
	return err == nil && err1 == nil && t.Phase1.SRS == p1.SRS
}

// Install places artifact files fetched from elsewhere (a shared object
// store) into the store, whole or not at all. files maps each name of
// ArtifactFiles to its content reader.
func (s *Store) Install(id string, open func(file string) (io.ReadCloser, error)) error {
	if s.Has(id) {
		return nil
	}
	if err := os.MkdirAll(filepath.Join(s.Dir, "models"), 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(s.Dir, "models", ".tmp-"+id+"-"+randHex())
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, f := range ArtifactFiles {
		r, err := open(f)
		if err != nil {
			return fmt.Errorf("fetch %s/%s: %w", id, f, err)
		}
		err = writeFile(filepath.Join(tmp, f), func(w io.Writer) error { _, err := io.Copy(w, r); return err })
		r.Close()
		if err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, s.modelDir(id)); err != nil && !s.Has(id) {
		return err
	}
	return nil
}

// Model reads a prepared model's IR.
func (s *Store) Model(id string) (*model.Model, error) {
	if !s.Has(id) {
		return nil, fmt.Errorf("%w: %s", ErrNotPrepared, id)
	}
	m, err := model.Load(s.Path(id, fileModel))
	if err != nil {
		return nil, err
	}
	if m.ID() != id {
		return nil, fmt.Errorf("store: model file of %s hashes to %s", id, m.ID())
	}
	return m, nil
}

// ConstraintSystem reads a fresh copy of a model's compiled circuit.
func (s *Store) ConstraintSystem(id string) (constraint.ConstraintSystem, error) {
	cs := groth16.NewCS(ecc.BN254)
	if err := readFile(s.Path(id, fileCircuit), func(r io.Reader) error { _, err := cs.ReadFrom(r); return err }); err != nil {
		return nil, err
	}
	return cs, nil
}

// ProvingKey reads a model's proving key (raw form, unchecked: our own file).
func (s *Store) ProvingKey(id string) (groth16.ProvingKey, error) {
	pk := groth16.NewProvingKey(ecc.BN254)
	if err := readFile(s.Path(id, filePK), func(r io.Reader) error { _, err := pk.UnsafeReadFrom(r); return err }); err != nil {
		return nil, err
	}
	return pk, nil
}

// VerifyingKey reads a model's verifying key (checked form).
func (s *Store) VerifyingKey(id string) (groth16.VerifyingKey, error) {
	vk := groth16.NewVerifyingKey(ecc.BN254)
	if err := readFile(s.Path(id, fileVK), func(r io.Reader) error { _, err := vk.ReadFrom(r); return err }); err != nil {
		return nil, err
	}
	return vk, nil
}

func bytesWriter(b []byte) func(io.Writer) error {
	return func(w io.Writer) error { _, err := w.Write(b); return err }
}

func writeFile(path string, fill func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := fill(bw); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func readFile(path string, read func(io.Reader) error) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNotPrepared, path)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if err := read(bufio.NewReaderSize(f, 1<<20)); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

// lockFile takes an exclusive flock on path, polling so that ctx can cancel
// the wait.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func randHex() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}
