package oracle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"github.com/zkoracle/zkoracle/model"
	"github.com/zkoracle/zkoracle/oracle/api"
	"github.com/zkoracle/zkoracle/prover"
	"github.com/zkoracle/zkoracle/verifier"
)

// The API types live in oracle/api, so that clients need not import the
// server; these aliases keep them at hand here.
type (
	Request          = api.Request
	ModelEntry       = api.ModelEntry
	InferenceRequest = api.InferenceRequest
)

// Request states (see api).
const (
	StateQueued    = api.StateQueued
	StateProving   = api.StateProving
	StateVerifying = api.StateVerifying
	StateVerified  = api.StateVerified
	StateRejected  = api.StateRejected
	StateFailed    = api.StateFailed
	StateExpired   = api.StateExpired
)

// Terminal reports whether a state is final.
func Terminal(state string) bool { return api.Terminal(state) }

var rank = map[string]int{StateQueued: 0, StateProving: 1, StateVerifying: 2, StateVerified: 3, StateRejected: 3, StateFailed: 3, StateExpired: 3}

var (
	bucketRequests = []byte("requests")
	bucketIdem     = []byte("idempotency")
	bucketModels   = []byte("models")
)

// Options configures an Oracle.
type Options struct {
	StatePath string // bbolt file of requests and models
	Queue     *prover.Queue
	Store     *prover.Store
	Verifier  Verifier
	// APIKeys maps bearer tokens to client names.
	APIKeys map[string]string
	// RatePerSecond and Burst limit each API key (defaults 50/s, 100).
	RatePerSecond float64
	Burst         int
	Logger        *slog.Logger
	Registerer    prometheus.Registerer
	// TamperProof, if set, changes a proof on its way to the verifier
	// (fault injection for tests).
	TamperProof func(*prover.JobResult)
	// Progress, if set, hears each step of preparing a model.
	Progress func(string)
}

// Oracle ties the queue, the provers' results and the verifier together.
type Oracle struct {
	o       Options
	db      *bolt.DB
	log     *slog.Logger
	mu      sync.Mutex // serialises read-modify-write of a request
	states  *prometheus.CounterVec
	limits  *limiter
	models  sync.Map // id -> *model.Model
	started *nats.Subscription
	wg      sync.WaitGroup
	ready   chan struct{}
	cancel  context.CancelFunc
}

// New opens the oracle's state. Call Run to process results.
func New(o Options) (*Oracle, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.RatePerSecond <= 0 {
		o.RatePerSecond, o.Burst = 50, 100
	}
	if o.Burst <= 0 {
		o.Burst = max(1, int(2*o.RatePerSecond))
	}
	db, err := bolt.Open(o.StatePath, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("oracle state: %w", err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketRequests, bucketIdem, bucketModels} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		db.Close()
		return nil, err
	}
	or := &Oracle{o: o, db: db, log: o.Logger, ready: make(chan struct{}), limits: newLimiter(o.RatePerSecond, o.Burst),
		states: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zkoracle_oracle_requests_total", Help: "Inference requests reaching each state."}, []string{"state"})}
	if o.Registerer != nil {
		o.Registerer.MustRegister(or.states)
	}
	return or, nil
}

// Close stops processing and closes the state.
func (or *Oracle) Close() error {
	if or.cancel != nil {
		or.cancel()
	}
	or.wg.Wait()
	if or.started != nil {
		or.started.Unsubscribe()
	}
	return or.db.Close()
}

// Ready is closed once the oracle serves its models and processes results.
func (or *Oracle) Ready() <-chan struct{} { return or.ready }

// AddModel prepares a model (compile, setup: cached in the store), shares
// its artifacts with the workers and registers its key with the verifier.
// It records progress in the model entry as it goes.
func (or *Oracle) AddModel(ctx context.Context, m *model.Model) (*ModelEntry, error) {
	id := m.ID()
	e := &ModelEntry{ID: id, Name: m.Name, State: "preparing", InputShape: m.Input.Shape}
	step := func(s string) {
		e.Step = s
		or.putModel(e)
		or.log.Info("model", "name", m.Name, "id", id, "step", s)
		if or.o.Progress != nil {
			or.o.Progress(m.Name + ": " + s)
		}
	}
	step("compile and setup")
	meta, err := or.o.Store.Prepare(ctx, m, func(s string) { step(s) })
	if err == nil {
		step("publish artifacts")
		err = or.o.Queue.PublishArtifacts(ctx, or.o.Store, id)
	}
	if err == nil {
		step("register with the verifier")
		var req verifier.RegisterRequest
		if req, err = RegisterRequest(ctx, or.o.Store, or.o.Verifier, meta); err == nil {
			err = or.o.Verifier.Register(ctx, req)
		}
	}
	if err != nil {
		e.State, e.Error, e.Step = "failed", err.Error(), ""
		or.putModel(e)
		return e, err
	}
	e.State, e.Step, e.Constraints, e.PublicInputs, e.Setup = "ready", "", meta.Constraints, meta.PublicInputs, meta.Setup
	or.models.Store(id, m)
	or.putModel(e)
	return e, nil
}

func (or *Oracle) putModel(e *ModelEntry) {
	or.db.Update(func(tx *bolt.Tx) error { return put(tx, bucketModels, e.ID, e) })
}

// model returns a ready model by ID or name.
func (or *Oracle) model(ref string) (*model.Model, bool) {
	if m, ok := or.models.Load(ref); ok {
		return m.(*model.Model), true
	}
	var found *model.Model
	or.models.Range(func(_, v any) bool {
		if m := v.(*model.Model); m.Name == ref {
			found = m
			return false
		}
		return true
	})
	return found, found != nil
}

// Run processes prover results and proof-start notices until ctx ends. It
// first re-submits every request that was queued or proving when the
// oracle last stopped (the queue drops duplicates).
func (or *Oracle) Run(ctx context.Context) error {
	ctx, or.cancel = context.WithCancel(ctx)
	js := or.o.Queue.JetStream()
	cons, err := js.CreateOrUpdateConsumer(ctx, prover.StreamResults, jetstream.ConsumerConfig{
		Durable: "oracle", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute, MaxDeliver: -1,
	})
	if err != nil {
		return fmt.Errorf("results consumer: %w", err)
	}
	or.started, err = or.o.Queue.Conn().Subscribe(prover.SubjectStarted+"*", func(m *nats.Msg) {
		or.advance(strings.TrimPrefix(m.Subject, prover.SubjectStarted), StateProving, nil)
	})
	if err != nil {
		return err
	}
	if err := or.requeue(ctx); err != nil {
		return err
	}
	close(or.ready)
	or.wg.Go(func() {
		for ctx.Err() == nil {
			batch, err := cons.Fetch(8, jetstream.FetchMaxWait(time.Second))
			if err != nil {
				if ctx.Err() == nil {
					time.Sleep(time.Second)
				}
				continue
			}
			for msg := range batch.Messages() {
				var r prover.JobResult
				if err := json.Unmarshal(msg.Data(), &r); err != nil {
					or.log.Error("bad result message", "err", err)
					msg.Term()
					continue
				}
				if err := or.complete(ctx, &r); err != nil {
					or.log.Warn("result not processed yet", "id", r.ID, "err", err)
					msg.NakWithDelay(2 * time.Second)
					continue
				}
				msg.Ack()
			}
		}
	})
	or.wg.Go(func() { or.callbacks(ctx) })
	or.wg.Go(func() {
		// Requests whose submission failed (NATS down) are retried; the
		// queue drops the duplicates of those that did get through.
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := or.requeue(ctx); err != nil {
					or.log.Warn("requeue", "err", err)
				}
			}
		}
	})
	return nil
}

// requeue submits again every request not yet past proving.
func (or *Oracle) requeue(ctx context.Context) error {
	var pending []*Request
	or.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRequests).ForEach(func(_, v []byte) error {
			var r Request
			if json.Unmarshal(v, &r) == nil && rank[r.State] <= rank[StateProving] {
				pending = append(pending, &r)
			}
			return nil
		})
	})
	for _, r := range pending {
		if err := or.submit(ctx, r); err != nil {
			return err
		}
	}
	if len(pending) > 0 {
		or.log.Info("re-submitted pending requests", "count", len(pending))
	}
	return nil
}

func (or *Oracle) submit(ctx context.Context, r *Request) error {
	return or.o.Queue.Submit(ctx, prover.Job{ID: r.ID, ModelID: r.ModelID, Input: r.Input, Deadline: r.Deadline})
}

// complete takes a prover's result to a final state: verified or rejected
// by the verifier, or failed/expired.
func (or *Oracle) complete(ctx context.Context, res *prover.JobResult) error {
	r, err := or.get(res.ID)
	if err != nil {
		return err
	}
	if r == nil {
		or.log.Warn("result for an unknown request", "id", res.ID)
		return nil
	}
	if Terminal(r.State) {
		return nil // already done (a redelivered result)
	}
	if res.State != prover.StateProved {
		state := StateFailed
		if strings.Contains(res.Error, "deadline passed") {
			state = StateExpired
		}
		or.advance(r.ID, state, func(r *Request) { r.Error = res.Error })
		return nil
	}
	class := res.Class
	or.advance(r.ID, StateVerifying, func(r *Request) {
		r.Output, r.Class, r.Proof, r.Public, r.ProveMillis = res.Output, &class, res.Proof, res.Public, res.ProveMillis
	})
	if or.o.TamperProof != nil {
		or.o.TamperProof(res)
	}
	acc, err := or.o.Verifier.Submit(ctx, verifier.SubmitRequest{RequestID: r.ID, VerifyRequest: verifier.VerifyRequest{
		ModelID: r.ModelID, Claim: verifierClaim(r.Input, res.Output), Proof: res.Proof}})
	var rej *Rejection
	switch {
	case errors.As(err, &rej):
		or.advance(r.ID, StateRejected, func(r *Request) { r.Error = "verifier: " + rej.Error() })
	case err != nil:
		return err // verifier unreachable: retry later
	default:
		or.advance(r.ID, StateVerified, func(r *Request) { r.Acceptance = acc })
	}
	return nil
}

// advance moves a request to state (never backwards) and applies f.
func (or *Oracle) advance(id, state string, f func(*Request)) {
	or.mu.Lock()
	defer or.mu.Unlock()
	err := or.db.Update(func(tx *bolt.Tx) error {
		r, err := getReq(tx, id)
		if err != nil || r == nil || rank[state] < rank[r.State] || (state == r.State && f == nil) || Terminal(r.State) {
			return err
		}
		r.State = state
		r.Times[state] = time.Now().UTC()
		if f != nil {
			f(r)
		}
		return put(tx, bucketRequests, id, r)
	})
	if err != nil {
		or.log.Error("advance", "id", id, "state", state, "err", err)
		return
	}
	or.states.WithLabelValues(state).Inc()
}

// callbacks POSTs final records to their callback URLs, retrying with
// backoff until delivered (at most 8 tries per request).
func (or *Oracle) callbacks(ctx context.Context) {
	tries := map[string]int{}
	client := &http.Client{Timeout: 10 * time.Second}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
		var due []*Request
		or.db.View(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketRequests).ForEach(func(_, v []byte) error {
				var r Request
				if json.Unmarshal(v, &r) == nil && r.Callback != "" && Terminal(r.State) && !r.CallbackDone && tries[r.ID] < 8 {
					due = append(due, &r)
				}
				return nil
			})
		})
		for _, r := range due {
			n := tries[r.ID]
			if last, ok := r.Times["callback_attempt"]; ok && time.Since(last) < time.Duration(1<<n)*250*time.Millisecond {
				continue
			}
			tries[r.ID]++
			body, _ := json.Marshal(r)
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.Callback, bytes.NewReader(body))
			ok := false
			if err == nil {
				req.Header.Set("Content-Type", "application/json")
				if resp, err := client.Do(req); err == nil {
					resp.Body.Close()
					ok = resp.StatusCode < 300
				}
			}
			or.mu.Lock()
			or.db.Update(func(tx *bolt.Tx) error {
				cur, err := getReq(tx, r.ID)
				if err != nil || cur == nil {
					return err
				}
				cur.CallbackDone = ok
				cur.Times["callback_attempt"] = time.Now().UTC()
				return put(tx, bucketRequests, r.ID, cur)
			})
			or.mu.Unlock()
			or.log.Info("callback", "id", r.ID, "delivered", ok, "try", tries[r.ID])
		}
	}
}

func (or *Oracle) get(id string) (*Request, error) {
	var r *Request
	err := or.db.View(func(tx *bolt.Tx) (err error) {
		r, err = getReq(tx, id)
		return err
	})
	return r, err
}

func getReq(tx *bolt.Tx, id string) (*Request, error) {
	v := tx.Bucket(bucketRequests).Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	var r Request
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, err
	}
	if r.Times == nil {
		r.Times = map[string]time.Time{}
	}
	return &r, nil
}

func put(tx *bolt.Tx, bucket []byte, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Bucket(bucket).Put([]byte(key), b)
}
