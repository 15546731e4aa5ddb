package prover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Worker takes jobs from the queue and proves them, Prover.Concurrency() at
// a time.
//
// Delivery contract: a job is acked only after its result is recorded, and
// results are published with the job ID as the NATS message ID, so a job
// redelivered after a crash between the two is proved again but recorded
// once. While a proof runs the worker sends in-progress acks every AckWait/3;
// a worker killed mid-proof stops sending them and the job is redelivered
// after AckWait. Terminal errors (unknown model, bad input, past deadline)
// are recorded as failed and never retried; other errors are retried until
// MaxAttempts deliveries, then the job goes to the dead-letter stream with
// its error.
type Worker struct {
	Queue  *Queue
	Prover *Prover
	Store  *Store
	Name   string
	Log    *slog.Logger
	// Metrics defaults to the Prover's.
	Metrics *Metrics
}

// Run serves jobs until ctx is done, then waits for running proofs.
func (w *Worker) Run(ctx context.Context) error {
	if w.Log == nil {
		w.Log = slog.New(slog.DiscardHandler)
	}
	if w.Metrics == nil {
		w.Metrics = w.Prover.metrics
	}
	var wg sync.WaitGroup
	for range w.Prover.Concurrency() {
		wg.Go(func() { w.loop(ctx) })
	}
	wg.Go(func() { w.watchDepth(ctx) })
	wg.Wait()
	return nil
}

func (w *Worker) loop(ctx context.Context) {
	for ctx.Err() == nil {
		batch, err := w.Queue.cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() == nil {
				w.Log.Warn("fetch", "err", err)
				time.Sleep(time.Second)
			}
			continue
		}
		for msg := range batch.Messages() {
			w.handle(ctx, msg)
		}
	}
}

func (w *Worker) watchDepth(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		if n, err := w.Queue.Pending(ctx); err == nil {
			w.Metrics.QueueDepth.Set(float64(n))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (w *Worker) handle(ctx context.Context, msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		w.Log.Error("message metadata", "err", err)
		msg.Term()
		return
	}
	attempt := int(min(md.NumDelivered, math.MaxInt32))
	var job Job
	if err := json.Unmarshal(msg.Data(), &job); err != nil || job.ID == "" {
		id := fmt.Sprintf("seq-%d", md.Sequence.Stream)
		w.fail(ctx, msg, &JobResult{ID: id, Attempt: attempt}, fmt.Errorf("malformed job: %v", err))
		return
	}
	log := w.Log.With("job_id", job.ID, "model", job.ModelID, "attempt", attempt)
	res := &JobResult{ID: job.ID, ModelID: job.ModelID, Attempt: attempt}
	if attempt > w.Queue.opts.MaxAttempts {
		// Earlier deliveries died without a word (a killed worker, say).
		w.deadLetter(ctx, msg, res, fmt.Errorf("delivered %d times without a result", attempt-1), log)
		return
	}
	if !job.Deadline.IsZero() && time.Now().After(job.Deadline) {
		w.fail(ctx, msg, res, &InputError{"deadline passed before the proof started"})
		return
	}
	input, err := job.Int8Input()
	if err == nil && !w.Store.Has(job.ModelID) {
		if err = w.Queue.FetchArtifacts(ctx, w.Store, job.ModelID); errors.Is(err, ErrNotPrepared) {
			err = &InputError{fmt.Sprintf("unknown model %q", job.ModelID)}
		}
	}
	var out *Result
	if err == nil {
		log.Info("proving")
		w.Queue.nc.Publish(SubjectStarted+job.ID, nil) // best effort: lets the oracle show "proving"
		stop := w.heartbeat(msg)
		out, err = w.Prover.Prove(ctx, job.ModelID, input)
		stop()
	}
	if err != nil {
		if IsTerminal(err) {
			w.fail(ctx, msg, res, err)
			log.Warn("job failed", "err", err)
			return
		}
		if attempt >= w.Queue.opts.MaxAttempts {
			w.deadLetter(ctx, msg, res, err, log)
			return
		}
		w.Metrics.Jobs.WithLabelValues("retried").Inc()
		log.Warn("job will be retried", "err", err)
		msg.NakWithDelay(time.Second)
		return
	}
	res.State, res.Output, res.Class = StateProved, out.Output, out.Class
	res.Proof, res.Public, res.ProveMillis, res.Worker = out.Proof, out.Public, out.ProveTime.Milliseconds(), w.Name
	if err := w.Queue.record(ctx, SubjectResults, res); err != nil {
		log.Error("record result", "err", err)
		msg.NakWithDelay(time.Second)
		return
	}
	if err := msg.DoubleAck(ctx); err != nil {
		log.Warn("ack", "err", err) // redelivered; its result stays recorded once
	}
	w.Metrics.Jobs.WithLabelValues(StateProved).Inc()
	log.Info("proved", "class", out.Class, "prove_ms", out.ProveTime.Milliseconds())
}

// heartbeat sends in-progress acks until stopped.
func (w *Worker) heartbeat(msg jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(w.Queue.opts.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				msg.InProgress()
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// fail records a terminal failure and removes the job from the queue.
func (w *Worker) fail(ctx context.Context, msg jetstream.Msg, res *JobResult, err error) {
	res.State, res.Error, res.Worker = StateFailed, err.Error(), w.Name
	if rerr := w.Queue.record(ctx, SubjectResults, res); rerr != nil {
		w.Log.Error("record failure", "job_id", res.ID, "err", rerr)
		msg.NakWithDelay(time.Second)
		return
	}
	w.Metrics.Jobs.WithLabelValues(StateFailed).Inc()
	msg.Term()
}

// deadLetter records the job and its error on the dead-letter stream, and
// as a failed result, and removes it from the queue.
func (w *Worker) deadLetter(ctx context.Context, msg jetstream.Msg, res *JobResult, err error, log *slog.Logger) {
	res.State, res.Error, res.Worker = StateFailed, fmt.Sprintf("attempts exhausted: %v", err), w.Name
	if rerr := w.Queue.record(ctx, SubjectDead, res); rerr != nil {
		log.Error("dead letter", "err", rerr)
		msg.NakWithDelay(time.Second)
		return
	}
	w.Metrics.DeadLetters.Inc()
	w.Metrics.Jobs.WithLabelValues("dead").Inc()
	log.Error("job dead-lettered", "err", err)
	w.fail(ctx, msg, res, errors.New(res.Error))
}

// Int8Input checks and converts the job's input values.
func (j *Job) Int8Input() ([]int8, error) {
	in := make([]int8, len(j.Input))
	for i, v := range j.Input {
		if v < math.MinInt8 || v > math.MaxInt8 {
			return nil, &InputError{fmt.Sprintf("input value %d at %d is outside int8 [-128, 127]", v, i)}
		}
		in[i] = int8(v)
	}
	return in, nil
}
