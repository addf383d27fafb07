package bench

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/segment"
)

func TestBatchSizes(t *testing.T) {
	k, _ := chain.NewKey(bytes.Repeat([]byte{1}, 32))
	var batches, recs atomic.Int64
	e, _ := engine.Open(t.TempDir(), &engine.Options{Keys: chain.NewKeyring(k), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnCommit: func(seg uint64, es []segment.Entry) { batches.Add(1); recs.Add(int64(len(es))) }})
	pool := pregen(1024)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < 1024; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				e.Append(context.Background(), pool[w])
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	t.Logf("%d records in %d batches (avg %.1f) in %v: %.0f rec/s", recs.Load(), batches.Load(), float64(recs.Load())/float64(batches.Load()), el, float64(recs.Load())/el.Seconds())
	e.Close()
}
