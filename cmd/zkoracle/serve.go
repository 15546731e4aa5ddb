package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	_ "image/png"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/zkoracle/zkoracle/fixtures"
	"github.com/zkoracle/zkoracle/fixtures/mnist"
	"github.com/zkoracle/zkoracle/model"
	"github.com/zkoracle/zkoracle/model/onnx"
	"github.com/zkoracle/zkoracle/oracle"
	"github.com/zkoracle/zkoracle/oracle/client"
)

func init() {
	register("serve", "run the oracle: embedded NATS, prover, verifier and client API in one process", serveCmd)
	register("infer", "submit an inference to an oracle, wait, print the verified result", inferCmd)
}

func defaultData() string {
	if d := os.Getenv("ZKORACLE_DATA"); d != "" {
		return d
	}
	return filepath.Join(defaultStore(), "serve")
}

func apiKey() string {
	if k := os.Getenv("ZKORACLE_API_KEY"); k != "" {
		return k
	}
	b := make([]byte, 12)
	rand.Read(b)
	return "zko_" + hex.EncodeToString(b)
}

func fixtureModels() ([]*model.Model, error) {
	var ms []*model.Model
	for _, n := range fixtures.Names {
		m, err := fixtures.Load(n)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, nil
}

func serveCmd(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8080", "client API address")
	data := fs.String("data", defaultData(), "data directory (NATS, state files)")
	storeDir := fs.String("store", defaultStore(), "artifact store (compiled circuits and keys)")
	natsURL := fs.String("nats", "", "external NATS URL (default: embedded)")
	verifierURL := fs.String("verifier", "", "remote verifier URL (default: in process); its controller token from ZKORACLE_VERIFIER_TOKEN")
	slots := fs.Int("slots", 0, "in-process proving slots (0: default, -1: none, use zkoracle worker)")
	devSetup := fs.Bool("dev-setup", false, "single-party keys instead of a ceremony with the verifier (INSECURE: development only)")
	power := fs.Int("phase1-power", oracle.DefaultPhase1Power, "phase-1 size: models of up to 2^power constraints")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ms, err := fixtureModels()
	if err != nil {
		return err
	}
	key := apiKey()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	stack, err := oracle.Start(ctx, oracle.StackOptions{DataDir: *data, StoreDir: *storeDir, Listen: *listen, NATSURL: *natsURL,
		VerifierURL: *verifierURL, VerifierToken: os.Getenv("ZKORACLE_VERIFIER_TOKEN"), Slots: *slots,
		APIKeys: map[string]string{key: "default"}, Models: ms, Logger: log, DevSetup: *devSetup, Phase1Power: *power,
		// The in-process verifier's state lives with the keys it contributed
		// to, as in demo: both then reuse one ceremony.
		VerifierState: filepath.Join(*storeDir, "verifier.db")})
	if err != nil {
		return err
	}
	defer stack.Close()
	fmt.Fprintf(os.Stderr, "zkoracle serving on http://%s\nAPI key: %s\n", stack.Addr, key)
	<-ctx.Done()
	return nil
}

func inferCmd(args []string) error {
	fs := flag.NewFlagSet("infer", flag.ContinueOnError)
	url := fs.String("url", "http://127.0.0.1:8080", "oracle URL")
	key := fs.String("key", os.Getenv("ZKORACLE_API_KEY"), "API key (default $ZKORACLE_API_KEY)")
	name := fs.String("model", "mnist-cnn", "model name or ID")
	img := fs.Int("image", 0, "MNIST test image")
	png := fs.String("png", "", "a 28x28 PNG (dark digit on light background is inverted automatically)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	px, label := []int(nil), -1
	if *png != "" {
		p, err := readPNG(*png)
		if err != nil {
			return err
		}
		px = p
	} else {
		raw, l, err := mnist.TestImage(*img)
		if err != nil {
			return err
		}
		label = int(l)
		for _, v := range raw {
			px = append(px, int(v))
		}
	}
	c := &client.Client{URL: *url, Key: *key}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r, err := infer(ctx, c, *name, px)
	if err != nil {
		return err
	}
	printResult(r, label)
	return nil
}

func infer(ctx context.Context, c *client.Client, model string, px []int) (*oracle.Request, error) {
	r, err := c.Infer(ctx, oracle.InferenceRequest{Model: model, Pixels: px})
	if err != nil {
		return nil, err
	}
	return c.Wait(ctx, r.ID)
}

func printResult(r *oracle.Request, label int) {
	digit := "-"
	if r.Class != nil {
		digit = fmt.Sprint(*r.Class)
	}
	l := "-"
	if label >= 0 {
		l = fmt.Sprint(label)
	}
	total := r.Times[r.State].Sub(r.Times["created"]).Round(time.Millisecond)
	fmt.Printf("%-10s label %-2s digit %-2s %-9s prove %5dms  total %-8s request %s %s\n", r.ModelName, l, digit, r.State, r.ProveMillis, total, r.ID, r.Error)
}

// readPNG reads a 28x28 image as 0..255 ink values (MNIST: white digit on
// black); a mostly light image is inverted.
func readPNG(path string) ([]int, error) {
	w, h, gray, err := onnx.ReadGray(path)
	if err != nil {
		return nil, err
	}
	if w != mnist.Side || h != mnist.Side {
		return nil, fmt.Errorf("%s is %dx%d, want 28x28", path, w, h)
	}
	px := make([]int, len(gray))
	sum := 0
	for i, g := range gray {
		px[i] = int(g)
		sum += px[i]
	}
	if sum > 128*mnist.Pixels {
		for i := range px {
			px[i] = 255 - px[i]
		}
	}
	return px, nil
}
