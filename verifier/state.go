package verifier

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// State lives in a bbolt file: the canister's stable memory. Its schema is
// versioned; Open upgrades older data in place and refuses newer data.
const SchemaVersion = 1

var (
	bucketMeta        = []byte("meta")
	bucketModels      = []byte("models")
	bucketResults     = []byte("results")
	bucketControllers = []byte("controllers")
	keySchema         = []byte("schema")
	keyStats          = []byte("stats")
)

// ModelRecord is a registered model.
type ModelRecord struct {
	ID            string    `json:"model_id"`
	Name          string    `json:"name"`
	Key           []byte    `json:"verifying_key"`
	LayoutVersion int       `json:"layout_version"`
	InputShape    []int     `json:"input_shape"`
	OutputShape   []int     `json:"output_shape"`
	Setup         string    `json:"setup"`
	Retired       bool      `json:"retired"`
	RegisteredBy  string    `json:"registered_by"`
	Registered    time.Time `json:"registered"`
}

// ResultRecord is an accepted result.
type ResultRecord struct {
	RequestID string    `json:"request_id"`
	ModelID   string    `json:"model_id"`
	Input     []int     `json:"input"`
	Output    []int64   `json:"output"`
	Class     int       `json:"class"`
	Proof     []byte    `json:"proof"`
	Accepted  time.Time `json:"accepted"`
	Caller    string    `json:"caller"`
	Cost      Cost      `json:"cost"`
}

// Controller is a principal allowed to make admin calls; only the SHA-256 of
// its bearer token is stored.
type Controller struct {
	Name      string `json:"name"`
	TokenHash string `json:"token_sha256"`
}

// Stats are counters kept in state.
type Stats struct {
	Models        int    `json:"models"`
	Results       int    `json:"results"`
	Verifications uint64 `json:"verifications"`
	Rejections    uint64 `json:"rejections"`
	Updates       uint64 `json:"updates"`
	// Blobs and BlobBytes count the ceremony blobs and uploads held.
	Blobs     int `json:"blobs"`
	BlobBytes int `json:"blob_bytes"`
}

func openState(path string) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketModels, bucketResults, bucketControllers, bucketBlobs, bucketUploads, bucketOwn, bucketCeremony} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		v := meta.Get(keySchema)
		switch {
		case v == nil:
			return meta.Put(keySchema, binary.BigEndian.AppendUint32(nil, SchemaVersion))
		case binary.BigEndian.Uint32(v) > SchemaVersion:
			return fmt.Errorf("state schema %d is newer than this build (%d): refusing to downgrade", binary.BigEndian.Uint32(v), SchemaVersion)
		}
		return nil // version 1 is the first: nothing to migrate yet
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func getJSON[T any](tx *bolt.Tx, bucket []byte, key string) (*T, error) {
	v := tx.Bucket(bucket).Get([]byte(key))
	if v == nil {
		return nil, nil
	}
	var t T
	if err := json.Unmarshal(v, &t); err != nil {
		return nil, fmt.Errorf("state %s/%s: %w", bucket, key, err)
	}
	return &t, nil
}

func putJSON(tx *bolt.Tx, bucket []byte, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Bucket(bucket).Put([]byte(key), b)
}

func readStats(tx *bolt.Tx) Stats {
	s, err := getJSON[Stats](tx, bucketMeta, string(keyStats))
	if err != nil || s == nil {
		return Stats{}
	}
	return *s
}

func updateStats(tx *bolt.Tx, f func(*Stats)) error {
	s := readStats(tx)
	f(&s)
	return putJSON(tx, bucketMeta, string(keyStats), s)
}
