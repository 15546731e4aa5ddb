package verifier

import (
	"cmp"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
	bolt "go.etcd.io/bbolt"

	"github.com/zkoracle/zkoracle/model/layout"
	"github.com/zkoracle/zkoracle/verifier/ceremony"
	"github.com/zkoracle/zkoracle/verifier/core"
)

// Error is an API error: the HTTP status, a stable code and a message safe
// to show the caller.
type Error struct {
	Status int    `json:"-"`
	Code   string `json:"code"`
	Msg    string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Msg }

func apiErr(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Options configures a Service.
type Options struct {
	// Path is the bbolt state file.
	Path string
	// AllowDevKeys accepts keys from a single-party setup (development only:
	// whoever ran that setup can forge proofs).
	AllowDevKeys bool
	// Bootstrap, if the state has no controllers yet, becomes the first.
	Bootstrap *Controller
	// MaxStoredBytes bounds ceremony blobs and uploads (default
	// DefaultMaxStoredBytes).
	MaxStoredBytes int
	Logger         *slog.Logger
}

// DevSetupMarker is the setup description of single-party keys, as the
// prover's store writes it.
const DevSetupMarker = ceremony.SetupSingleParty

// Service is the canister-like verifier. Update calls run one at a time, in
// arrival order, each in one bbolt transaction: an error rolls the whole
// call back, like a trap. Query calls run concurrently on a read-only
// snapshot and never change state.
type Service struct {
	db        *bolt.DB
	updateMu  sync.Mutex
	log       *slog.Logger
	allowDev  bool
	maxStored int

	keysMu sync.RWMutex
	keys   map[string]groth16.VerifyingKey // decoded keys of registered models

	mu      sync.Mutex // guards the decoded SRS
	srs     *mpcsetup.SrsCommons
	srsHash string

	verifications, rejections atomic.Uint64
}

// Open opens (or creates) the state and returns the service.
func Open(o Options) (*Service, error) {
	db, err := openState(o.Path)
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{db: db, log: o.Logger, allowDev: o.AllowDevKeys, keys: map[string]groth16.VerifyingKey{},
		maxStored: cmp.Or(o.MaxStoredBytes, DefaultMaxStoredBytes)}
	if o.Bootstrap != nil {
		err := db.Update(func(tx *bolt.Tx) error {
			if tx.Bucket(bucketControllers).Stats().KeyN > 0 {
				return nil
			}
			return putJSON(tx, bucketControllers, o.Bootstrap.Name, o.Bootstrap)
		})
		if err != nil {
			db.Close()
			return nil, err
		}
	}
	return s, nil
}

// Close closes the state file.
func (s *Service) Close() error { return s.db.Close() }

// HashToken returns the hex SHA-256 a Controller stores for a bearer token.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// Caller resolves a bearer token to a controller name ("" if none matches).
func (s *Service) Caller(token string) string {
	if token == "" {
		return ""
	}
	want := HashToken(token)
	name := ""
	s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketControllers).ForEach(func(k, v []byte) error {
			c, err := getJSON[Controller](tx, bucketControllers, string(k))
			if err == nil && c != nil && subtle.ConstantTimeCompare([]byte(c.TokenHash), []byte(want)) == 1 {
				name = c.Name
			}
			return nil
		})
	})
	return name
}

// update runs f as one atomic update call.
func (s *Service) update(f func(tx *bolt.Tx) error) error {
	s.updateMu.Lock()
	defer s.updateMu.Unlock()
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := f(tx); err != nil {
			return err
		}
		return updateStats(tx, func(st *Stats) { st.Updates++ })
	})
}

var hexID = regexp.MustCompile(`^[0-9a-f]{64}$`)

// RegisterRequest registers a model's verifying key. Keys come from a
// ceremony (Ceremony set: the verifier re-derives the key and Setup is
// SetupMPC) or, on a verifier started for development, from a single-party
// setup (Setup is DevSetupMarker).
type RegisterRequest struct {
	ModelID       string         `json:"model_id"`
	Name          string         `json:"name"`
	VerifyingKey  []byte         `json:"verifying_key"`
	LayoutVersion int            `json:"layout_version"`
	InputShape    []int          `json:"input_shape"`
	OutputShape   []int          `json:"output_shape"`
	Setup         string         `json:"setup"`
	Ceremony      *CeremonySetup `json:"ceremony,omitempty"`
}

func shapeSize(shape []int) (int, error) {
	if len(shape) == 0 || len(shape) > 4 {
		return 0, fmt.Errorf("shape %v: rank must be 1 to 4", shape)
	}
	n := 1
	for _, d := range shape {
		if d <= 0 || d > core.MaxValues {
			return 0, fmt.Errorf("shape %v: bad dimension %d", shape, d)
		}
		if n *= d; n > core.MaxValues {
			return 0, fmt.Errorf("shape %v: more than %d values", shape, core.MaxValues)
		}
	}
	return n, nil
}

// RegisterModel is an update call for controllers. Registering the same
// key again is a no-op; a different key under a registered ID is refused.
func (s *Service) RegisterModel(caller string, r RegisterRequest) (*ModelRecord, Cost, error) {
	if caller == "" {
		return nil, Cost{}, apiErr(http.StatusUnauthorized, "not_controller", "register_model needs a controller's bearer token")
	}
	if !hexID.MatchString(r.ModelID) {
		return nil, Cost{}, apiErr(http.StatusBadRequest, "bad_model_id", "model_id must be 64 lower-case hex digits (SHA-256 of the model)")
	}
	if r.LayoutVersion != layout.Version {
		return nil, Cost{}, apiErr(http.StatusBadRequest, "bad_layout", "layout_version %d, this verifier speaks %d", r.LayoutVersion, layout.Version)
	}
	nIn, err := shapeSize(r.InputShape)
	if err != nil {
		return nil, Cost{}, apiErr(http.StatusBadRequest, "bad_shape", "input %v", err)
	}
	nOut, err := shapeSize(r.OutputShape)
	if err != nil {
		return nil, Cost{}, apiErr(http.StatusBadRequest, "bad_shape", "output %v", err)
	}
	var transcript *ModelCeremony
	var cost Cost
	switch {
	case r.Ceremony != nil && s.registered(r.ModelID, r.VerifyingKey):
		// Already registered with this key (a restart re-registering):
		// the ceremony was checked then; the update below is a no-op.
		r.Setup = SetupMPC
	case r.Ceremony != nil:
		if r.Setup != "" && r.Setup != SetupMPC {
			return nil, Cost{}, apiErr(http.StatusBadRequest, "bad_setup", "setup %q with a ceremony, want %q or empty", r.Setup, SetupMPC)
		}
		t, key, c, err := s.checkCeremony(r.ModelID, r.Ceremony)
		if err != nil {
			return nil, c, err
		}
		if len(r.VerifyingKey) > 0 && !slices.Equal(r.VerifyingKey, key) {
			return nil, c, apiErr(http.StatusUnprocessableEntity, "key_mismatch", "the verifying key sent is not the one the ceremony yields (sha256 %s)", t.Phase2.VerifyingKey)
		}
		transcript, cost, r.VerifyingKey, r.Setup = t, c, key, SetupMPC
	case r.Setup == DevSetupMarker && !s.allowDev:
		return nil, Cost{}, apiErr(http.StatusForbidden, "dev_key_refused", "keys from a single-party setup are refused (start the verifier with --allow-dev-keys for development)")
	case r.Setup != DevSetupMarker:
		return nil, Cost{}, apiErr(http.StatusBadRequest, "no_ceremony", "a key needs a ceremony this verifier took part in (or, for development, setup %q on a verifier started with --allow-dev-keys)", DevSetupMarker)
	}
	vk, err := core.DecodeKey(r.VerifyingKey)
	if err != nil {
		return nil, Cost{}, apiErr(http.StatusBadRequest, "bad_key", "%v", err)
	}
	if got, want := core.PublicInputs(vk), layout.Len(nIn, nOut); got != want {
		return nil, Cost{}, apiErr(http.StatusBadRequest, "bad_key", "key takes %d public inputs, a %d-in %d-out model needs %d (layout v%d)", got, nIn, nOut, want, layout.Version)
	}
	if transcript == nil {
		cost = registerCost(vk.NbG1()+vk.NbG2(), len(r.VerifyingKey))
		if !cost.charge(true) {
			return nil, cost, apiErr(http.StatusUnprocessableEntity, "over_budget", "call needs %d instructions, update budget %d", cost.Instructions, UpdateBudget)
		}
	}
	rec := &ModelRecord{ID: r.ModelID, Name: r.Name, Key: r.VerifyingKey, LayoutVersion: r.LayoutVersion,
		InputShape: r.InputShape, OutputShape: r.OutputShape, Setup: r.Setup, RegisteredBy: caller, Registered: time.Now().UTC()}
	err = s.update(func(tx *bolt.Tx) error {
		old, err := getJSON[ModelRecord](tx, bucketModels, r.ModelID)
		if err != nil {
			return err
		}
		if old != nil {
			if !slices.Equal(old.Key, r.VerifyingKey) {
				return apiErr(http.StatusConflict, "model_exists", "model %s is registered with another key", r.ModelID)
			}
			rec = old
			if r.Ceremony != nil { // sent again (a restart): its blobs are not needed
				return dropBlobs(tx, append([]string{r.Ceremony.Circuit}, r.Ceremony.Contributions...)...)
			}
			return nil
		}
		if err := putJSON(tx, bucketModels, r.ModelID, rec); err != nil {
			return err
		}
		if transcript != nil {
			if err := putJSON(tx, bucketCeremony, "model/"+r.ModelID, transcript); err != nil {
				return err
			}
			if err := dropBlobs(tx, append([]string{r.Ceremony.Circuit}, r.Ceremony.Contributions...)...); err != nil {
				return err
			}
		}
		return updateStats(tx, func(st *Stats) { st.Models++ })
	})
	if err != nil {
		return nil, cost, err
	}
	s.keysMu.Lock()
	s.keys[r.ModelID] = vk
	s.keysMu.Unlock()
	s.log.Info("model registered", "caller", caller, "model_id", r.ModelID, "name", r.Name, "setup", r.Setup)
	return rec, cost, nil
}

// registered reports whether the model is registered with exactly key.
func (s *Service) registered(id string, key []byte) bool {
	found := false
	s.db.View(func(tx *bolt.Tx) error {
		old, err := getJSON[ModelRecord](tx, bucketModels, id)
		found = err == nil && old != nil && len(key) > 0 && slices.Equal(old.Key, key)
		return nil
	})
	return found
}

// RetireModel is an update call for controllers: a retired model accepts no
// more results; its accepted results stay.
func (s *Service) RetireModel(caller, id string) (Cost, error) {
	if caller == "" {
		return Cost{}, apiErr(http.StatusUnauthorized, "not_controller", "retire_model needs a controller's bearer token")
	}
	cost := plainCost(len(id))
	cost.charge(true)
	err := s.update(func(tx *bolt.Tx) error {
		rec, err := getJSON[ModelRecord](tx, bucketModels, id)
		if err != nil {
			return err
		}
		if rec == nil {
			return apiErr(http.StatusNotFound, "unknown_model", "no model %q", id)
		}
		rec.Retired = true
		return putJSON(tx, bucketModels, id, rec)
	})
	if err == nil {
		s.log.Info("model retired", "caller", caller, "model_id", id)
	}
	return cost, err
}

// SetControllers replaces the controller list (update, controllers only).
func (s *Service) SetControllers(caller string, cs []Controller) (Cost, error) {
	if caller == "" {
		return Cost{}, apiErr(http.StatusUnauthorized, "not_controller", "set_controllers needs a controller's bearer token")
	}
	if len(cs) == 0 {
		return Cost{}, apiErr(http.StatusBadRequest, "no_controllers", "a verifier needs at least one controller")
	}
	for _, c := range cs {
		if c.Name == "" || !hexID.MatchString(c.TokenHash) {
			return Cost{}, apiErr(http.StatusBadRequest, "bad_controller", "each controller needs a name and a 64-hex token_sha256")
		}
	}
	cost := plainCost(64 * len(cs))
	cost.charge(true)
	err := s.update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketControllers); err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bucketControllers); err != nil {
			return err
		}
		for _, c := range cs {
			if err := putJSON(tx, bucketControllers, c.Name, c); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		s.log.Info("controllers set", "caller", caller, "count", len(cs))
	}
	return cost, err
}

// VerifyRequest is a claim and its proof.
type VerifyRequest struct {
	ModelID string `json:"model_id"`
	core.Claim
	Proof []byte `json:"proof"`
}

// SubmitRequest is a result offered for acceptance.
type SubmitRequest struct {
	RequestID string `json:"request_id"`
	VerifyRequest
}

// check verifies a request against a registered model read in tx.
func (s *Service) check(tx *bolt.Tx, r VerifyRequest, nBytes int, update bool) (*ModelRecord, Cost, error) {
	rec, err := getJSON[ModelRecord](tx, bucketModels, r.ModelID)
	if err != nil {
		return nil, Cost{}, err
	}
	if rec == nil {
		return nil, Cost{}, apiErr(http.StatusNotFound, "unknown_model", "no model %q is registered", r.ModelID)
	}
	vk, err := s.key(rec)
	if err != nil {
		return nil, Cost{}, err
	}
	cost := verifyCost(core.PublicInputs(vk), core.NbCommitments(vk), nBytes)
	if !cost.charge(update) {
		return nil, cost, apiErr(http.StatusUnprocessableEntity, "over_budget", "call needs %d instructions, budget %d", cost.Instructions, budget(update))
	}
	proof, err := core.DecodeProof(r.Proof)
	if err != nil {
		return nil, cost, apiErr(http.StatusBadRequest, "bad_proof", "%v", err)
	}
	nIn, _ := shapeSize(rec.InputShape)
	nOut, _ := shapeSize(rec.OutputShape)
	s.verifications.Add(1)
	if err := core.Check(vk, proof, r.Claim, nIn, nOut); err != nil {
		s.rejections.Add(1)
		if errors.Is(err, core.ErrInvalid) {
			return rec, cost, apiErr(http.StatusUnprocessableEntity, "invalid_proof", "the proof does not verify for this model, input and output")
		}
		return rec, cost, apiErr(http.StatusBadRequest, "bad_claim", "%v", err)
	}
	return rec, cost, nil
}

func budget(update bool) int64 {
	if update {
		return UpdateBudget
	}
	return QueryBudget
}

// key returns the decoded verifying key of a registered model.
func (s *Service) key(rec *ModelRecord) (groth16.VerifyingKey, error) {
	s.keysMu.RLock()
	vk, ok := s.keys[rec.ID]
	s.keysMu.RUnlock()
	if ok {
		return vk, nil
	}
	vk, err := core.DecodeKey(rec.Key) // after a restart: state holds the bytes
	if err != nil {
		return nil, fmt.Errorf("stored key of %s: %w", rec.ID, err)
	}
	s.keysMu.Lock()
	s.keys[rec.ID] = vk
	s.keysMu.Unlock()
	return vk, nil
}

// Verify is a query: does the proof verify for the claim? An invalid proof
// is an answer (valid=false and the reason), not an error.
func (s *Service) Verify(r VerifyRequest, nBytes int) (bool, string, Cost, error) {
	var cost Cost
	var verr error
	err := s.db.View(func(tx *bolt.Tx) error {
		_, cost, verr = s.check(tx, r, nBytes, false)
		return nil
	})
	if err != nil {
		return false, "", cost, err
	}
	var ae *Error
	if errors.As(verr, &ae) && (ae.Code == "invalid_proof" || ae.Code == "bad_proof" || ae.Code == "bad_claim") {
		return false, ae.Msg, cost, nil
	}
	if verr != nil {
		return false, "", cost, verr
	}
	return true, "", cost, nil
}

// SubmitResult is an update: the result is accepted only if the proof
// verifies with public inputs rebuilt from the submitted input and output.
// The same submission twice is one result; another result under an existing
// request ID is refused.
func (s *Service) SubmitResult(caller string, r SubmitRequest, nBytes int) (*ResultRecord, Cost, error) {
	if r.RequestID == "" || len(r.RequestID) > 128 {
		return nil, Cost{}, apiErr(http.StatusBadRequest, "bad_request_id", "request_id must be 1 to 128 characters")
	}
	var out *ResultRecord
	var cost Cost
	err := s.update(func(tx *bolt.Tx) error {
		old, err := getJSON[ResultRecord](tx, bucketResults, r.RequestID)
		if err != nil {
			return err
		}
		if old != nil {
			if old.ModelID == r.ModelID && slices.Equal(old.Input, r.Input) && slices.Equal(old.Output, r.Output) {
				out = old
				cost = plainCost(nBytes)
				cost.charge(true)
				return nil
			}
			return apiErr(http.StatusConflict, "request_exists", "request %q already has another accepted result", r.RequestID)
		}
		rec, c, err := s.check(tx, r.VerifyRequest, nBytes, true)
		cost = c
		if err != nil {
			return err
		}
		if rec.Retired {
			return apiErr(http.StatusGone, "model_retired", "model %s is retired", rec.ID)
		}
		out = &ResultRecord{RequestID: r.RequestID, ModelID: r.ModelID, Input: r.Input, Output: r.Output,
			Class: layout.Argmax(r.Output), Proof: r.Proof, Accepted: time.Now().UTC(), Caller: caller, Cost: cost}
		if err := putJSON(tx, bucketResults, r.RequestID, out); err != nil {
			return err
		}
		return updateStats(tx, func(st *Stats) { st.Results++ })
	})
	if err != nil {
		return nil, cost, err
	}
	return out, cost, nil
}

// GetResult is a query for an accepted result.
func (s *Service) GetResult(id string) (*ResultRecord, error) {
	var rec *ResultRecord
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		rec, err = getJSON[ResultRecord](tx, bucketResults, id)
		return err
	})
	if err == nil && rec == nil {
		return nil, apiErr(http.StatusNotFound, "unknown_request", "no accepted result for request %q", id)
	}
	return rec, err
}

// ModelInfo is a registered model as list_models shows it.
type ModelInfo struct {
	ID          string `json:"model_id"`
	Name        string `json:"name"`
	KeySHA256   string `json:"verifying_key_sha256"`
	InputShape  []int  `json:"input_shape"`
	OutputShape []int  `json:"output_shape"`
	Setup       string `json:"setup"`
	Retired     bool   `json:"retired"`
}

// ListModels is a query.
func (s *Service) ListModels() ([]ModelInfo, error) {
	var out []ModelInfo
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketModels).ForEach(func(k, _ []byte) error {
			rec, err := getJSON[ModelRecord](tx, bucketModels, string(k))
			if err != nil {
				return err
			}
			h := sha256.Sum256(rec.Key)
			out = append(out, ModelInfo{rec.ID, rec.Name, hex.EncodeToString(h[:]), rec.InputShape, rec.OutputShape, rec.Setup, rec.Retired})
			return nil
		})
	})
	return out, err
}

// Stats is a query: counters from state, plus this process's verification
// counts (rejected calls roll back, so they are not in state).
func (s *Service) Stats() (Stats, error) {
	var st Stats
	err := s.db.View(func(tx *bolt.Tx) error {
		st = readStats(tx)
		st.Blobs = tx.Bucket(bucketBlobs).Stats().KeyN + tx.Bucket(bucketUploads).Stats().KeyN
		st.BlobBytes = storedBytes(tx)
		return nil
	})
	st.Verifications, st.Rejections = s.verifications.Load(), s.rejections.Load()
	return st, err
}
