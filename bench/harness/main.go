// Command harness builds large Vellum stores and measures them: the query
// latency of the time index in-process and over HTTP, reopen time and
// resident memory; and it loads `vellum serve`, run as a separate process
// on loopback, with HTTP ingest (throughput, latency, server CPU per event)
// and with a long mixed soak (throughput, p99s, RSS and descriptors per
// minute). It is the `bench/` harness PERFORMANCE.md quotes.
//
//	go run ./bench/harness build --data /tmp/v10m --records 10000000 [--compression zstd]
//	go run ./bench/harness query --data /tmp/v10m --queries 2000 --http
//	go run ./bench/harness ingest --clients 4 --batch 1000 --runs 5 [--baseline e851bcb]
//	go run ./bench/harness ingest --clients 64 --batch 1 --runs 5
//	go run ./bench/harness soak --duration 10m
//
// `harness <command> -h` lists each command's flags.
//
// Records come from bench.Gen (about 350 bytes encoded, 20 tenants, 8
// actions); receipt times are synthetic and spread evenly over one day so
// time-range queries have a realistic shape. Load goes only to loopback.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/bench"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/query"
	"github.com/vellumlog/vellum/server"
)

// The store's synthetic clock starts here and spans one day.
var epoch = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

const span = 24 * time.Hour

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: harness build|query|ingest|soak|replicate|query-sql [flags] (harness <command> -h for each)")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "build":
		err = build(os.Args[2:])
	case "query":
		err = runQueries(os.Args[2:])
	case "shapes", "sqlite-load": // issue 13's side by side (shapes.go)
		err = map[string]func([]string) error{"shapes": runShapes, "sqlite-load": sqliteLoad}[os.Args[1]](os.Args[2:])
	case "ingest":
		err = runIngest(os.Args[2:])
	case "soak":
		err = runSoak(os.Args[2:])
	case "replicate", "query-sql": // the SQL side (sql.go)
		err = map[string]func([]string) error{"replicate": replicateSQL, "query-sql": querySQL}[os.Args[1]](os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(1)
	}
}

func key() *chain.Keyring {
	k, _ := chain.NewKey(bytes.Repeat([]byte{0x42}, 32))
	return chain.NewKeyring(k)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func build(args []string) error {
	fl := flag.NewFlagSet("build", flag.ExitOnError)
	dir := fl.String("data", "", "data directory to create")
	n := fl.Int("records", 10_000_000, "records to append")
	callers := fl.Int("callers", 4, "concurrent appenders")
	batch := fl.Int("batch", 1000, "records per Append call")
	compression := fl.String("compression", "s2", "block codec of the store: s2 (64 KiB S2 blocks, the default), s2dict (8 KiB S2 blocks sharing a per-segment dictionary) or zstd")
	dictBlockSize := fl.Int("dict-block-size", 0, "raw block size of s2dict segments after their dictionary (0: the engine's default)")
	noPostings := fl.Bool("no-postings", false, "build without record-level postings (the baseline before issue 13)")
	blockSize := fl.Int("block-size", 0, "raw block and span size in bytes (0: the engine's default, 64 KiB)")
	fl.Parse(args)
	codec, err := codecFlag(*compression)
	if err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("--data is required")
	}
	calls := int64(*n / *batch)
	step := int64(span) / calls
	var clock atomic.Int64
	e, err := engine.Open(*dir, &engine.Options{
		Keys: key(), Logger: quiet(), DedupEntries: -1, Codec: codec, NoPostings: *noPostings, BlockSize: *blockSize, DictBlockSize: *dictBlockSize,
		// Callers advance the synthetic clock by one step per call, so
		// that the whole build covers one day evenly.
		Now: func() time.Time { return epoch.Add(time.Duration(clock.Load())) },
	})
	if err != nil {
		return err
	}
	start, cpu0 := time.Now(), selfCPU()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, *callers)
	for w := 0; w < *callers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			g := bench.NewGen(uint64(w + 1))
			recs := make([]vellum.Record, *batch)
			for next.Add(1) <= calls {
				for i := range recs {
					recs[i] = g.Next()
				}
				clock.Add(step)
				if _, err := e.Append(context.Background(), recs...); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	el, cpu := time.Since(start), selfCPU()-cpu0
	if err := e.Close(); err != nil {
		return err
	}
	select {
	case err := <-errs:
		return err
	default:
	}
	total := calls * int64(*batch)
	fmt.Printf("built %d records in %v (%.0f records/s incl. generation, %.2f µs CPU/record), %d callers x %d per call, postings %v\n",
		total, el.Round(time.Millisecond), float64(total)/el.Seconds(), float64(cpu.Microseconds())/float64(total), *callers, *batch, !*noPostings)
	size, segs, err := segmentBytes(*dir)
	if err != nil {
		return err
	}
	fmt.Printf("store: %d segments, %d bytes, %.1f bytes per record (%s)\n", segs, size, float64(size)/float64(total), codec)
	return nil
}

// Workload: first page of a one-hour window, one tenant, one action.
func randomQuery(rng *rand.Rand) query.Query {
	since := epoch.Add(time.Duration(rng.Int64N(int64(span - time.Hour))))
	actions := []string{"tool.call", "tool.result", "model.decision", "permission.decision", "approval.requested", "approval.granted", "request.start", "request.end"}
	return query.Query{
		Since:    since,
		Until:    since.Add(time.Hour),
		TenantID: fmt.Sprintf("tenant-%02d", rng.IntN(20)),
		Action:   actions[rng.IntN(len(actions))],
	}
}

func runQueries(args []string) error {
	fl := flag.NewFlagSet("query", flag.ExitOnError)
	dir := fl.String("data", "", "data directory built by `harness build`")
	n := fl.Int("queries", 2000, "queries per mode")
	withHTTP := fl.Bool("http", false, "also query over HTTP on loopback")
	fl.Parse(args)
	if *dir == "" {
		return errors.New("--data is required")
	}
	runtime.GC()
	start := time.Now()
	e, err := engine.Open(*dir, &engine.Options{Keys: key(), Logger: quiet()})
	if err != nil {
		return err
	}
	reopen := time.Since(start)
	defer e.Close()
	fmt.Printf("reopen: %v for %d records (peak RSS so far %.0f MB)\n", reopen.Round(time.Millisecond), e.LastSeq(), peakRSSMB())
	if size, segs, err := segmentBytes(*dir); err == nil && e.LastSeq() > 0 {
		fmt.Printf("store: %d segments, %.1f bytes per record\n", segs, float64(size)/float64(e.LastSeq()))
	}

	rng := rand.New(rand.NewPCG(1, 2))
	lat := make([]time.Duration, 0, *n)
	got := 0
	for i := 0; i < *n; i++ {
		q := randomQuery(rng)
		t0 := time.Now()
		page, err := e.Query(context.Background(), q)
		if err != nil {
			return err
		}
		lat = append(lat, time.Since(t0))
		got += len(page.Records)
	}
	report("in-process", lat, got)

	if *withHTTP {
		if err := httpQueries(e, *n); err != nil {
			return err
		}
	}
	fmt.Printf("peak RSS: %.0f MB\n", peakRSSMB())
	return nil
}

func httpQueries(e *engine.Engine, n int) error {
	const token = "harness-admin-token-0123456789"
	srv, err := server.New(nil, e, &server.Options{
		Logger:    quiet(),
		LookupEnv: func(k string) (string, bool) { return token, k == server.EnvAdminToken },
	})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go srv.Serve(l)
	defer srv.Shutdown(context.Background())
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	rng := rand.New(rand.NewPCG(1, 2))
	lat := make([]time.Duration, 0, n)
	got := 0
	for i := 0; i < n; i++ {
		q := randomQuery(rng)
		v := url.Values{}
		v.Set("since", q.Since.Format(time.RFC3339Nano))
		v.Set("until", q.Until.Format(time.RFC3339Nano))
		v.Set("tenant_id", q.TenantID)
		v.Set("action", q.Action)
		req, _ := http.NewRequest("GET", "http://"+l.Addr().String()+"/v1/audit?"+v.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		var body struct {
			Records []json.RawMessage `json:"records"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		lat = append(lat, time.Since(t0))
		if err != nil || resp.StatusCode != 200 {
			return fmt.Errorf("HTTP %d: %v", resp.StatusCode, err)
		}
		got += len(body.Records)
	}
	report("over HTTP (each query also appends its audit.query record, fsync'd)", lat, got)
	return nil
}

func report(mode string, lat []time.Duration, records int) {
	slices.Sort(lat)
	p := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1))] }
	fmt.Printf("%s: %d queries, first page (%.1f records avg): p50 %v  p90 %v  p99 %v  max %v\n",
		mode, len(lat), float64(records)/float64(len(lat)),
		p(0.50).Round(time.Microsecond), p(0.90).Round(time.Microsecond), p(0.99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))
}

func peakRSSMB() float64 {
	s, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(s), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.Atoi(strings.Fields(line)[1])
			return float64(kb) / 1024
		}
	}
	return 0
}
