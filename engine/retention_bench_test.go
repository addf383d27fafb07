package engine

import (
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vellumlog/vellum"
)

// BenchmarkPurgeExpiredHalf builds a store of VELLUM_PURGE_RECORDS records
// (default 1,000,000) spread over 48 hours with a 24-hour retention, then
// measures a purge of the expired half while one writer appends records
// one at a time (each waiting for its fsync): the writer's latency during
// the purge against a baseline of the same writer just before, the purge's
// wall time and what it removed. Run it with -benchtime=1x.
func BenchmarkPurgeExpiredHalf(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("VELLUM_PURGE_RECORDS")); err == nil && v > 0 {
		n = v
	}
	dir := b.TempDir()
	if d := os.Getenv("VELLUM_BENCH_DIR"); d != "" {
		dir = d
	}
	clk := &fakeClock{t: t0}
	signer, _ := testSigner(b)
	o := testOpts(b)
	o.Now, o.Signer, o.DedupEntries = clk.Now, signer, -1
	o.Retention = Retention{MaxAge: 24 * time.Hour}
	if v, err := strconv.ParseInt(os.Getenv("VELLUM_PURGE_SEGMENT_SIZE"), 10, 64); err == nil && v > 0 {
		o.SegmentSize = v // default: the engine's (32 MiB)
	}
	e, err := Open(dir, o)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	const batch = 2000
	span := 48 * time.Hour
	start := time.Now()
	for i := 0; i < n; i += batch {
		clk.Set(t0.Add(time.Duration(float64(span) * float64(i) / float64(n))))
		recs := make([]vellum.Record, 0, batch)
		for j := i; j < min(i+batch, n); j++ {
			recs = append(recs, rec(j))
		}
		if _, err := e.Append(ctx, recs...); err != nil {
			b.Fatal(err)
		}
	}
	build := time.Since(start)
	clk.Set(t0.Add(span))
	segs := len(e.index.snapshot().sealed)

	// measure runs the writer until stop closes and returns its latencies.
	measure := func(stop <-chan struct{}) []time.Duration {
		var lat []time.Duration
		for i := 0; ; i++ {
			select {
			case <-stop:
				return lat
			default:
			}
			t := time.Now()
			if _, err := e.Append(ctx, rec(i)); err != nil {
				b.Error(err)
				return lat
			}
			lat = append(lat, time.Since(t))
		}
	}
	b.ResetTimer()
	stop := make(chan struct{})
	var base []time.Duration
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); base = measure(stop) }()
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()

	stop = make(chan struct{})
	var during []time.Duration
	wg.Add(1)
	go func() { defer wg.Done(); during = measure(stop) }()
	time.Sleep(100 * time.Millisecond)
	t := time.Now()
	res, err := e.Retention().Purge(ctx, PurgeOptions{By: "bench"})
	took := time.Since(t)
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	stat := func(l []time.Duration) (max, p99, p50 time.Duration) {
		slices.Sort(l)
		if len(l) == 0 {
			return
		}
		return l[len(l)-1], l[len(l)*99/100], l[len(l)/2]
	}
	bmax, bp99, bp50 := stat(base)
	dmax, dp99, dp50 := stat(during)
	var purged uint64
	if k := len(res.Segments); k > 0 {
		purged = res.Segments[k-1].LastSeq
	}
	b.ReportMetric(float64(took.Microseconds())/1000, "purge-ms")
	b.ReportMetric(float64(dmax.Microseconds())/1000, "append-max-during-ms")
	b.ReportMetric(float64(res.locked.Microseconds())/1000, "index-lock-ms")
	b.ReportMetric(float64(bmax.Microseconds())/1000, "append-max-before-ms")
	b.Logf("store: %d records in %d sealed segments, built in %s; purged %d segments (%d records, %d MiB) in %s (anchor seq %d; index lock held %s)",
		n, segs, build.Round(time.Second), len(res.Segments), purged, res.Bytes>>20, took.Round(time.Millisecond), res.AnchorSeq, res.locked)
	if res.Kept != nil {
		b.Logf("kept from segment %d: %s", res.Kept.Segment, res.Kept.Reason)
	}
	b.Logf("appends one at a time, before the purge (3 s): %d, p50 %s p99 %s max %s", len(base), bp50, bp99, bmax)
	b.Logf("appends during the purge (%s): %d, p50 %s p99 %s max %s", took.Round(time.Millisecond), len(during), dp50, dp99, dmax)
}
