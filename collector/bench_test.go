package collector

import (
	"context"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vellumlog/vellum/step"
	"github.com/vellumlog/vellum/vfs"
)

// timedStream yields n record-making steps, stamping when each is yielded
// into sent[i].
func timedStream(n int, sent []time.Time) iter.Seq2[step.Event, error] {
	return func(yield func(step.Event, error) bool) {
		for i := range n {
			sent[i] = time.Now()
			if !yield(step.Event{Type: step.LoopBreak, Reason: "r"}, nil) {
				return
			}
		}
	}
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	slices.Sort(d)
	return d[len(d)/2], d[len(d)*99/100]
}

// measure runs n events through wrap and returns each event's latency:
// from the upstream yield to the consumer receiving it.
func measure(b *testing.B, n int, wrap func(iter.Seq2[step.Event, error]) iter.Seq2[step.Event, error]) []time.Duration {
	sent := make([]time.Time, n)
	lat := make([]time.Duration, 0, n)
	i := 0
	for _, err := range wrap(timedStream(n, sent)) {
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(sent[i]))
		i++
	}
	return lat
}

// fdatasyncLatencies measures n raw 256-byte write+fdatasync calls in dir,
// through the same file system layer the engine uses.
func fdatasyncLatencies(b *testing.B, dir string, n int) []time.Duration {
	name := filepath.Join(dir, "fdatasync.probe")
	os.Remove(name)
	f, err := vfs.Default.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 256)
	out := make([]time.Duration, n)
	for i := range out {
		t := time.Now()
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		out[i] = time.Since(t)
	}
	return out
}

// BenchmarkAddedLatency: the collector's added latency per event (the
// time from the agent's yield to its consumer, minus the same without a
// collector), p50 and p99, with a real engine on the temp dir. fail_closed
// also measures raw write+fdatasync in the same run: its target is p99 ≤
// 1.5 × the fdatasync p99.
func BenchmarkAddedLatency(b *testing.B) {
	for _, policy := range []Policy{FailOpen, FailClosed} {
		b.Run("policy="+string(policy), func(b *testing.B) {
			dir := b.TempDir()
			e := openEngine(b, vfs.Default, filepath.Join(dir, "data"))
			defer e.Close()
			o := &Options{Policy: policy}
			if policy == FailOpen {
				o.SpillPath = filepath.Join(dir, "spill")
			}
			c, err := New(e, o)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			n := max(b.N, 200)
			ctx := WithRequest(context.Background(), Request{TenantID: "t", SessionID: "s"})
			// Rounds interleave the baseline, the collector and (for
			// fail_closed) raw fdatasyncs, so all see the same machine load.
			const round = 100
			var base, lat, sync []time.Duration
			b.ResetTimer()
			for done := 0; done < n; done += round {
				base = append(base, measure(b, round, func(s iter.Seq2[step.Event, error]) iter.Seq2[step.Event, error] { return s })...)
				lat = append(lat, measure(b, round, func(s iter.Seq2[step.Event, error]) iter.Seq2[step.Event, error] { return c.Wrap(ctx, s) })...)
				if policy == FailClosed {
					sync = append(sync, fdatasyncLatencies(b, dir, round)...)
				}
			}
			b.StopTimer()
			if err := c.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
			bp50, bp99 := percentiles(base)
			p50, p99 := percentiles(lat)
			b.ReportMetric(float64(p50-bp50)/1e3, "added-p50-µs")
			b.ReportMetric(float64(p99-bp99)/1e3, "added-p99-µs")
			if policy == FailClosed {
				sp50, sp99 := percentiles(sync)
				b.ReportMetric(float64(sp50)/1e3, "fdatasync-p50-µs")
				b.ReportMetric(float64(sp99)/1e3, "fdatasync-p99-µs")
				b.ReportMetric(float64(p99-bp99)/float64(sp99), "p99/fdatasync-p99")
			}
		})
	}
}

// BenchmarkThroughput: events per second through one collector, from one
// session and from 64 concurrent sessions, into a real engine.
func BenchmarkThroughput(b *testing.B) {
	for _, policy := range []Policy{FailOpen, FailClosed} {
		for _, sessions := range []int{1, 64} {
			b.Run(fmt.Sprintf("policy=%s/sessions=%d", policy, sessions), func(b *testing.B) {
				dir := b.TempDir()
				e := openEngine(b, vfs.Default, filepath.Join(dir, "data"))
				defer e.Close()
				o := &Options{Policy: policy}
				if policy == FailOpen {
					o.SpillPath = filepath.Join(dir, "spill")
				}
				c, err := New(e, o)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				per := max(b.N/sessions, 1)
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				for s := range sessions {
					wg.Go(func() {
						ctx := WithRequest(context.Background(), Request{TenantID: "t", SessionID: fmt.Sprint("s", s)})
						sent := make([]time.Time, per)
						for _, err := range c.Wrap(ctx, timedStream(per, sent)) {
							if err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				if err := c.Flush(context.Background()); err != nil { // durable, for fail_open too
					b.Fatal(err)
				}
				b.StopTimer()
				b.ReportMetric(float64(per*sessions)/time.Since(start).Seconds(), "events/s")
				if st := c.Stats(); st.Appended != uint64(per*sessions) {
					b.Fatalf("appended %d of %d", st.Appended, per*sessions)
				}
			})
		}
	}
}
