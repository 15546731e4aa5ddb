package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/zkoracle/zkoracle/fixtures/mnist"
	"github.com/zkoracle/zkoracle/oracle"
	"github.com/zkoracle/zkoracle/oracle/client"
)

func init() {
	register("demo", "start the oracle on embedded defaults, run the client on a few MNIST digits, stop", demo)
}

// demo is make run: the whole system in one process. It starts what
// `zkoracle serve` starts (embedded NATS, prover worker, verifier, client
// API on a loopback port), submits a few test images over HTTP with the Go
// client, prints each verified prediction and stops. Keys are cached in the
// store, so only the first run pays for compile and setup.
func demo(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	first := fs.Int("image", 0, "first MNIST test image")
	count := fs.Int("n", 6, "number of images (alternating mnist-cnn and mnist-mlp)")
	storeDir := fs.String("store", defaultStore(), "artifact store (keys and the verifier's state are kept here)")
	devSetup := fs.Bool("dev-setup", false, "single-party keys instead of a ceremony with the verifier (INSECURE: development only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	data, err := os.MkdirTemp("", "zkoracle-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(data)
	ms, err := fixtureModels()
	if err != nil {
		return err
	}
	fmt.Printf("starting the oracle (embedded NATS, prover, verifier, client API); keys cached in %s\n", *storeDir)
	if !*devSetup {
		fmt.Println("keys come from a Groth16 ceremony in which the verifier contributes; the first run takes a few minutes, later runs reuse it")
	}
	start := time.Now()
	key := apiKey()
	stack, err := oracle.Start(context.Background(), oracle.StackOptions{DataDir: data, StoreDir: *storeDir, Listen: "127.0.0.1:0",
		APIKeys: map[string]string{key: "demo"}, Models: ms, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		DevSetup: *devSetup, VerifierState: filepath.Join(*storeDir, "verifier.db"), Progress: stepPrinter(start)})
	if err != nil {
		return err
	}
	defer stack.Close()
	fmt.Printf("ready in %s on http://%s (API key %s)\n\n", since(start), stack.Addr, key)
	c := &client.Client{URL: "http://" + stack.Addr, Key: key}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	results := make([]*oracle.Request, *count)
	labels := make([]int, *count)
	var wg sync.WaitGroup
	var firstErr error
	var mu sync.Mutex
	for i := range *count {
		raw, label, err := mnist.TestImage(*first + i)
		if err != nil {
			return err
		}
		labels[i] = int(label)
		px := make([]int, len(raw))
		for j, v := range raw {
			px[j] = int(v)
		}
		name := []string{"mnist-cnn", "mnist-mlp"}[i%2]
		wg.Go(func() {
			r, err := infer(ctx, c, name, px)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			results[i] = r
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	verified := 0
	for i, r := range results {
		printResult(r, labels[i])
		if r.State == oracle.StateVerified {
			verified++
		}
	}
	fmt.Printf("\n%d of %d verified by the verifier; %s in all\n", verified, len(results), since(start))
	if verified != len(results) {
		return fmt.Errorf("%d requests not verified", len(results)-verified)
	}
	return nil
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }
