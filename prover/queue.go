package prover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATS names: a work-queue stream of jobs with one shared pull consumer, a
// stream of results (one subject per job), a dead-letter stream, and an
// object store bucket of prepared artifacts that fresh workers fetch.
const (
	StreamJobs     = "ZKO_JOBS"
	SubjectJobs    = "zko.jobs"
	StreamResults  = "ZKO_RESULTS"
	SubjectResults = "zko.results." // + job ID
	StreamDead     = "ZKO_DEAD"
	SubjectDead    = "zko.dead." // + job ID
	ConsumerName   = "provers"
	SubjectStarted = "zko.started." // + job ID: a core NATS notice that a proof started
	BucketKeys     = "zko-artifacts"
)

// Job asks for one proof. Input holds int8 values (-128..127).
type Job struct {
	ID       string    `json:"id"`
	ModelID  string    `json:"model_id"`
	Input    []int     `json:"input"`
	Deadline time.Time `json:"deadline,omitzero"`
}

// Job states in a JobResult.
const (
	StateProved = "proved"
	StateFailed = "failed"
)

// JobResult is what a worker records for a job, once.
type JobResult struct {
	ID          string  `json:"id"`
	ModelID     string  `json:"model_id"`
	State       string  `json:"state"`
	Output      []int64 `json:"output,omitempty"`
	Class       int     `json:"class"`
	Proof       []byte  `json:"proof,omitempty"`
	Public      []byte  `json:"public,omitempty"`
	Error       string  `json:"error,omitempty"`
	Worker      string  `json:"worker"`
	Attempt     int     `json:"attempt"`
	ProveMillis int64   `json:"prove_ms,omitempty"`
}

// QueueOptions configures the queue. Zero values take the defaults.
type QueueOptions struct {
	// AckWait is how long a job may go without an ack or in-progress ack
	// before the server redelivers it (default 30 s): what a crashed
	// worker's job waits.
	AckWait time.Duration
	// MaxAttempts is how many deliveries a job gets before it goes to the
	// dead-letter stream (default 3).
	MaxAttempts int
}

// Queue is the job queue on NATS JetStream.
type Queue struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	cons    jetstream.Consumer
	results jetstream.Stream
	dead    jetstream.Stream
	objects jetstream.ObjectStore
	opts    QueueOptions
}

// Connect connects to the NATS server at url and creates the streams,
// consumer and bucket if they do not exist yet (idempotent).
func Connect(ctx context.Context, url string, o QueueOptions) (*Queue, error) {
	if o.AckWait <= 0 {
		o.AckWait = 30 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 3
	}
	nc, err := nats.Connect(url, nats.Name("zkoracle"), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	q := &Queue{nc: nc, opts: o}
	if err := q.setup(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	return q, nil
}

func (q *Queue) setup(ctx context.Context) error {
	js, err := jetstream.New(q.nc)
	if err != nil {
		return err
	}
	q.js = js
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: StreamJobs, Subjects: []string{SubjectJobs}, Retention: jetstream.WorkQueuePolicy,
		Storage: jetstream.FileStorage, Duplicates: time.Hour,
	}); err != nil {
		return fmt.Errorf("jobs stream: %w", err)
	}
	if q.results, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: StreamResults, Subjects: []string{SubjectResults + ">"}, Storage: jetstream.FileStorage,
		Duplicates: 24 * time.Hour, MaxMsgsPerSubject: 1,
	}); err != nil {
		return fmt.Errorf("results stream: %w", err)
	}
	if q.dead, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: StreamDead, Subjects: []string{SubjectDead + ">"}, Storage: jetstream.FileStorage, Duplicates: 24 * time.Hour,
	}); err != nil {
		return fmt.Errorf("dead-letter stream: %w", err)
	}
	if q.cons, err = js.CreateOrUpdateConsumer(ctx, StreamJobs, jetstream.ConsumerConfig{
		Durable: ConsumerName, AckPolicy: jetstream.AckExplicitPolicy, AckWait: q.opts.AckWait,
		MaxDeliver: -1, MaxAckPending: 1000,
	}); err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	if q.objects, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: BucketKeys, Storage: jetstream.FileStorage,
	}); err != nil {
		return fmt.Errorf("artifact bucket: %w", err)
	}
	return nil
}

// Conn returns the NATS connection (for subscribers of SubjectStarted).
func (q *Queue) Conn() *nats.Conn { return q.nc }

// JetStream returns the JetStream context.
func (q *Queue) JetStream() jetstream.JetStream { return q.js }

// Close closes the connection.
func (q *Queue) Close() { q.nc.Close() }

// Submit enqueues a job. Submitting the same job ID twice within an hour
// enqueues it once.
func (q *Queue) Submit(ctx context.Context, j Job) error {
	if j.ID == "" {
		return errors.New("job has no ID")
	}
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	_, err = q.js.Publish(ctx, SubjectJobs, b, jetstream.WithMsgID(j.ID))
	return err
}

// Result returns the recorded result of a job, or nil if there is none yet.
func (q *Queue) Result(ctx context.Context, jobID string) (*JobResult, error) {
	return lastJSON[JobResult](ctx, q.results, SubjectResults+jobID)
}

// DeadLetter returns the dead-letter record of a job, or nil.
func (q *Queue) DeadLetter(ctx context.Context, jobID string) (*JobResult, error) {
	return lastJSON[JobResult](ctx, q.dead, SubjectDead+jobID)
}

// ResultCount returns how many result messages the results stream holds
// (one per job: a second result for a job ID is dropped as a duplicate).
func (q *Queue) ResultCount(ctx context.Context) (uint64, error) {
	info, err := q.results.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// Pending returns the jobs not yet acknowledged (waiting or running).
func (q *Queue) Pending(ctx context.Context) (uint64, error) {
	info, err := q.cons.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.NumPending + uint64(info.NumAckPending), nil
}

func lastJSON[T any](ctx context.Context, s jetstream.Stream, subject string) (*T, error) {
	msg, err := s.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var v T
	if err := json.Unmarshal(msg.Data, &v); err != nil {
		return nil, fmt.Errorf("%s: %w", subject, err)
	}
	return &v, nil
}

func (q *Queue) record(ctx context.Context, subject string, r *JobResult) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = q.js.Publish(ctx, subject+r.ID, b, jetstream.WithMsgID(r.ID))
	return err
}

// PublishArtifacts copies a prepared model's files into the shared bucket,
// so that workers that lack them can fetch them.
func (q *Queue) PublishArtifacts(ctx context.Context, s *Store, id string) error {
	if !s.Has(id) {
		return fmt.Errorf("%w: %s", ErrNotPrepared, id)
	}
	if _, err := q.objects.GetInfo(ctx, id+"/"+fileMeta); err == nil {
		return nil // already published (meta is put last)
	}
	for _, f := range ArtifactFiles {
		if err := readFile(s.Path(id, f), func(r io.Reader) error {
			_, err := q.objects.Put(ctx, jetstream.ObjectMeta{Name: id + "/" + f}, r)
			return err
		}); err != nil {
			return fmt.Errorf("publish %s/%s: %w", id, f, err)
		}
	}
	return nil
}

// FetchArtifacts installs a model's files from the shared bucket into s. It
// returns ErrNotPrepared if the bucket does not have them.
func (q *Queue) FetchArtifacts(ctx context.Context, s *Store, id string) error {
	if s.Has(id) {
		return nil
	}
	if _, err := q.objects.GetInfo(ctx, id+"/"+fileMeta); err != nil {
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			return fmt.Errorf("%w: %s", ErrNotPrepared, id)
		}
		return err
	}
	return s.Install(id, func(f string) (io.ReadCloser, error) {
		return q.objects.Get(ctx, id+"/"+f)
	})
}

// Embedded is a NATS server with JetStream running in this process.
type Embedded struct {
	srv *server.Server
}

// StartEmbedded starts a NATS server with JetStream on a random loopback
// port, keeping its data in dir.
func StartEmbedded(dir string) (*Embedded, error) {
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: dir,
		NoSigs: true, NoLog: true, JetStreamMaxMemory: 256 << 20, JetStreamMaxStore: math.MaxInt32 * 8,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("embedded NATS did not start")
	}
	return &Embedded{srv: srv}, nil
}

// URL is the client URL of the embedded server.
func (e *Embedded) URL() string { return e.srv.ClientURL() }

// Shutdown stops the server and waits for it.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}
