package ceremony

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync"

	"github.com/consensys/gnark-crypto/ecc"
	curve "github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
	cs "github.com/consensys/gnark/constraint/bn254"
)

// How keys were made, as the prover's metadata and the verifier's
// registry record it.
const (
	// SetupSingleParty marks keys from gnark's single-party setup: whoever
	// ran it can forge proofs, so they are for development only.
	SetupSingleParty = "single-party (insecure: development only)"
	// SetupMPC marks keys from a verified ceremony.
	SetupMPC = "mpc ceremony (verifier contributed to phase 1 and phase 2)"
)

// Limits of what this package decodes from outside.
const (
	// MaxPower bounds phase 1: 2^MaxPower constraints (a 2^20 phase-1
	// state is about 200 MB).
	MaxPower = 20
	// MaxCircuitBytes bounds a serialized constraint system.
	MaxCircuitBytes = 512 << 20
)

// Sizes of gnark's compressed encodings.
const (
	g1Size    = curve.SizeOfG1AffineCompressed
	g2Size    = curve.SizeOfG2AffineCompressed
	proofSize = g1Size + g2Size // an update proof: commitment [x]₁ and proof of knowledge
)

// Hash is the hex SHA-256 of b. The hash of a contribution's state is the
// challenge the next contribution signs, as gnark computes it.
func Hash(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Contribution is one entry of a transcript: who contributed, the state it
// produced and the public key that proves knowledge of its secret.
type Contribution struct {
	Name string `json:"name"`
	// Hash is the SHA-256 of the state after this contribution.
	Hash string `json:"hash"`
	// Challenge is the hash of the state it built on (the previous Hash, or
	// the initial state's).
	Challenge string `json:"challenge"`
	// PublicKey is the update proof: for each secret x it contributed,
	// [x]₁ and a proof of knowledge x·H(challenge) in G2 (phase 1: τ, α, β;
	// phase 2: δ, then one σ per commitment), compressed, hex.
	PublicKey string `json:"public_key"`
}

func encode(w io.WriterTo) []byte {
	var b bytes.Buffer
	if _, err := w.WriteTo(&b); err != nil {
		panic(err) // writing to memory does not fail
	}
	return b.Bytes()
}

// decode runs ReadFrom on b, turning a panic of the decoder on hostile
// input into an error, and refuses trailing bytes.
func decode(what string, b []byte, r io.ReaderFrom) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: malformed (%v)", what, p)
		}
	}()
	n, err := r.ReadFrom(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if int(n) != len(b) {
		return fmt.Errorf("%s: %d trailing bytes", what, len(b)-int(n))
	}
	return nil
}

// ---- phase 1 ----

// phase1Size is the exact encoded size of a phase-1 state of domain n with
// a challenge of c bytes: three update proofs, N, [β]₂, [τⁱ]₁ (1..2n-2),
// [τⁱ]₂ (1..n-1), [βτⁱ]₁ and [ατⁱ]₁ (0..n-1), the challenge (one length byte).
func phase1Size(n uint64, c int) uint64 {
	return 3*proofSize + 8 + g2Size + (2*n-2)*g1Size + (n-1)*g2Size + 2*n*g1Size + 1 + uint64(c)
}

// NewPhase1 returns the initial phase-1 state for circuits of up to
// 2^power constraints. It holds no secret: anyone can recompute it.
func NewPhase1(power int) ([]byte, error) {
	if power < 1 || power > MaxPower {
		return nil, fmt.Errorf("phase 1: power %d, want 1..%d", power, MaxPower)
	}
	return encode(mpcsetup.NewPhase1(1 << power)), nil
}

// DecodePhase1 reads a phase-1 state with every point checked. Its size is
// checked against the domain it announces before anything is allocated.
func DecodePhase1(b []byte) (*mpcsetup.Phase1, error) {
	power, err := Phase1Power(b)
	if err != nil {
		return nil, err
	}
	n := uint64(1) << power
	if want := phase1Size(n, 32); uint64(len(b)) != want && uint64(len(b)) != phase1Size(n, 0) {
		return nil, fmt.Errorf("phase 1 state: %d bytes, a domain of %d takes %d", len(b), n, want)
	}
	p := new(mpcsetup.Phase1)
	if err := decode("phase 1 state", b, p); err != nil {
		return nil, err
	}
	return p, nil
}

// Phase1Power returns log2 of a phase-1 state's domain.
func Phase1Power(b []byte) (int, error) {
	if len(b) < 3*proofSize+8 {
		return 0, errors.New("phase 1 state: truncated")
	}
	n := binary.BigEndian.Uint64(b[3*proofSize:])
	for k := 1; k <= MaxPower; k++ {
		if n == 1<<k {
			return k, nil
		}
	}
	return 0, fmt.Errorf("phase 1 state: domain %d is not a power of two up to 2^%d", n, MaxPower)
}

// Contribute adds a contribution from fresh randomness to a state of the
// given phase (1 or 2).
func Contribute(phase int, in []byte, name string) ([]byte, Contribution, error) {
	switch phase {
	case 1:
		return ContributePhase1(in, name)
	case 2:
		return ContributePhase2(in, name)
	}
	return nil, Contribution{}, fmt.Errorf("phase %d, want 1 or 2", phase)
}

// Challenge returns the hex hash of the state a phase-1 or phase-2 state
// was built on, as it records it.
func Challenge(phase int, state []byte) (string, error) {
	var c []byte
	switch phase {
	case 1:
		p, err := DecodePhase1(state)
		if err != nil {
			return "", err
		}
		c = p.Challenge
	case 2:
		p, err := DecodePhase2(state)
		if err != nil {
			return "", err
		}
		c = p.Challenge
	default:
		return "", fmt.Errorf("phase %d, want 1 or 2", phase)
	}
	return hex.EncodeToString(c), nil
}

// ContributePhase1 adds a contribution from fresh randomness (crypto/rand)
// to the phase-1 state in and returns the new state. The secrets are
// dropped when it returns.
func ContributePhase1(in []byte, name string) ([]byte, Contribution, error) {
	p, err := DecodePhase1(in)
	if err != nil {
		return nil, Contribution{}, err
	}
	p.Contribute()
	out := encode(p)
	return out, Contribution{Name: name, Hash: Hash(out), Challenge: Hash(in), PublicKey: hex.EncodeToString(out[:3*proofSize])}, nil
}

// VerifyPhase1 checks a chain of phase-1 states, each built on the previous
// one (the first on NewPhase1(power)), seals it with the public beacon and
// returns the resulting SRS. names label the contributions in the returned
// transcript entries.
func VerifyPhase1(power int, beacon []byte, states [][]byte, names []string) (*mpcsetup.SrsCommons, []Contribution, error) {
	if len(states) == 0 {
		return nil, nil, errors.New("phase 1: no contributions")
	}
	prev, err := NewPhase1(power)
	if err != nil {
		return nil, nil, err
	}
	cs := make([]Contribution, len(states))
	key := fmt.Sprintf("%d/%x", power, beacon)
	for i, b := range states {
		if k, err := Phase1Power(b); err != nil || k != power || len(b) < 3*proofSize {
			return nil, nil, fmt.Errorf("contribution %d: not a phase-1 state of 2^%d", i+1, power)
		}
		cs[i] = Contribution{Name: nameOf(names, i), Hash: Hash(b), Challenge: Hash(prev), PublicKey: hex.EncodeToString(b[:3*proofSize])}
		key += "/" + cs[i].Hash
		prev = b
	}
	phase1Cache.Lock()
	defer phase1Cache.Unlock()
	if c, ok := phase1Cache.m[key]; ok {
		return c, cs, nil
	}
	ps := make([]*mpcsetup.Phase1, len(states))
	for i, b := range states {
		if ps[i], err = DecodePhase1(b); err != nil {
			return nil, nil, fmt.Errorf("contribution %d: %w", i+1, err)
		}
	}
	commons, err := verifyChain1(uint64(1)<<power, beacon, ps)
	if err != nil {
		return nil, nil, err
	}
	phase1Cache.m = map[string]*mpcsetup.SrsCommons{key: &commons}
	return &commons, cs, nil
}

// phase1Cache remembers the last verified phase 1 (its checks take 25 s at
// 2^15), keyed by size, beacon and the hash of every state: the
// coordinator and an in-process verifier check a chain once.
var phase1Cache = struct {
	sync.Mutex
	m map[string]*mpcsetup.SrsCommons
}{}

func verifyChain1(n uint64, beacon []byte, ps []*mpcsetup.Phase1) (mpcsetup.SrsCommons, error) {
	prev := mpcsetup.NewPhase1(n)
	for i, p := range ps {
		if err := prev.Verify(p); err != nil {
			return mpcsetup.SrsCommons{}, fmt.Errorf("phase 1 contribution %d: %w", i+1, err)
		}
		prev = p
	}
	return prev.Seal(beacon), nil
}

func nameOf(names []string, i int) string {
	if i < len(names) {
		return names[i]
	}
	return fmt.Sprintf("contributor %d", i+1)
}

// EncodeSRS and DecodeSRS store a sealed phase 1.
func EncodeSRS(c *mpcsetup.SrsCommons) []byte { return encode(c) }

// DecodeSRS reads a sealed phase 1 with every point checked.
func DecodeSRS(b []byte) (*mpcsetup.SrsCommons, error) {
	if len(b) < 8 {
		return nil, errors.New("srs: truncated")
	}
	n := binary.BigEndian.Uint64(b)
	if n < 2 || n > 1<<MaxPower || n&(n-1) != 0 {
		return nil, fmt.Errorf("srs: domain %d, want a power of two up to 2^%d", n, MaxPower)
	}
	if want := phase1Size(n, 0) - 3*proofSize - 1; uint64(len(b)) != want {
		return nil, fmt.Errorf("srs: %d bytes, a domain of %d takes %d", len(b), n, want)
	}
	c := new(mpcsetup.SrsCommons)
	if err := decode("srs", b, c); err != nil {
		return nil, err
	}
	return c, nil
}

// Truncate returns the prefix of a phase-1 SRS for a domain of n ≤ its own:
// powers of τ are a prefix of the larger ones, so one phase 1 serves every
// circuit up to its size, each at its own domain (and proving cost).
func Truncate(c *mpcsetup.SrsCommons, n uint64) (*mpcsetup.SrsCommons, error) {
	if have := uint64(len(c.G2.Tau)); n > have || n < 2 || n&(n-1) != 0 {
		return nil, fmt.Errorf("srs of domain %d cannot serve a domain of %d", have, n)
	}
	var t mpcsetup.SrsCommons
	t.G1.Tau = c.G1.Tau[:2*n-1]
	t.G1.AlphaTau = c.G1.AlphaTau[:n]
	t.G1.BetaTau = c.G1.BetaTau[:n]
	t.G2.Tau = c.G2.Tau[:n]
	t.G2.Beta = c.G2.Beta
	return &t, nil
}

// ---- phase 2 ----

// Domain is the FFT domain a constraint system needs from phase 1.
func Domain(r1cs *cs.R1CS) uint64 { return ecc.NextPowerOfTwo(uint64(r1cs.GetNbConstraints())) }

// Power is log2 of Domain: the phase-1 size the circuit needs.
func Power(r1cs *cs.R1CS) int { return bits.TrailingZeros64(Domain(r1cs)) }

// DecodeCircuit reads a serialized BN254 R1CS.
func DecodeCircuit(b []byte) (*cs.R1CS, error) {
	if len(b) == 0 || len(b) > MaxCircuitBytes {
		return nil, fmt.Errorf("circuit: %d bytes, want 1..%d", len(b), MaxCircuitBytes)
	}
	r := new(cs.R1CS)
	if err := decode("circuit", b, r); err != nil {
		return nil, err
	}
	return r, nil
}

// checkPhase2Size walks the length prefixes of an encoded phase-2 state and
// checks they add up to len(b) before the decoder allocates anything.
func checkPhase2Size(b []byte) error {
	if len(b) < 2 {
		return errors.New("phase 2 state: truncated")
	}
	nc := int(binary.BigEndian.Uint16(b))
	off := 2 + g1Size // δ₁
	slice := func() error {
		if off+4 > len(b) {
			return errors.New("phase 2 state: truncated")
		}
		n := int(binary.BigEndian.Uint32(b[off:]))
		if n > (len(b)-off-4)/g1Size {
			return fmt.Errorf("phase 2 state: a vector of %d points in %d bytes", n, len(b)-off-4)
		}
		off += 4 + n*g1Size
		return nil
	}
	for range 2 { // PKK, Z
		if err := slice(); err != nil {
			return err
		}
	}
	off += g2Size  // δ₂
	for range nc { // SigmaCKK
		if err := slice(); err != nil {
			return err
		}
	}
	off += nc*g2Size + proofSize + nc*proofSize // σ₂, δ proof, σ proofs
	if off+1 > len(b) {
		return errors.New("phase 2 state: truncated")
	}
	if end := off + 1 + int(b[off]); end != len(b) {
		return fmt.Errorf("phase 2 state: %d bytes, its header says %d", len(b), end)
	}
	return nil
}

// DecodePhase2 reads a phase-2 state with every point checked.
func DecodePhase2(b []byte) (*mpcsetup.Phase2, error) {
	if err := checkPhase2Size(b); err != nil {
		return nil, err
	}
	p := new(mpcsetup.Phase2)
	if err := decode("phase 2 state", b, p); err != nil {
		return nil, err
	}
	return p, nil
}

// phase2Key is the update proofs of a phase-2 state: δ's, then each σ's.
func phase2Key(p *mpcsetup.Phase2) string {
	var b bytes.Buffer
	p.Delta.WriteTo(&b)
	for i := range p.Sigmas {
		p.Sigmas[i].WriteTo(&b)
	}
	return hex.EncodeToString(b.Bytes())
}

// ContributePhase2 adds a contribution from fresh randomness to the
// phase-2 state in and returns the new state.
func ContributePhase2(in []byte, name string) ([]byte, Contribution, error) {
	p, err := DecodePhase2(in)
	if err != nil {
		return nil, Contribution{}, err
	}
	p.Contribute()
	out := encode(p)
	return out, Contribution{Name: name, Hash: Hash(out), Challenge: Hash(in), PublicKey: phase2Key(p)}, nil
}

// Phase2 is the public start of a circuit's phase 2: the initial state and
// the circuit's evaluations at τ, derived from the SRS without randomness.
// Deriving them is the expensive step of a ceremony (gnark's Initialize:
// Lagrange bases by group FFT, then every R1CS term; 6 s for mnist-mlp,
// about 85 s for mnist-cnn here), so NewPhase2 keeps the last few in memory
// by circuit and SRS hash: the coordinator and an in-process verifier
// derive them once.
type Phase2 struct {
	r1cs    *cs.R1CS
	srs     *mpcsetup.SrsCommons // truncated to the circuit's domain
	evals   mpcsetup.Phase2Evaluations
	start   *mpcsetup.Phase2
	initial []byte
}

var phase2Cache = struct {
	sync.Mutex
	keys []string
	m    map[string]*Phase2
}{m: map[string]*Phase2{}}

const phase2CacheSize = 2

// NewPhase2 derives (or recalls) the start of phase 2 for the circuit and
// SRS whose hashes are given (the callers hold their bytes).
func NewPhase2(r1cs *cs.R1CS, circuitHash string, srs *mpcsetup.SrsCommons, srsHash string) (*Phase2, error) {
	key := circuitHash + "/" + srsHash
	phase2Cache.Lock()
	defer phase2Cache.Unlock()
	if p, ok := phase2Cache.m[key]; ok {
		return p, nil
	}
	t, err := Truncate(srs, Domain(r1cs))
	if err != nil {
		return nil, err
	}
	p := &Phase2{r1cs: r1cs, srs: t, start: new(mpcsetup.Phase2)}
	p.evals = p.start.Initialize(r1cs, t)
	p.initial = encode(p.start)
	if len(phase2Cache.keys) == phase2CacheSize {
		delete(phase2Cache.m, phase2Cache.keys[0])
		phase2Cache.keys = phase2Cache.keys[1:]
	}
	phase2Cache.keys = append(phase2Cache.keys, key)
	phase2Cache.m[key] = p
	return p, nil
}

// Initial is the state the first contribution builds on.
func (p *Phase2) Initial() []byte { return p.initial }

// Verify checks a chain of phase-2 states, the first built on Initial, seals
// it with the public beacon and returns the keys with the transcript
// entries of the chain.
func (p *Phase2) Verify(beacon []byte, states [][]byte, names []string) (groth16.ProvingKey, groth16.VerifyingKey, []Contribution, error) {
	if len(states) == 0 {
		return nil, nil, nil, errors.New("phase 2: no contributions")
	}
	prev, prevHash := p.start, Hash(p.initial)
	cs := make([]Contribution, len(states))
	for i, b := range states {
		next, err := DecodePhase2(b)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("phase 2 contribution %d: %w", i+1, err)
		}
		if err := prev.Verify(next); err != nil {
			return nil, nil, nil, fmt.Errorf("phase 2 contribution %d: %w", i+1, err)
		}
		cs[i] = Contribution{Name: nameOf(names, i), Hash: Hash(b), Challenge: prevHash, PublicKey: phase2Key(next)}
		prev, prevHash = next, cs[i].Hash
	}
	pk, vk := prev.Seal(p.srs, &p.evals, beacon) // modifies prev: a decoded copy, never p.start
	return pk, vk, cs, nil
}

// EncodeKey is the checked binary form of a verifying key, as the verifier
// stores it.
func EncodeKey(vk groth16.VerifyingKey) []byte { return encode(vk) }

// ---- transcripts ----

// Format and Version of a transcript file.
const (
	Format  = "zkoracle.ceremony"
	Version = 1
)

// Phase1Transcript records a sealed phase 1.
type Phase1Transcript struct {
	Power         int            `json:"power"`
	Beacon        string         `json:"beacon"` // hex
	Contributions []Contribution `json:"contributions"`
	SRS           string         `json:"srs_sha256"` // of EncodeSRS of the sealed result
}

// Phase2Transcript records a sealed phase 2 of one circuit.
type Phase2Transcript struct {
	ModelID       string         `json:"model_id"`
	Circuit       string         `json:"circuit_sha256"` // of the serialized R1CS
	Constraints   int            `json:"constraints"`
	Domain        uint64         `json:"domain"`
	Beacon        string         `json:"beacon"` // hex
	Contributions []Contribution `json:"contributions"`
	VerifyingKey  string         `json:"verifying_key_sha256"` // of EncodeKey
}

// Transcript is a model's whole ceremony: the phase 1 it used and its
// phase 2. With the state files it names, anyone can check it from scratch.
type Transcript struct {
	Format  string           `json:"format"`
	Version int              `json:"version"`
	Phase1  Phase1Transcript `json:"phase1"`
	Phase2  Phase2Transcript `json:"phase2"`
}

// StateFile is the conventional file name of the i-th (0-based) state of a
// phase next to a transcript.
func StateFile(phase, i int) string { return fmt.Sprintf("phase%d-%02d.bin", phase, i+1) }

// Names returns the contributors' names of a chain.
func Names(cs []Contribution) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Name
	}
	return out
}

// Compare reports the first difference between a recorded chain and one
// recomputed from the states.
func Compare(recorded, got []Contribution) error {
	if len(recorded) != len(got) {
		return fmt.Errorf("%d contributions recorded, %d states", len(recorded), len(got))
	}
	for i := range got {
		if recorded[i] != got[i] {
			return fmt.Errorf("contribution %d (%s): recorded %+v, states give %+v", i+1, recorded[i].Name, recorded[i], got[i])
		}
	}
	return nil
}
