package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/schollz/progressbar/v3"

	"github.com/zkoracle/zkoracle/fixtures/mnist"
	"github.com/zkoracle/zkoracle/model"
	"github.com/zkoracle/zkoracle/prover"
	"github.com/zkoracle/zkoracle/verifier/core"
)

func init() {
	register("prove", "prove one inference and write a proof file", proveCmd)
	register("verify", "check a proof file offline against the store's verifying key", verifyCmd)
	register("worker", "serve proving jobs from the NATS JetStream queue", workerCmd)
}

// defaultStore is $ZKORACLE_STORE, else the user cache directory.
func defaultStore() string {
	if d := os.Getenv("ZKORACLE_STORE"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "zkoracle")
	}
	return ".zkoracle"
}

// prepare makes sure the store has m's circuit and keys, with a spinner
// while it compiles and sets up (seconds to minutes).
func prepare(ctx context.Context, s *prover.Store, m *model.Model) (*prover.Meta, error) {
	if s.Has(m.ID()) {
		return s.Meta(m.ID())
	}
	bar := progressbar.NewOptions(-1, progressbar.OptionSetWriter(os.Stderr), progressbar.OptionSpinnerType(14),
		progressbar.OptionSetDescription("prepare "+m.Name), progressbar.OptionClearOnFinish())
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
				bar.Add(1)
			}
		}
	}()
	meta, err := s.Prepare(ctx, m, func(step string) { bar.Describe(fmt.Sprintf("prepare %s: %s", m.Name, step)) })
	close(done)
	bar.Finish()
	return meta, err
}

func proveCmd(args []string) error {
	fs := flag.NewFlagSet("prove", flag.ContinueOnError)
	name := fs.String("model", "mnist-cnn", "model file or fixture name")
	image := fs.Int("image", -1, "MNIST test image index")
	inputFile := fs.String("input", "", `JSON file {"input": [int8 values]} (instead of --image)`)
	out := fs.String("out", "proof.json", "proof file to write")
	storeDir := fs.String("store", defaultStore(), "artifact store directory")
	devSetup := fs.Bool("dev-setup", false, "if the model has no keys yet, make single-party ones (INSECURE: development only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	m, err := loadModel(*name)
	if err != nil {
		return err
	}
	var input []int8
	switch {
	case *inputFile != "" && *image >= 0:
		return errors.New("give --image or --input, not both")
	case *inputFile != "":
		b, err := os.ReadFile(*inputFile)
		if err != nil {
			return err
		}
		var j prover.Job
		if err := json.Unmarshal(b, &j); err != nil {
			return fmt.Errorf("%s: %w", *inputFile, err)
		}
		j.ModelID = m.ID()
		if input, err = j.Int8Input(); err != nil {
			return err
		}
	default:
		img, _, err := mnist.TestImage(max(*image, 0))
		if err != nil {
			return err
		}
		input = model.PixelsToInput(img)
	}
	ctx := context.Background()
	store := &prover.Store{Dir: *storeDir, DevSetup: *devSetup}
	if !store.Has(m.ID()) && !*devSetup {
		return fmt.Errorf("%s has no keys in %s: run its ceremony with the verifier (zkoracle serve or zkoracle register), or pass --dev-setup for insecure development keys", m.Name, *storeDir)
	}
	meta, err := prepare(ctx, store, m)
	if err != nil {
		return err
	}
	p, err := prover.New(prover.Options{Store: store, MaxConcurrent: 1})
	if err != nil {
		return err
	}
	r, err := p.Prove(ctx, m.ID(), input)
	if err != nil {
		return err
	}
	pf := prover.ProofFile{Version: meta.LayoutVersion, ModelID: m.ID(), ModelName: m.Name, Input: core.InputOf(input),
		Output: r.Output, Class: r.Class, Proof: r.Proof, Setup: meta.Setup}
	b, err := json.MarshalIndent(pf, "", " ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("model %s: class %d, proved in %s (%d constraints; setup: %s)\nwrote %s\n",
		m.Name, r.Class, r.ProveTime.Round(time.Millisecond), meta.Constraints, meta.Setup, *out)
	return nil
}

func verifyCmd(args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	file := fs.String("proof", "proof.json", "proof file")
	storeDir := fs.String("store", defaultStore(), "artifact store directory holding the verifying key")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f, err := os.Open(*file)
	if err != nil {
		return err
	}
	defer f.Close()
	pf, err := prover.DecodeProofFile(f)
	if err != nil {
		return err
	}
	vk, err := (&prover.Store{Dir: *storeDir}).VerifyingKey(pf.ModelID)
	if err != nil {
		return fmt.Errorf("verifying key of %s: %w", pf.ModelID, err)
	}
	start := time.Now()
	if err := pf.Verify(vk); err != nil {
		return fmt.Errorf("INVALID: %w", err)
	}
	fmt.Printf("valid: model %s says class %d (output %v); verified in %s\n", pf.ModelName, pf.Class, pf.Output, time.Since(start).Round(time.Microsecond))
	return nil
}

func workerCmd(args []string) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	natsURL := fs.String("nats", "", "NATS server or cluster URL (default: start an embedded server)")
	storeDir := fs.String("store", defaultStore(), "artifact store directory")
	slots := fs.Int("slots", 0, "concurrent proofs (default: what cores and memory allow)")
	ackWait := fs.Duration("ack-wait", 30*time.Second, "redelivery delay for a job whose worker went silent")
	attempts := fs.Int("attempts", 3, "deliveries before a job is dead-lettered")
	metricsAddr := fs.String("metrics", "", "serve Prometheus /metrics on this address")
	name := fs.String("name", hostname(), "worker name in logs and results")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("worker", *name)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	url := *natsURL
	if url == "" {
		srv, err := prover.StartEmbedded(filepath.Join(*storeDir, "nats"))
		if err != nil {
			return err
		}
		defer srv.Shutdown()
		url = srv.URL()
		log.Info("embedded NATS started", "url", url)
	}
	q, err := prover.Connect(ctx, url, prover.QueueOptions{AckWait: *ackWait, MaxAttempts: *attempts})
	if err != nil {
		return err
	}
	defer q.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := prover.NewMetrics(reg)
	if *metricsAddr != "" {
		srv := &http.Server{Addr: *metricsAddr, Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics server", "err", err)
			}
		}()
		defer srv.Shutdown(context.Background())
	}
	store := &prover.Store{Dir: *storeDir}
	p, err := prover.New(prover.Options{Store: store, MaxConcurrent: *slots, Logger: log, Metrics: metrics})
	if err != nil {
		return err
	}
	log.Info("worker started", "nats", url, "slots", p.Concurrency(), "store", *storeDir)
	return (&prover.Worker{Queue: q, Prover: p, Store: store, Name: *name, Log: log, Metrics: metrics}).Run(ctx)
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "worker"
	}
	return fmt.Sprintf("%s-%d", h, os.Getpid())
}
