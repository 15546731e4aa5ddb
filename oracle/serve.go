package oracle

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/zkoracle/zkoracle/model"
	"github.com/zkoracle/zkoracle/prover"
	"github.com/zkoracle/zkoracle/verifier"
)

// StackOptions configures an all-in-one oracle: zkoracle serve.
type StackOptions struct {
	// DataDir holds the artifact store, NATS data and the state files.
	DataDir string
	// StoreDir overrides DataDir/store (keys are large and reusable).
	StoreDir string
	Listen   string // client API address, e.g. 127.0.0.1:8080 (":0" picks a port)
	// NATSURL connects to an external NATS server or cluster; empty starts
	// an embedded one.
	NATSURL string
	// VerifierURL uses a remote verifier (with VerifierToken for
	// registration); empty runs one in process.
	VerifierURL, VerifierToken string
	// DevSetup makes keys with a single-party setup (insecure: its operator
	// can forge proofs) and lets the in-process verifier accept them.
	// Otherwise every model's keys come from a ceremony in which the
	// verifier contributes, on a phase 1 of 2^Phase1Power (default 15:
	// circuits of up to 32,768 constraints, mnist-cnn's size).
	DevSetup    bool
	Phase1Power int
	// VerifierState is the in-process verifier's state file (default
	// DataDir/verifier.db). Keep it with the store: keys from a ceremony
	// are accepted only by the verifier that contributed to them.
	VerifierState string
	// Progress, if set, hears the ceremony and preparation steps.
	Progress func(string)
	// Slots is the number of in-process proving slots (0: prover default;
	// negative: none, leave proving to `zkoracle worker` processes).
	Slots   int
	APIKeys map[string]string
	// RatePerSecond and Burst limit each API key (0: the oracle's defaults).
	RatePerSecond float64
	Burst         int
	Models        []*model.Model
	Logger        *slog.Logger
	TamperProof   func(*prover.JobResult)
	AckWait       time.Duration
}

// DefaultPhase1Power is the phase-1 size of a stack: 2^15 constraints.
const DefaultPhase1Power = 15

// Stack is a running all-in-one oracle.
type Stack struct {
	Oracle  *Oracle
	Addr    string // client API address
	closers []func()
}

// Close stops everything, last started first.
func (s *Stack) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

// Start brings up the stack: NATS, verifier, oracle, prover worker, models,
// client API. It returns once the models are registered and results flow.
func Start(ctx context.Context, o StackOptions) (_ *Stack, err error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.StoreDir == "" {
		o.StoreDir = filepath.Join(o.DataDir, "store")
	}
	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		return nil, err
	}
	s := &Stack{}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	url := o.NATSURL
	if url == "" {
		srv, err := prover.StartEmbedded(filepath.Join(o.DataDir, "nats"))
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, srv.Shutdown)
		url = srv.URL()
	}
	q, err := prover.Connect(ctx, url, prover.QueueOptions{AckWait: o.AckWait})
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, q.Close)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var ver Verifier
	if o.VerifierURL != "" {
		ver = Remote{URL: o.VerifierURL, Token: o.VerifierToken}
	} else {
		if o.DevSetup {
			o.Logger.Warn("development setup: single-party keys, which the in-process verifier accepts")
		}
		vs, err := verifier.Open(verifier.Options{Path: cmp.Or(o.VerifierState, filepath.Join(o.DataDir, "verifier.db")), AllowDevKeys: o.DevSetup,
			Bootstrap: &verifier.Controller{Name: "oracle", TokenHash: verifier.HashToken(newID())}, Logger: o.Logger.With("part", "verifier")})
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, func() { vs.Close() })
		ver = Local{Service: vs, Caller: "oracle"}
	}
	store := &prover.Store{Dir: o.StoreDir, DevSetup: o.DevSetup}
	if !o.DevSetup {
		store.Ceremony = CeremonyWith(ver)
		log := o.Logger.With("part", "ceremony")
		t, err := EnsurePhase1(ctx, store, ver, cmp.Or(o.Phase1Power, DefaultPhase1Power), func(s string) {
			log.Info(s)
			if o.Progress != nil {
				o.Progress(s)
			}
		})
		if err != nil {
			return nil, fmt.Errorf("phase 1: %w", err)
		}
		log.Info("phase 1 ready", "power", t.Power, "contributions", len(t.Contributions), "srs", t.SRS)
	}
	or, err := New(Options{StatePath: filepath.Join(o.DataDir, "oracle.db"), Queue: q, Store: store, Verifier: ver,
		APIKeys: o.APIKeys, RatePerSecond: o.RatePerSecond, Burst: o.Burst, Logger: o.Logger.With("part", "oracle"), Registerer: reg, TamperProof: o.TamperProof, Progress: o.Progress})
	if err != nil {
		return nil, err
	}
	s.Oracle = or
	s.closers = append(s.closers, func() { or.Close() })

	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, err
	}
	s.Addr = ln.Addr().String()
	srv := &http.Server{Handler: or.Handler(reg), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: time.Minute, WriteTimeout: 2 * time.Minute}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.Logger.Error("client API", "err", err)
		}
	}()
	s.closers = append(s.closers, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})

	for _, m := range o.Models {
		if _, err := or.AddModel(ctx, m); err != nil {
			return nil, fmt.Errorf("model %s: %w", m.Name, err)
		}
	}
	if o.Slots >= 0 {
		p, err := prover.New(prover.Options{Store: store, MaxConcurrent: o.Slots, Logger: o.Logger.With("part", "prover"), Metrics: prover.NewMetrics(reg)})
		if err != nil {
			return nil, err
		}
		wctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			(&prover.Worker{Queue: q, Prover: p, Store: store, Name: "in-process", Log: o.Logger.With("part", "worker")}).Run(wctx)
			close(done)
		}()
		s.closers = append(s.closers, func() { stop(); <-done })
	}
	if err := or.Run(context.Background()); err != nil {
		return nil, err
	}
	return s, nil
}
