package verifier

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
	bolt "go.etcd.io/bbolt"

	"github.com/zkoracle/zkoracle/verifier/ceremony"
)

// The ceremony side of the verifier. Ceremony artifacts (phase-1 and
// phase-2 states, constraint systems) are megabytes, beyond the 2 MiB
// ingress limit, so they arrive as content-addressed blobs uploaded in
// chunks (upload_chunk) and leave the same way (get_blob): the pattern of
// an IC asset canister. Calls then name blobs by SHA-256.
//
// The verifier takes part in the ceremony twice:
//   - phase 1 (once per verifier): SetPhase1 verifies a powers-of-tau chain
//     and keeps the sealed SRS, but only if the chain includes a
//     contribution the verifier made itself (Contribute on a phase-1 state).
//   - phase 2 (once per model): Contribute adds the verifier's own random
//     δ (and σ) to the model's phase-2 state, and RegisterModel accepts the
//     verifying key only if it re-derives it from that SRS, the circuit and
//     a verified chain that includes the verifier's contribution.
//
// The verifier's secrets come from crypto/rand and are dropped when the
// call returns. Knowing τ (phase 1) or δ (phase 2) is enough to forge, so
// the verifier contributes to both: an operator who runs every other
// contribution still knows neither.

// Blob limits: a chunk, base64 in JSON, fits an ingress message; a blob fits the largest
// ceremony artifact this verifier accepts.
const (
	MaxChunkBytes = 1 << 20 // 1.33 MiB in base64 JSON
	MaxBlobBytes  = 256 << 20
	// DefaultMaxStoredBytes bounds all blobs and partial uploads together
	// (Options.MaxStoredBytes): the canister's stable memory is paid for.
	// Blobs a call has consumed (phase-1 states, a replaced SRS, a
	// registered model's circuit and states) are deleted; transcripts keep
	// their hashes.
	DefaultMaxStoredBytes = 1 << 30
)

var (
	bucketBlobs    = []byte("blobs")         // sha256 -> complete blob
	bucketUploads  = []byte("uploads")       // sha256 -> partial blob
	bucketOwn      = []byte("contributions") // sha256 of a state the verifier produced -> OwnContribution
	bucketCeremony = []byte("ceremony")      // "srs" -> Phase1Record; "model/<id>" -> transcript
)

// OwnContribution records a contribution the verifier made: the state it
// built on, the state it produced and its public key. The secret is gone.
type OwnContribution struct {
	Phase       int                   `json:"phase"`
	ModelID     string                `json:"model_id,omitempty"`
	Entry       ceremony.Contribution `json:"contribution"`
	Contributed time.Time             `json:"contributed"`
}

// Phase1Record is the verifier's phase 1: the transcript it verified, and
// which contribution in it is its own. The sealed SRS is kept as a blob.
type Phase1Record struct {
	ceremony.Phase1Transcript
	Own int       `json:"own_contribution"` // index in Contributions
	Set time.Time `json:"set"`
}

// ModelCeremony is a registered model's ceremony as the verifier checked
// it, with the index of its own contribution in each phase.
type ModelCeremony struct {
	ceremony.Transcript
	OwnPhase1 int `json:"own_phase1_contribution"`
	OwnPhase2 int `json:"own_phase2_contribution"`
}

// CeremonySetup is what RegisterRequest carries for keys from a ceremony:
// blobs already uploaded, named by SHA-256.
type CeremonySetup struct {
	Circuit       string   `json:"circuit"`
	Contributions []string `json:"contributions"`
	Names         []string `json:"names,omitempty"`
	Beacon        string   `json:"beacon"` // hex, published after the last contribution
}

// SetupMPC is the setup description of keys from a verified ceremony.
const SetupMPC = ceremony.SetupMPC

// UploadChunk is an update for controllers: it appends data at offset to
// the blob of the given SHA-256 and size. The blob becomes usable when its
// last byte arrives and its hash matches. Sending a chunk again is a no-op.
func (s *Service) UploadChunk(caller, sha string, size, offset int, data []byte) (bool, Cost, error) {
	if caller == "" {
		return false, Cost{}, apiErr(http.StatusUnauthorized, "not_controller", "upload_chunk needs a controller's bearer token")
	}
	cost := plainCost(len(data))
	cost.charge(true)
	switch {
	case !hexID.MatchString(sha):
		return false, cost, apiErr(http.StatusBadRequest, "bad_hash", "sha256 must be 64 lower-case hex digits")
	case size <= 0 || size > MaxBlobBytes:
		return false, cost, apiErr(http.StatusBadRequest, "bad_size", "size %d, want 1..%d", size, MaxBlobBytes)
	case len(data) == 0 || len(data) > MaxChunkBytes:
		return false, cost, apiErr(http.StatusBadRequest, "bad_chunk", "chunk of %d bytes, want 1..%d", len(data), MaxChunkBytes)
	case offset < 0 || offset+len(data) > size:
		return false, cost, apiErr(http.StatusBadRequest, "bad_chunk", "chunk [%d, %d) outside a blob of %d bytes", offset, offset+len(data), size)
	}
	done := false
	err := s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketBlobs).Get([]byte(sha)) != nil {
			done = true
			return nil
		}
		part := tx.Bucket(bucketUploads).Get([]byte(sha))
		switch {
		case offset < len(part):
			if !bytes.Equal(part[offset:min(len(part), offset+len(data))], data[:min(len(data), len(part)-offset)]) {
				return apiErr(http.StatusConflict, "chunk_mismatch", "chunk at %d differs from the bytes already uploaded", offset)
			}
			if offset+len(data) <= len(part) {
				return nil
			}
			data = data[len(part)-offset:]
		case offset > len(part):
			return apiErr(http.StatusConflict, "chunk_gap", "chunk at %d, the upload has %d bytes: send chunks in order", offset, len(part))
		}
		if used := storedBytes(tx); used+len(data) > s.maxStored {
			return apiErr(http.StatusConflict, "storage_full", "blobs and uploads hold %d bytes, the limit is %d: finish or register what is uploaded first", used, s.maxStored)
		}
		part = append(slices.Clone(part), data...)
		if len(part) < size {
			return tx.Bucket(bucketUploads).Put([]byte(sha), part)
		}
		if h := sha256.Sum256(part); hex.EncodeToString(h[:]) != sha {
			if err := tx.Bucket(bucketUploads).Delete([]byte(sha)); err != nil {
				return err
			}
			return apiErr(http.StatusUnprocessableEntity, "hash_mismatch", "the %d bytes uploaded hash to %x, not %s (upload discarded)", size, h, sha)
		}
		done = true
		if err := tx.Bucket(bucketUploads).Delete([]byte(sha)); err != nil {
			return err
		}
		return tx.Bucket(bucketBlobs).Put([]byte(sha), part)
	})
	return done, cost, err
}

// storedBytes is the size of all blobs and partial uploads.
func storedBytes(tx *bolt.Tx) int {
	n := 0
	for _, b := range [][]byte{bucketBlobs, bucketUploads} {
		tx.Bucket(b).ForEach(func(_, v []byte) error { n += len(v); return nil })
	}
	return n
}

// dropBlobs deletes blobs a call has consumed.
func dropBlobs(tx *bolt.Tx, shas ...string) error {
	for _, h := range shas {
		if err := tx.Bucket(bucketBlobs).Delete([]byte(h)); err != nil {
			return err
		}
	}
	return nil
}

// Blob is a query for up to length bytes of a blob from offset, and its size.
func (s *Service) Blob(sha string, offset, length int) ([]byte, int, error) {
	length = min(length, MaxChunkBytes)
	var out []byte
	size := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketBlobs).Get([]byte(sha))
		if b == nil {
			return apiErr(http.StatusNotFound, "unknown_blob", "no blob %q", sha)
		}
		size = len(b)
		if offset < 0 || offset > len(b) || length < 0 {
			return apiErr(http.StatusBadRequest, "bad_range", "offset %d, length %d of a %d-byte blob", offset, length, len(b))
		}
		out = slices.Clone(b[offset:min(len(b), offset+length)])
		return nil
	})
	return out, size, err
}

// blob reads a complete blob (nil if absent).
func (s *Service) blob(sha string) []byte {
	var out []byte
	s.db.View(func(tx *bolt.Tx) error {
		out = slices.Clone(tx.Bucket(bucketBlobs).Get([]byte(sha)))
		return nil
	})
	return out
}

func (s *Service) blobs(what string, shas []string) ([][]byte, error) {
	out := make([][]byte, len(shas))
	for i, h := range shas {
		if out[i] = s.blob(h); out[i] == nil {
			return nil, apiErr(http.StatusNotFound, "unknown_blob", "%s %d: no blob %q (upload it first)", what, i+1, h)
		}
	}
	return out, nil
}

// ContributeRequest asks the verifier for its contribution to the phase-1
// state or the phase-2 state of a model in blob State.
type ContributeRequest struct {
	Phase   int    `json:"phase"`
	ModelID string `json:"model_id,omitempty"` // phase 2
	State   string `json:"state"`
}

// Contribute is an update for controllers: the verifier adds its own
// randomness to a ceremony state and stores the new state as a blob.
func (s *Service) Contribute(caller string, r ContributeRequest) (*OwnContribution, Cost, error) {
	if caller == "" {
		return nil, Cost{}, apiErr(http.StatusUnauthorized, "not_controller", "contribute needs a controller's bearer token")
	}
	if r.Phase == 2 && !hexID.MatchString(r.ModelID) {
		return nil, Cost{}, apiErr(http.StatusBadRequest, "bad_model_id", "phase 2 needs the model_id the state is for")
	}
	in := s.blob(r.State)
	if in == nil {
		return nil, Cost{}, apiErr(http.StatusNotFound, "unknown_blob", "no blob %q (upload the state first)", r.State)
	}
	if r.Phase != 1 && r.Phase != 2 {
		return nil, Cost{}, apiErr(http.StatusBadRequest, "bad_phase", "phase %d, want 1 or 2", r.Phase)
	}
	out, entry, err := ceremony.Contribute(r.Phase, in, "verifier")
	cost := ceremonyCost(len(in), 1)
	cost.charge(true)
	if err != nil {
		return nil, cost, apiErr(http.StatusBadRequest, "bad_state", "%v", err)
	}
	own := &OwnContribution{Phase: r.Phase, ModelID: r.ModelID, Entry: entry, Contributed: time.Now().UTC()}
	err = s.update(func(tx *bolt.Tx) error {
		if r.Phase == 2 && tx.Bucket(bucketModels).Get([]byte(r.ModelID)) != nil {
			return apiErr(http.StatusConflict, "model_exists", "model %s is already registered", r.ModelID)
		}
		if used := storedBytes(tx); used+len(out) > s.maxStored {
			return apiErr(http.StatusConflict, "storage_full", "blobs and uploads hold %d bytes, the limit is %d", used, s.maxStored)
		}
		if err := tx.Bucket(bucketBlobs).Put([]byte(entry.Hash), out); err != nil {
			return err
		}
		return putJSON(tx, bucketOwn, entry.Hash, own)
	})
	if err != nil {
		return nil, cost, err
	}
	s.log.Info("ceremony contribution", "caller", caller, "phase", r.Phase, "model_id", r.ModelID, "state", entry.Hash)
	return own, cost, nil
}

// ownIndex returns the index of the verifier's own contribution for the
// phase (and model) in a verified chain, or -1.
func (s *Service) ownIndex(phase int, modelID string, chain []ceremony.Contribution) int {
	idx := -1
	s.db.View(func(tx *bolt.Tx) error {
		for i, c := range chain {
			own, err := getJSON[OwnContribution](tx, bucketOwn, c.Hash)
			if err == nil && own != nil && own.Phase == phase && own.ModelID == modelID && own.Entry.PublicKey == c.PublicKey {
				idx = i
			}
		}
		return nil
	})
	return idx
}

// SetPhase1Request names a phase-1 chain of uploaded states.
type SetPhase1Request struct {
	Power         int      `json:"power"`
	Contributions []string `json:"contributions"`
	Names         []string `json:"names,omitempty"`
	Beacon        string   `json:"beacon"`
}

// SetPhase1 is an update for controllers: it verifies a phase-1 chain that
// includes the verifier's own contribution, seals it with the beacon and
// keeps the SRS for every later model. A verifier has one phase 1; setting
// another replaces it for models registered afterwards.
func (s *Service) SetPhase1(caller string, r SetPhase1Request) (*Phase1Record, Cost, error) {
	if caller == "" {
		return nil, Cost{}, apiErr(http.StatusUnauthorized, "not_controller", "set_phase1 needs a controller's bearer token")
	}
	beacon, err := hex.DecodeString(r.Beacon)
	if err != nil || len(beacon) == 0 {
		return nil, Cost{}, apiErr(http.StatusBadRequest, "bad_beacon", "beacon must be non-empty hex")
	}
	states, err := s.blobs("phase 1 contribution", r.Contributions)
	if err != nil {
		return nil, Cost{}, err
	}
	cost := ceremonyCost(totalLen(states), len(states))
	cost.charge(true)
	srs, chain, err := ceremony.VerifyPhase1(r.Power, beacon, states, r.Names)
	if err != nil {
		return nil, cost, apiErr(http.StatusUnprocessableEntity, "bad_ceremony", "%v", err)
	}
	own := s.ownIndex(1, "", chain)
	if own < 0 {
		return nil, cost, apiErr(http.StatusForbidden, "no_own_contribution", "the phase-1 chain does not include a contribution by this verifier")
	}
	enc := ceremony.EncodeSRS(srs)
	rec := &Phase1Record{Phase1Transcript: ceremony.Phase1Transcript{Power: r.Power, Beacon: r.Beacon, Contributions: chain, SRS: ceremony.Hash(enc)},
		Own: own, Set: time.Now().UTC()}
	err = s.update(func(tx *bolt.Tx) error {
		if err := dropBlobs(tx, r.Contributions...); err != nil {
			return err
		}
		if old, err := getJSON[Phase1Record](tx, bucketCeremony, "srs"); err != nil {
			return err
		} else if old != nil && old.SRS != rec.SRS {
			if err := dropBlobs(tx, old.SRS); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketBlobs).Put([]byte(rec.SRS), enc); err != nil {
			return err
		}
		return putJSON(tx, bucketCeremony, "srs", rec)
	})
	if err != nil {
		return nil, cost, err
	}
	s.mu.Lock()
	s.srs = nil // decoded again on next use
	s.mu.Unlock()
	s.log.Info("phase 1 set", "caller", caller, "power", r.Power, "contributions", len(chain), "srs", rec.SRS)
	return rec, cost, nil
}

// Phase1 is a query for the verifier's phase-1 record (nil if none).
func (s *Service) Phase1() (*Phase1Record, error) {
	var rec *Phase1Record
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		rec, err = getJSON[Phase1Record](tx, bucketCeremony, "srs")
		return err
	})
	return rec, err
}

// phase1SRS returns the sealed, decoded SRS (cached).
func (s *Service) phase1SRS() (*Phase1Record, *mpcsetup.SrsCommons, error) {
	rec, err := s.Phase1()
	if err != nil {
		return nil, nil, err
	}
	if rec == nil {
		return nil, nil, apiErr(http.StatusConflict, "no_phase1", "this verifier has no phase 1 yet (set_phase1)")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srs != nil && s.srsHash == rec.SRS {
		return rec, s.srs, nil
	}
	srs, err := ceremony.DecodeSRS(s.blob(rec.SRS))
	if err != nil {
		return nil, nil, fmt.Errorf("stored srs: %w", err)
	}
	s.srs, s.srsHash = srs, rec.SRS
	return rec, srs, nil
}

// checkCeremony re-derives a model's verifying key from the verifier's SRS,
// the circuit and the phase-2 chain, which must include the verifier's own
// contribution for this model. It returns the transcript and the key bytes.
func (s *Service) checkCeremony(modelID string, c *CeremonySetup) (*ModelCeremony, []byte, Cost, error) {
	beacon, err := hex.DecodeString(c.Beacon)
	if err != nil || len(beacon) == 0 {
		return nil, nil, Cost{}, apiErr(http.StatusBadRequest, "bad_beacon", "beacon must be non-empty hex")
	}
	p1, srs, err := s.phase1SRS()
	if err != nil {
		return nil, nil, Cost{}, err
	}
	circuit := s.blob(c.Circuit)
	if circuit == nil {
		return nil, nil, Cost{}, apiErr(http.StatusNotFound, "unknown_blob", "circuit: no blob %q (upload it first)", c.Circuit)
	}
	states, err := s.blobs("phase 2 contribution", c.Contributions)
	if err != nil {
		return nil, nil, Cost{}, err
	}
	cost := ceremonyCost(len(circuit)+totalLen(states), len(states)+1)
	cost.charge(true)
	r1cs, err := ceremony.DecodeCircuit(circuit)
	if err != nil {
		return nil, nil, cost, apiErr(http.StatusBadRequest, "bad_circuit", "%v", err)
	}
	p2, err := ceremony.NewPhase2(r1cs, c.Circuit, srs, p1.SRS)
	if err != nil {
		return nil, nil, cost, apiErr(http.StatusUnprocessableEntity, "bad_ceremony", "%v", err)
	}
	_, vk, chain, err := p2.Verify(beacon, states, c.Names)
	if err != nil {
		return nil, nil, cost, apiErr(http.StatusUnprocessableEntity, "bad_ceremony", "%v", err)
	}
	own := s.ownIndex(2, modelID, chain)
	if own < 0 {
		return nil, nil, cost, apiErr(http.StatusForbidden, "no_own_contribution", "the phase-2 chain does not include this verifier's contribution for model %s", modelID)
	}
	key := ceremony.EncodeKey(vk)
	t := &ModelCeremony{Transcript: ceremony.Transcript{Format: ceremony.Format, Version: ceremony.Version, Phase1: p1.Phase1Transcript,
		Phase2: ceremony.Phase2Transcript{ModelID: modelID, Circuit: c.Circuit, Constraints: r1cs.GetNbConstraints(), Domain: ceremony.Domain(r1cs),
			Beacon: c.Beacon, Contributions: chain, VerifyingKey: ceremony.Hash(key)}}, OwnPhase1: p1.Own, OwnPhase2: own}
	return t, key, cost, nil
}

// CeremonyTranscript is a query for a registered model's ceremony.
func (s *Service) CeremonyTranscript(modelID string) (*ModelCeremony, error) {
	var t *ModelCeremony
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		t, err = getJSON[ModelCeremony](tx, bucketCeremony, "model/"+modelID)
		return err
	})
	if err == nil && t == nil {
		return nil, apiErr(http.StatusNotFound, "no_transcript", "no ceremony transcript for model %q", modelID)
	}
	return t, err
}

func totalLen(bs [][]byte) int {
	n := 0
	for _, b := range bs {
		n += len(b)
	}
	return n
}
