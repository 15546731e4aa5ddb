package prover

import (
	"bufio"
	"bytes"
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"

	"github.com/zkoracle/zkoracle/circuits"
	"github.com/zkoracle/zkoracle/model"
	"github.com/zkoracle/zkoracle/model/layout"
)

// InputError is a job the prover can never complete: unknown model, wrong
// input shape, values out of range. It is not retried.
type InputError struct{ Msg string }

func (e *InputError) Error() string { return e.Msg }

// IsTerminal reports whether err means retrying cannot help.
func IsTerminal(err error) bool {
	var ie *InputError
	return errors.As(err, &ie)
}

// Options configures a Prover. Zero values take the defaults.
type Options struct {
	Store *Store
	// MaxConcurrent bounds proofs running at once (default DefaultConcurrency).
	MaxConcurrent int
	// CacheBytes bounds the loaded keys and circuits kept in memory (default 4 GiB).
	CacheBytes int64
	Logger     *slog.Logger
	Metrics    *Metrics
}

// DefaultConcurrency is what cores and memory allow. gnark spreads each
// proof over every core, so concurrent proofs only pay on larger machines:
// one per 4 cores, and no more than one per GiB of available memory
// (mnist-cnn peaks at about 250 MiB). Measured on 2 cores: one proof at a
// time made 75 mnist-cnn proofs/min, two at a time 67.
func DefaultConcurrency() int {
	n := (runtime.NumCPU() + 3) / 4
	if avail := memAvailable(); avail > 0 {
		n = min(n, max(1, int(avail>>30)))
	}
	return max(1, n)
}

// Prover proves inferences of prepared models, a bounded number at a time.
type Prover struct {
	store   *Store
	sem     chan struct{}
	log     *slog.Logger
	metrics *Metrics

	mu       sync.Mutex
	cache    map[string]*list.Element // of *keys
	lru      *list.List
	bytes    int64
	maxBytes int64
}

// keys are a model's loaded artifacts. Each constraint system serves one
// proof at a time (gnark's lookup solver state is not safe to share).
type keys struct {
	id    string
	model *model.Model
	pk    groth16.ProvingKey
	free  []constraint.ConstraintSystem
	size  int64
	refs  int
}

// New returns a Prover.
func New(o Options) (*Prover, error) {
	if o.Store == nil {
		return nil, errors.New("prover: no store")
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = DefaultConcurrency()
	}
	if o.CacheBytes <= 0 {
		o.CacheBytes = 4 << 30
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	return &Prover{store: o.Store, sem: make(chan struct{}, o.MaxConcurrent), log: o.Logger, metrics: o.Metrics,
		cache: map[string]*list.Element{}, lru: list.New(), maxBytes: o.CacheBytes}, nil
}

// Concurrency returns the maximum number of proofs run at once.
func (p *Prover) Concurrency() int { return cap(p.sem) }

// Result is a proved inference.
type Result struct {
	ModelID string
	Input   []int8
	Output  []int64
	Class   int
	// Proof is the Groth16 proof in gnark's compressed encoding.
	Proof []byte
	// Public is the public witness (layout v1) in gnark's binary encoding.
	Public    []byte
	ProveTime time.Duration
}

// Prove runs the reference executor on input, builds the witness and proves
// it. It waits for a free slot; ctx cancels the wait, not a running proof
// (gnark's Prove takes no context).
func (p *Prover) Prove(ctx context.Context, modelID string, input []int8) (*Result, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-p.sem }()
	k, err := p.acquire(modelID)
	if err != nil {
		return nil, err
	}
	cs, err := k.takeCS(p)
	if err != nil {
		p.release(k, nil)
		return nil, err
	}
	defer p.release(k, cs)
	if n := k.model.Input.Size(); len(input) != n {
		return nil, &InputError{fmt.Sprintf("input has %d values, model %s takes %d (shape %v)", len(input), k.model.Name, n, k.model.Input.Shape)}
	}
	p.metrics.InFlight.Inc()
	defer p.metrics.InFlight.Dec()
	start := time.Now()
	assignment, output, err := circuits.Assign(k.model, input)
	if err != nil {
		return nil, &InputError{err.Error()}
	}
	full, err := frontend.NewWitness(assignment, ecc.BN254.ScalarField())
	if err != nil {
		return nil, fmt.Errorf("witness: %w", err)
	}
	proof, err := groth16.Prove(cs, k.pk, full)
	if err != nil {
		return nil, fmt.Errorf("prove: %w", err)
	}
	elapsed := time.Since(start)
	p.metrics.ProveTime.WithLabelValues(k.model.Name).Observe(elapsed.Seconds())
	var pb bytes.Buffer
	if _, err := proof.WriteTo(&pb); err != nil {
		return nil, err
	}
	pub, err := full.Public()
	if err != nil {
		return nil, err
	}
	pubBytes, err := pub.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return &Result{ModelID: modelID, Input: input, Output: output, Class: layout.Argmax(output),
		Proof: pb.Bytes(), Public: pubBytes, ProveTime: elapsed}, nil
}

// acquire returns the model's keys, loading them on a miss.
func (p *Prover) acquire(id string) (*keys, error) {
	p.mu.Lock()
	if e, ok := p.cache[id]; ok {
		p.lru.MoveToFront(e)
		k := e.Value.(*keys)
		k.refs++
		p.mu.Unlock()
		p.metrics.KeyCache.WithLabelValues("hit").Inc()
		return k, nil
	}
	p.mu.Unlock()
	p.metrics.KeyCache.WithLabelValues("miss").Inc()
	if !p.store.Has(id) {
		return nil, &InputError{fmt.Sprintf("unknown model %q", id)}
	}
	start := time.Now()
	m, err := p.store.Model(id)
	if err != nil {
		return nil, err
	}
	pk, err := p.store.ProvingKey(id)
	if err != nil {
		return nil, err
	}
	k := &keys{id: id, model: m, pk: pk, size: fileSize(p.store.Path(id, filePK))}
	p.log.Info("keys loaded", "model", m.Name, "id", id, "took", time.Since(start).Round(time.Millisecond))
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.cache[id]; ok { // loaded concurrently: keep the first
		k = e.Value.(*keys)
		p.lru.MoveToFront(e)
	} else {
		p.cache[id] = p.lru.PushFront(k)
		p.bytes += k.size
	}
	k.refs++
	p.evict()
	return k, nil
}

// takeCS returns a constraint system for one proof: a free one or a fresh
// copy from the store.
func (k *keys) takeCS(p *Prover) (constraint.ConstraintSystem, error) {
	p.mu.Lock()
	if n := len(k.free); n > 0 {
		cs := k.free[n-1]
		k.free = k.free[:n-1]
		p.mu.Unlock()
		return cs, nil
	}
	p.mu.Unlock()
	cs, err := p.store.ConstraintSystem(k.id)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	k.size += fileSize(p.store.Path(k.id, fileCircuit))
	p.bytes += fileSize(p.store.Path(k.id, fileCircuit))
	p.mu.Unlock()
	return cs, nil
}

func (p *Prover) release(k *keys, cs constraint.ConstraintSystem) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k.refs--
	if cs != nil {
		k.free = append(k.free, cs)
	}
	p.evict()
}

// evict drops least recently used, unused keys while over the memory bound.
func (p *Prover) evict() {
	for e := p.lru.Back(); e != nil && p.bytes > p.maxBytes; {
		prev := e.Prev()
		if k := e.Value.(*keys); k.refs == 0 {
			p.lru.Remove(e)
			delete(p.cache, k.id)
			p.bytes -= k.size
			p.log.Info("keys evicted", "id", k.id)
		}
		e = prev
	}
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// memAvailable reads MemAvailable from /proc/meminfo (0 if unknown).
func memAvailable() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
