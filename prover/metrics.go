package prover

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the prover's Prometheus series. NewMetrics registers them with
// reg (nil: not registered, for tests and tools).
type Metrics struct {
	Jobs        *prometheus.CounterVec   // by final or transient state
	ProveTime   *prometheus.HistogramVec // seconds per proof, by model
	QueueDepth  prometheus.Gauge         // jobs waiting in the work queue
	KeyCache    *prometheus.CounterVec   // hit / miss
	InFlight    prometheus.Gauge         // proofs running now
	DeadLetters prometheus.Counter
}

// NewMetrics creates the series and registers them with reg when non-nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zkoracle_prover_jobs_total", Help: "Jobs by outcome: proved, failed (terminal), retried, dead (attempts exhausted).",
		}, []string{"state"}),
		ProveTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "zkoracle_prover_prove_seconds", Help: "Groth16 proving time per job, witness included.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
		}, []string{"model"}),
		QueueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "zkoracle_prover_queue_depth", Help: "Jobs pending in the work queue, as last seen by this worker.",
		}),
		KeyCache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zkoracle_prover_key_cache_total", Help: "Key cache lookups by result.",
		}, []string{"result"}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "zkoracle_prover_proofs_in_flight", Help: "Proofs running now.",
		}),
		DeadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zkoracle_prover_dead_letters_total", Help: "Jobs sent to the dead-letter subject.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Jobs, m.ProveTime, m.QueueDepth, m.KeyCache, m.InFlight, m.DeadLetters)
	}
	return m
}
