package prover

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// BenchmarkThroughput proves mnist-cnn jobs through the real queue (embedded
// NATS) with 1 and 2 concurrent proofs in one worker, and reports proofs per
// minute and the process's peak RSS. Run: go test -bench Throughput
// -benchtime 1x ./prover.
func BenchmarkThroughput(b *testing.B) {
	ctx := context.Background()
	nats, err := StartEmbedded(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer nats.Shutdown()
	store := &Store{Dir: b.TempDir(), DevSetup: true}
	m := fixture(b, "mnist-cnn")
	if _, err := store.Prepare(ctx, m, nil); err != nil {
		b.Fatal(err)
	}
	for _, slots := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", slots), func(b *testing.B) {
			q, err := Connect(ctx, nats.URL(), QueueOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer q.Close()
			p, err := New(Options{Store: store, MaxConcurrent: slots})
			if err != nil {
				b.Fatal(err)
			}
			wctx, stop := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { (&Worker{Queue: q, Prover: p, Store: store}).Run(wctx); close(done) }()
			defer func() { stop(); <-done }()
			// Warm the key cache (and one constraint system per slot).
			for i := range slots {
				if _, err := p.Prove(ctx, m.ID(), image(b, i)); err != nil {
					b.Fatal(err)
				}
			}
			jobs := 8 * slots
			round := 0
			var elapsed time.Duration
			for b.Loop() {
				base, _ := q.ResultCount(ctx)
				start := time.Now()
				for i := range jobs {
					if err := q.Submit(ctx, Job{ID: fmt.Sprintf("bench-%d-%d-%d", slots, round, i), ModelID: m.ID(), Input: ints(image(b, i))}); err != nil {
						b.Fatal(err)
					}
				}
				for {
					if n, _ := q.ResultCount(ctx); n >= base+uint64(jobs) {
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
				elapsed += time.Since(start)
				round++
			}
			b.ReportMetric(float64(jobs*round)/elapsed.Minutes(), "proofs/min")
			b.ReportMetric(float64(peakRSSKB(os.Getpid()))/1024, "peak-RSS-MiB")
		})
	}
}

func peakRSSKB(pid int) int {
	var kb int
	fmt.Sscanf(peakRSS(pid), "%d kB", &kb)
	return kb
}
