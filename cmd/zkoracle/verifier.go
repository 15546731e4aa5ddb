package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/zkoracle/zkoracle/oracle"
	"github.com/zkoracle/zkoracle/prover"
	"github.com/zkoracle/zkoracle/verifier"
)

func init() {
	register("verifier", "run the canister-like verifier service", verifierCmd)
	register("register", "register a prepared model's verifying key with a verifier", registerCmd)
}

func verifierCmd(args []string) error {
	fs := flag.NewFlagSet("verifier", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8081", "listen address")
	state := fs.String("state", "verifier.db", "state file (bbolt)")
	allowDev := fs.Bool("allow-dev-keys", false, "accept keys from a single-party setup (DEVELOPMENT ONLY: its operator can forge proofs)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	tok := os.Getenv("ZKORACLE_VERIFIER_TOKEN")
	if tok == "" {
		b := make([]byte, 16)
		rand.Read(b)
		tok = hex.EncodeToString(b)
		fmt.Fprintf(os.Stderr, "controller token (if this state has no controllers yet): %s\n", tok)
	}
	s, err := verifier.Open(verifier.Options{Path: *state, AllowDevKeys: *allowDev, Logger: log,
		Bootstrap: &verifier.Controller{Name: "bootstrap", TokenHash: verifier.HashToken(tok)}})
	if err != nil {
		return err
	}
	defer s.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: verifier.Handler(s), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: verifier.CeremonyTimeout + time.Minute}
	log.Info("verifier listening", "addr", ln.Addr().String(), "state", *state, "allow_dev_keys", *allowDev)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func registerCmd(args []string) error {
	fs := flag.NewFlagSet("register", flag.ContinueOnError)
	name := fs.String("model", "mnist-cnn", "model file or fixture name")
	url := fs.String("verifier", "http://127.0.0.1:8081", "verifier URL")
	storeDir := fs.String("store", defaultStore(), "artifact store directory")
	devSetup := fs.Bool("dev-setup", false, "single-party keys instead of a ceremony with the verifier (INSECURE: the verifier must run with --allow-dev-keys)")
	power := fs.Int("phase1-power", oracle.DefaultPhase1Power, "size of the phase 1 run with the verifier if it has none: 2^power constraints")
	outside := fs.String("contributions", "", "comma-separated phase-2 state files contributed by others (`zkoracle ceremony phase2-init`, then `ceremony contribute` in turn), applied first")
	if err := fs.Parse(args); err != nil {
		return err
	}
	m, err := loadModel(*name)
	if err != nil {
		return err
	}
	ctx := context.Background()
	v := oracle.Remote{URL: *url, Token: os.Getenv("ZKORACLE_VERIFIER_TOKEN")}
	start := time.Now()
	store := &prover.Store{Dir: *storeDir, DevSetup: *devSetup}
	if !*devSetup {
		store.Ceremony = oracle.CeremonyWith(v)
		if *outside != "" {
			r := &prover.Replay{Label: "outside contributor"}
			for _, f := range strings.Split(*outside, ",") {
				b, err := os.ReadFile(strings.TrimSpace(f))
				if err != nil {
					return err
				}
				r.States = append(r.States, b)
			}
			store.Ceremony.Contributors = append(r.Replays(), store.Ceremony.Contributors...)
		}
		if _, err := oracle.EnsurePhase1(ctx, store, v, *power, stepPrinter(start)); err != nil {
			return fmt.Errorf("phase 1 with the verifier: %w", err)
		}
	}
	meta, err := store.Prepare(ctx, m, stepPrinter(start))
	if err != nil {
		return err
	}
	req, err := oracle.RegisterRequest(ctx, store, v, meta)
	if err != nil {
		return err
	}
	stepPrinter(start)("register: the verifier re-derives the key from the ceremony")
	if err := v.Register(ctx, req); err != nil {
		return fmt.Errorf("verifier refused %s: %w", m.Name, err)
	}
	fmt.Printf("registered %s (%s), setup: %s, in %s\n", m.Name, m.ID(), meta.Setup, since(start))
	return nil
}
