package prover

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zkoracle/zkoracle/fixtures"
	"github.com/zkoracle/zkoracle/model"
	"github.com/zkoracle/zkoracle/model/layout"
	"github.com/zkoracle/zkoracle/verifier/core"
)

// TestMain doubles as a worker process for TestWorkersSurviveSIGKILL: the
// test re-executes its own binary with ZKO_TEST_WORKER set.
func TestMain(m *testing.M) {
	if os.Getenv("ZKO_TEST_WORKER") != "" {
		os.Exit(workerMain())
	}
	os.Exit(m.Run())
}

func workerMain() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("worker", os.Getenv("ZKO_TEST_WORKER"))
	ackWait, _ := time.ParseDuration(os.Getenv("ZKO_ACK_WAIT"))
	q, err := Connect(ctx, os.Getenv("ZKO_NATS"), QueueOptions{AckWait: ackWait})
	if err != nil {
		log.Error("connect", "err", err)
		return 1
	}
	defer q.Close()
	store := &Store{Dir: os.Getenv("ZKO_STORE")}
	p, err := New(Options{Store: store, MaxConcurrent: 1, Logger: log})
	if err != nil {
		log.Error("prover", "err", err)
		return 1
	}
	w := &Worker{Queue: q, Prover: p, Store: store, Name: os.Getenv("ZKO_TEST_WORKER"), Log: log}
	w.Run(ctx)
	return 0
}

func fixture(t testing.TB, name string) *model.Model {
	t.Helper()
	m, err := fixtures.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func image(t testing.TB, n int) []int8 {
	t.Helper()
	in, _, err := fixtures.TestInput(n)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func ints(in []int8) []int { return core.InputOf(in) }

// checkResult verifies a proved job against the store's verifying key with
// public inputs rebuilt from the input and the executor's output.
func checkResult(t *testing.T, s *Store, m *model.Model, in []int8, r *JobResult) {
	t.Helper()
	if r.State != StateProved {
		t.Fatalf("job %s: state %s (%s)", r.ID, r.State, r.Error)
	}
	tr, err := m.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(tr.Output) != fmt.Sprint(r.Output) {
		t.Fatalf("job %s: output %v, executor says %v", r.ID, r.Output, tr.Output)
	}
	vk, err := s.VerifyingKey(m.ID())
	if err != nil {
		t.Fatal(err)
	}
	proof, err := core.DecodeProof(r.Proof)
	if err != nil {
		t.Fatalf("job %s: proof: %v", r.ID, err)
	}
	if err := core.Check(vk, proof, core.Claim{Input: ints(in), Output: tr.Output}, len(in), len(tr.Output)); err != nil {
		t.Fatalf("job %s: proof does not verify: %v", r.ID, err)
	}
}

func TestStorePrepareOnce(t *testing.T) {
	dir := t.TempDir()
	m := fixture(t, "mnist-mlp")
	metas := make([]*Meta, 2)
	var wg sync.WaitGroup
	for i := range metas {
		wg.Go(func() {
			s := &Store{Dir: dir, DevSetup: true} // separate stores, as two processes would have
			meta, err := s.Prepare(context.Background(), m, nil)
			if err != nil {
				t.Error(err)
			}
			metas[i] = meta
		})
	}
	wg.Wait()
	if metas[0] == nil || metas[1] == nil || !metas[0].Created.Equal(metas[1].Created) {
		t.Fatalf("two prepares made two setups: %+v %+v", metas[0], metas[1])
	}
	if metas[0].Setup != SetupSingleParty || metas[0].Constraints == 0 || metas[0].LayoutVersion != layout.Version {
		t.Fatalf("meta %+v", metas[0])
	}
	entries, _ := os.ReadDir(dir + "/models")
	if len(entries) != 1 {
		t.Fatalf("store has %d model entries, want 1 (no temporary leftovers)", len(entries))
	}
}

func TestProveAndCache(t *testing.T) {
	s := &Store{Dir: t.TempDir(), DevSetup: true}
	m := fixture(t, "mnist-mlp")
	if _, err := s.Prepare(context.Background(), m, nil); err != nil {
		t.Fatal(err)
	}
	metrics := NewMetrics(nil)
	p, err := New(Options{Store: s, MaxConcurrent: 2, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			in := image(t, i)
			r, err := p.Prove(context.Background(), m.ID(), in)
			if err != nil {
				t.Error(err)
				return
			}
			checkResult(t, s, m, in, &JobResult{ID: strconv.Itoa(i), State: StateProved, Output: r.Output, Proof: r.Proof})
		})
	}
	wg.Wait()
	if _, err := p.Prove(context.Background(), "deadbeef", image(t, 0)); !IsTerminal(err) {
		t.Errorf("unknown model: got %v, want a terminal error", err)
	}
	if _, err := p.Prove(context.Background(), m.ID(), image(t, 0)[:100]); !IsTerminal(err) || !strings.Contains(err.Error(), "100 values") {
		t.Errorf("short input: got %v", err)
	}
}

// startWorker runs this test binary as a worker process and returns it with
// a channel of its log lines.
func startWorker(t *testing.T, name, natsURL, storeDir string, ackWait time.Duration) (*exec.Cmd, <-chan string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "ZKO_TEST_WORKER="+name, "ZKO_NATS="+natsURL, "ZKO_STORE="+storeDir, "ZKO_ACK_WAIT="+ackWait.String())
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
		close(lines)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, lines
}

// TestWorkersSurviveSIGKILL: two worker processes share 20 mnist-cnn jobs;
// one is killed with SIGKILL in the middle of a proof. All 20 jobs must end
// proved, with valid proofs, each recorded exactly once.
func TestWorkersSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("proves 20 mnist-cnn inferences")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	nats, err := StartEmbedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer nats.Shutdown()
	const ackWait = 4 * time.Second
	q, err := Connect(ctx, nats.URL(), QueueOptions{AckWait: ackWait})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	store := &Store{Dir: t.TempDir(), DevSetup: true}
	m := fixture(t, "mnist-cnn")
	if _, err := store.Prepare(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	if err := q.PublishArtifacts(ctx, store, m.ID()); err != nil {
		t.Fatal(err)
	}
	// The workers start with empty stores: they fetch the keys from NATS.
	victim, victimLog := startWorker(t, "w1", nats.URL(), t.TempDir(), ackWait)
	survivor, survivorLog := startWorker(t, "w2", nats.URL(), t.TempDir(), ackWait)
	go func() {
		for range survivorLog {
		}
	}()
	const jobs = 20
	for i := range jobs {
		if err := q.Submit(ctx, Job{ID: fmt.Sprintf("job-%02d", i), ModelID: m.ID(), Input: ints(image(t, i))}); err != nil {
			t.Fatal(err)
		}
	}
	// Kill w1 during its second proof.
	proving := 0
	for line := range victimLog {
		if strings.Contains(line, "msg=proving") {
			if proving++; proving == 2 {
				time.Sleep(200 * time.Millisecond) // well inside a proof
				victim.Process.Signal(syscall.SIGKILL)
				t.Logf("killed w1 during: %s", line)
				break
			}
		}
	}
	for {
		n, err := q.ResultCount(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n >= jobs {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("only %d of %d results after the deadline", n, jobs)
		case <-time.After(500 * time.Millisecond):
		}
	}
	retried := 0
	for i := range jobs {
		r, err := q.Result(ctx, fmt.Sprintf("job-%02d", i))
		if err != nil || r == nil {
			t.Fatalf("job %d: result %v, %v", i, r, err)
		}
		checkResult(t, store, m, image(t, i), r)
		if r.Attempt > 1 {
			retried++
		}
	}
	if n, _ := q.ResultCount(ctx); n != jobs {
		t.Fatalf("%d results recorded for %d jobs", n, jobs)
	}
	if retried == 0 {
		t.Fatal("no job was redelivered: the kill did not hit a proof")
	}
	if pending, _ := q.Pending(ctx); pending != 0 {
		t.Fatalf("%d jobs still pending", pending)
	}
	t.Logf("20 jobs proved once each; %d redelivered after the kill; survivor peak RSS %s", retried, peakRSS(survivor.Process.Pid))
}

// peakRSS reads VmHWM of a process.
func peakRSS(pid int) string {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// TestBadJobs: jobs that can never succeed end failed at once, with a clear
// error and no retry; a job that keeps failing goes to the dead-letter
// stream after MaxAttempts; the worker keeps serving good jobs throughout.
func TestBadJobs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nats, err := StartEmbedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer nats.Shutdown()
	q, err := Connect(ctx, nats.URL(), QueueOptions{AckWait: 5 * time.Second, MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	store := &Store{Dir: t.TempDir(), DevSetup: true}
	m := fixture(t, "mnist-mlp")
	if _, err := store.Prepare(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	// A second model whose proving key is corrupt on this worker: loading
	// fails every time (not the job's fault, so it is retried).
	broken := fixture(t, "mnist-mlp")
	broken.Name = "mnist-mlp-broken"
	if _, err := store.Prepare(ctx, broken, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(store.Path(broken.ID(), filePK), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := New(Options{Store: store, MaxConcurrent: 1})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		(&Worker{Queue: q, Prover: p, Store: store, Name: "w"}).Run(wctx)
		close(done)
	}()
	defer func() { stop(); <-done }()

	good := ints(image(t, 0))
	outOfRange := ints(image(t, 1))
	outOfRange[5] = 300
	jobs := []struct {
		job  Job
		want string // substring of the error; "" for success
	}{
		{Job{ID: "unknown", ModelID: "feedface", Input: good}, `unknown model "feedface"`},
		{Job{ID: "shape", ModelID: m.ID(), Input: good[:783]}, "input has 783 values"},
		{Job{ID: "range", ModelID: m.ID(), Input: outOfRange}, "input value 300 at 5 is outside int8"},
		{Job{ID: "late", ModelID: m.ID(), Input: good, Deadline: time.Now().Add(-time.Second)}, "deadline passed"},
		{Job{ID: "broken", ModelID: broken.ID(), Input: good}, "attempts exhausted"},
		{Job{ID: "good", ModelID: m.ID(), Input: good}, ""},
	}
	for _, j := range jobs {
		if err := q.Submit(ctx, j.job); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := q.js.Publish(ctx, SubjectJobs, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		var r *JobResult
		for r == nil && ctx.Err() == nil {
			if r, err = q.Result(ctx, j.job.ID); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if r == nil {
			t.Fatalf("job %s: no result", j.job.ID)
		}
		if j.want == "" {
			checkResult(t, store, m, image(t, 0), r)
			continue
		}
		if r.State != StateFailed || !strings.Contains(r.Error, j.want) {
			t.Errorf("job %s: state %s error %q, want failed with %q", j.job.ID, r.State, r.Error, j.want)
		}
		wantAttempt := 1
		if j.job.ID == "broken" {
			wantAttempt = 2
			if d, _ := q.DeadLetter(ctx, "broken"); d == nil || !strings.Contains(d.Error, "pk.raw") {
				t.Errorf("broken job: dead letter %+v, want one naming the unreadable key", d)
			}
		}
		if r.Attempt != wantAttempt {
			t.Errorf("job %s: failed at attempt %d, want %d", j.job.ID, r.Attempt, wantAttempt)
		}
	}
	// The malformed message is recorded under its stream sequence.
	for ctx.Err() == nil {
		if n, _ := q.ResultCount(ctx); n == uint64(len(jobs)+1) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if pending, _ := q.Pending(ctx); pending != 0 {
		t.Errorf("%d jobs left in the queue", pending)
	}
}
