package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

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
	srv := &http.Server{Handler: verifier.Handler(s), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second}
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
	name := fs.String("model", "mnist-cnn", "model file or fixture name (prepared in the store)")
	url := fs.String("verifier", "http://127.0.0.1:8081", "verifier URL")
	storeDir := fs.String("store", defaultStore(), "artifact store directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	m, err := loadModel(*name)
	if err != nil {
		return err
	}
	store := &prover.Store{Dir: *storeDir}
	meta, err := prepare(context.Background(), store, m)
	if err != nil {
		return err
	}
	vk, err := os.ReadFile(store.Path(m.ID(), "vk.bin"))
	if err != nil {
		return err
	}
	body, _ := json.Marshal(verifier.RegisterRequest{ModelID: m.ID(), Name: m.Name, VerifyingKey: vk, LayoutVersion: meta.LayoutVersion,
		InputShape: meta.InputShape, OutputShape: meta.OutputShape, Setup: meta.Setup})
	req, _ := http.NewRequest(http.MethodPost, *url+"/api/v1/update/register_model", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+os.Getenv("ZKORACLE_VERIFIER_TOKEN"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("verifier answered %s: %s", resp.Status, out)
	}
	fmt.Printf("registered %s (%s): %s\n", m.Name, m.ID(), out)
	return nil
}
