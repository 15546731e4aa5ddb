package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/zkoracle/zkoracle/bench"
	"github.com/zkoracle/zkoracle/fixtures"
	"github.com/zkoracle/zkoracle/prover"
	"github.com/zkoracle/zkoracle/verifier"
	"github.com/zkoracle/zkoracle/verifier/ceremony"
)

func init() {
	register("ceremony phase1", "run a phase 1 (powers of tau) in the store with local contributions", ceremonyPhase1Cmd)
	register("ceremony contribute", "add your own contribution to a phase-1 or phase-2 state file", ceremonyContributeCmd)
	register("ceremony phase2-init", "write a model's initial phase-2 state (on the store's phase 1) for outside contributors", ceremonyPhase2InitCmd)
	register("ceremony verify", "check a model's ceremony transcript from scratch against the model file", ceremonyVerifyCmd)
}

// ceremonyPhase1Cmd runs a phase 1 with local contributions only. serve and
// register run theirs with the verifier contributing; this one is for
// standalone proving and for trying the ceremony out.
func ceremonyPhase1Cmd(args []string) error {
	fs := flag.NewFlagSet("ceremony phase1", flag.ContinueOnError)
	storeDir := fs.String("store", defaultStore(), "artifact store directory")
	power := fs.Int("power", 15, "circuits of up to 2^power constraints")
	n := fs.Int("contributions", 2, "local contributions")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cs := make([]prover.Contributor, *n)
	for i := range cs {
		cs[i] = prover.Operator{Label: fmt.Sprintf("local %d", i+1)}
	}
	start := time.Now()
	t, err := (&prover.Store{Dir: *storeDir}).RunPhase1(context.Background(), *power, cs, nil, stepPrinter(start))
	if err != nil {
		return err
	}
	fmt.Printf("phase 1 of 2^%d sealed: srs %s (%s, peak RSS %s)\n", t.Power, t.SRS, since(start), peakRSS())
	return nil
}

// ceremonyPhase2InitCmd starts a model's phase 2 for people who contribute
// with files: each runs `ceremony contribute` on the last state, and
// `register --contributions` applies their states before the operator's and
// the verifier's.
func ceremonyPhase2InitCmd(args []string) error {
	fs := flag.NewFlagSet("ceremony phase2-init", flag.ContinueOnError)
	name := fs.String("model", "mnist-cnn", "model file or fixture name")
	storeDir := fs.String("store", defaultStore(), "artifact store (its phase 1 must be the verifier's: run register or serve once)")
	out := fs.String("out", "phase2-00.bin", "state file to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	m, err := loadModel(*name)
	if err != nil {
		return err
	}
	start := time.Now()
	b, err := (&prover.Store{Dir: *storeDir}).InitialPhase2(m)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		return err
	}
	fmt.Printf("initial phase-2 state of %s written to %s (%.1f MB, state %s) in %s\n", m.Name, *out, float64(len(b))/1e6, ceremony.Hash(b), since(start))
	return nil
}

func ceremonyContributeCmd(args []string) error {
	fs := flag.NewFlagSet("ceremony contribute", flag.ContinueOnError)
	in := fs.String("in", "", "state file to build on")
	out := fs.String("out", "", "state file to write")
	name := fs.String("name", "", "your name in the transcript")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" || *out == "" {
		return errors.New("--in and --out are required")
	}
	b, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	start := time.Now()
	phase := 2
	if _, perr := ceremony.Phase1Power(b); perr == nil {
		phase = 1
	}
	next, c, err := ceremony.Contribute(phase, b, *name)
	if err != nil && phase == 1 { // a phase-2 state can look like phase 1's header
		phase = 2
		next, c, err = ceremony.Contribute(phase, b, *name)
	}
	if err != nil {
		return fmt.Errorf("%s is neither a phase-1 nor a phase-2 state: %w", *in, err)
	}
	if err := os.WriteFile(*out, next, 0o644); err != nil {
		return err
	}
	fmt.Printf("phase %d contribution written to %s in %s\n  built on  %s\n  new state %s\n  public key %s\n"+
		"Your secret is gone with this process. Publish the new state's hash and public key so others can find you in the transcript.\n",
		phase, *out, since(start), c.Challenge, c.Hash, c.PublicKey)
	return nil
}

func ceremonyVerifyCmd(args []string) error {
	fs := flag.NewFlagSet("ceremony verify", flag.ContinueOnError)
	name := fs.String("model", "mnist-cnn", "model file or fixture name")
	storeDir := fs.String("store", defaultStore(), "artifact store (default place of the transcript and phase 1)")
	transcript := fs.String("transcript", "", "transcript.json (default: the model's in the store)")
	phase1 := fs.String("phase1", "", "directory of the phase-1 states (default: the store's for the transcript's SRS)")
	vkFile := fs.String("vk", "", "verifying key to compare with what the ceremony yields (default: the store's, if any)")
	verifierURL := fs.String("verifier", "", "also check that this verifier registered the model with this ceremony's key and its own contributions")
	if err := fs.Parse(args); err != nil {
		return err
	}
	m, err := loadModel(*name)
	if err != nil {
		return err
	}
	store := &prover.Store{Dir: *storeDir}
	if *transcript == "" {
		*transcript = store.TranscriptPath(m.ID())
	}
	if *phase1 == "" {
		t, err := readTranscript(*transcript)
		if err != nil {
			return err
		}
		*phase1 = store.Phase1Dir(t.Phase1.SRS)
	}
	start := time.Now()
	t, key, err := prover.CheckCeremony(m, *transcript, *phase1, stepPrinter(start))
	if err != nil {
		return fmt.Errorf("ceremony REJECTED: %w", err)
	}
	fmt.Printf("ceremony of %s (%s) verified from scratch in %s (peak RSS %s)\n", m.Name, m.ID(), since(start), peakRSS())
	fmt.Printf("phase 1: 2^%d, beacon %s, srs %s\n", t.Phase1.Power, t.Phase1.Beacon, t.Phase1.SRS)
	for i, c := range t.Phase1.Contributions {
		fmt.Printf("  %d. %-10s state %s\n     public key %.64s...\n", i+1, c.Name, c.Hash, c.PublicKey)
	}
	fmt.Printf("phase 2: circuit %s (%d constraints, domain %d), beacon %s\n", t.Phase2.Circuit, t.Phase2.Constraints, t.Phase2.Domain, t.Phase2.Beacon)
	for i, c := range t.Phase2.Contributions {
		fmt.Printf("  %d. %-10s state %s\n     public key %.64s...\n", i+1, c.Name, c.Hash, c.PublicKey)
	}
	fmt.Printf("verifying key sha256 %s\n", t.Phase2.VerifyingKey)
	if *vkFile == "" && store.Has(m.ID()) {
		*vkFile = store.Path(m.ID(), "vk.bin")
	}
	if *vkFile != "" {
		vk, err := os.ReadFile(*vkFile)
		if err != nil {
			return err
		}
		if ceremony.Hash(vk) != ceremony.Hash(key) {
			return fmt.Errorf("%s is NOT the key this ceremony yields", *vkFile)
		}
		fmt.Printf("%s is the key this ceremony yields\n", *vkFile)
	}
	if *verifierURL != "" {
		return crossCheck(*verifierURL, m.ID(), t)
	}
	return nil
}

// crossCheck compares a verified transcript with the one a verifier keeps
// for the model: same chains, same key, and which contributions are its own.
func crossCheck(url, id string, t *ceremony.Transcript) error {
	resp, err := http.Get(url + "/api/v1/query/transcript/" + id)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var reply struct {
		Result *verifier.ModelCeremony
		Error  *struct{ Code, Message string }
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, verifier.MaxQueryReplyBytes)).Decode(&reply); err != nil {
		return fmt.Errorf("verifier %s: %w", url, err)
	}
	if reply.Error != nil || reply.Result == nil {
		return fmt.Errorf("verifier %s has no transcript for %s: %+v", url, id, reply.Error)
	}
	v := reply.Result
	if err := ceremony.Compare(t.Phase1.Contributions, v.Phase1.Contributions); err != nil {
		return fmt.Errorf("the verifier's phase 1 differs: %w", err)
	}
	if err := ceremony.Compare(t.Phase2.Contributions, v.Phase2.Contributions); err != nil {
		return fmt.Errorf("the verifier's phase 2 differs: %w", err)
	}
	if v.Phase2.VerifyingKey != t.Phase2.VerifyingKey || v.Phase1.SRS != t.Phase1.SRS || v.Phase2.Circuit != t.Phase2.Circuit {
		return fmt.Errorf("the verifier registered key %s (srs %s, circuit %s), the ceremony yields %s", v.Phase2.VerifyingKey, v.Phase1.SRS, v.Phase2.Circuit, t.Phase2.VerifyingKey)
	}
	fmt.Printf("the verifier at %s registered this key; its own contributions are phase 1 #%d and phase 2 #%d\n", url, v.OwnPhase1+1, v.OwnPhase2+1)
	return nil
}

func readTranscript(path string) (*ceremony.Transcript, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var t ceremony.Transcript
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return &t, nil
}

// stepPrinter prints each step with the time since start.
func stepPrinter(start time.Time) func(string) {
	return func(s string) { fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(start).Seconds(), s) }
}

// peakRSS is the process's peak resident set (VmHWM), or "?".
func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "?"
	}
	var kb int64
	for line := range strings.Lines(string(b)) {
		if _, err := fmt.Sscanf(line, "VmHWM: %d kB", &kb); err == nil {
			return fmt.Sprintf("%d MB", kb>>10)
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return fmt.Sprintf("%d MB (Go heap)", ms.Sys>>20)
}

func init() {
	register("ceremony bench", "time each ceremony step (and its peak memory) for models", ceremonyBenchCmd)
}

func ceremonyBenchCmd(args []string) error {
	fs := flag.NewFlagSet("ceremony bench", flag.ContinueOnError)
	out := fs.String("out", "bench/results/ceremony.json", "JSON results file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	names := fs.Args()
	if len(names) == 0 {
		names = fixtures.Names
	}
	results := map[string][]bench.CeremonyStep{}
	for _, n := range names {
		m, err := loadModel(n)
		if err != nil {
			return err
		}
		steps, err := bench.Ceremony(m, os.Stderr)
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		results[m.Name] = steps
		fmt.Printf("\n%s\n\n| step | time | peak RSS | output |\n|---|---:|---:|---:|\n", m.Name)
		for _, s := range steps {
			fmt.Printf("| %s | %.2f s | %.0f MB | %.1f MB |\n", s.Step, s.Ms/1000, s.PeakRSSMB, s.StateMB)
		}
	}
	b, err := json.MarshalIndent(map[string]any{"date": time.Now().UTC().Format(time.RFC3339), "machine": fmt.Sprintf("%d cores", runtime.NumCPU()), "results": results}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(*out, append(b, '\n'), 0o644)
}
