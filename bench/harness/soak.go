package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const soakUsage = `harness soak: mixed load against one vellum serve process for a long time,
reporting every --interval what an operator watches.

  go run ./bench/harness soak                       # 10 minutes, 64 ingest clients
  go run ./bench/harness soak --duration 2m --interval 20s

Load: --clients HTTP clients posting --batch events per request (unique
event ids), --queriers clients alternating a filtered first page of
GET /v1/audit and GET /v1/audit/:seq of a random acknowledged record (with
its inclusion proof), each read appending its audit.query record. The
server seals a segment every --segment-size and signs a checkpoint every
--checkpoint-every. Each interval's row: ingest events/s, ingest and query
p99, queries/s, the server's RSS and open file descriptors, segments and
checkpoints on disk, the server's CPU, and errors. At the end the server
is stopped with SIGTERM and the whole store is checked with vellum verify
(HMAC and checkpoint signatures).

Flags:
`

type soakStats struct {
	mu sync.Mutex
	soakInterval
}

// soakInterval is what one reporting interval saw.
type soakInterval struct {
	ingestLat []time.Duration
	queryLat  []time.Duration
	events    int64
	queries   int64
	errors    int64
	lastErr   string
}

func (s *soakStats) take() soakInterval {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.soakInterval
	s.soakInterval = soakInterval{}
	return out
}

func (s *soakStats) fail(err error) {
	s.mu.Lock()
	s.errors++
	s.lastErr = err.Error()
	s.mu.Unlock()
}

func p99(l []time.Duration) time.Duration {
	if len(l) == 0 {
		return 0
	}
	slices.Sort(l)
	return l[min(len(l)-1, len(l)*99/100)]
}

func runSoak(args []string) error {
	fl := flag.NewFlagSet("soak", flag.ExitOnError)
	fl.Usage = func() { fmt.Fprint(os.Stderr, soakUsage); fl.PrintDefaults() }
	dur := fl.Duration("duration", 10*time.Minute, "how long the load runs")
	interval := fl.Duration("interval", time.Minute, "reporting period")
	clients := fl.Int("clients", 64, "concurrent ingest clients")
	batch := fl.Int("batch", 1, "events per ingest request")
	queriers := fl.Int("queriers", 2, "concurrent query clients")
	queryPause := fl.Duration("query-pause", 50*time.Millisecond, "pause between one querier's requests")
	segSize := fl.String("segment-size", "32MiB", "the server's audit.segment_max_size (seals)")
	cpEvery := fl.String("checkpoint-every", "10s", "the server's audit.checkpoint.every")
	bin := fl.String("bin", "", "vellum binary to run (default: this module's, built now)")
	dir := fl.String("dir", "", "parent of the server's data directory (default $TMPDIR); must not be tmpfs")
	allowMem := fl.Bool("allow-tmpfs", false, "allow --dir on tmpfs")
	logLevel := fl.String("log-level", "info", "the server's log_level")
	keep := fl.Bool("keep", false, "keep the data directory afterwards")
	prealloc := fl.String("preallocate", "", "the server's audit.preallocate (true or false; empty: its default)")
	fl.Parse(args)
	if *clients < 1 || *batch < 1 || *dur <= 0 || *interval <= 0 {
		return errors.New("--clients, --batch, --duration and --interval must be positive")
	}
	fsType, err := scratchDir(*dir, *allowMem)
	if err != nil {
		return err
	}
	var bins binFlag
	if *bin != "" {
		bins = binFlag{{"given", *bin}}
	}
	bins, cleanup, err := resolveBins(bins, "")
	defer cleanup()
	if err != nil {
		return err
	}
	var extra string
	switch *prealloc {
	case "":
	case "true", "false":
		extra = "  preallocate: " + *prealloc + "\n"
	default:
		return fmt.Errorf("--preallocate %q: true, false or empty", *prealloc)
	}
	srv, err := startServer(bins[0].path, *dir, serverConfig{LogLevel: *logLevel, SegmentMaxSize: *segSize, CheckpointEvery: *cpEvery, Extra: extra})
	if err != nil {
		return err
	}
	if !*keep {
		defer srv.remove()
	} else {
		fmt.Fprintf(os.Stderr, "data kept in %s\n", srv.data)
	}
	fmt.Printf("# soak: %v, %d ingest clients x %d events per request, %d queriers, segments of %s, checkpoints every %s, preallocate %q\n",
		*dur, *clients, *batch, *queriers, *segSize, *cpEvery, *prealloc)
	fmt.Printf("# data on %s; %s; load average at start %s\n\n", fsType, machine(), loadAvg())

	pools := makeBodies(*clients, *batch)
	lc := newLoadClient(srv.base, ingestToken, *clients)
	qc := newLoadClient(srv.base, adminToken, max(*queriers, 1))
	var (
		stats   soakStats
		stop    atomic.Bool
		lastSeq atomic.Uint64
		wg      sync.WaitGroup
		total   atomic.Int64
		errsAll atomic.Int64
	)
	for c := range pools {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			var buf bytes.Buffer
			var next uint64
			p := pools[c]
			for i := 0; !stop.Load(); i++ {
				k := i % len(p.bodies)
				stampIDs(p.bodies[k], p.idOffs[k], c, &next)
				t0 := time.Now()
				err := lc.post(p.bodies[k], *batch, &buf)
				d := time.Since(t0)
				if err != nil {
					stats.fail(err)
					errsAll.Add(1)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				if s := lastSeqOf(buf.Bytes()); s > lastSeq.Load() {
					lastSeq.Store(s) // approximate: races only lower it
				}
				stats.mu.Lock()
				stats.ingestLat = append(stats.ingestLat, d)
				stats.events += int64(*batch)
				stats.mu.Unlock()
				total.Add(int64(*batch))
			}
		}(c)
	}
	for q := range *queriers {
		wg.Add(1)
		go func(q int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(q), 7))
			for i := 0; !stop.Load(); i++ {
				var url string
				if s := lastSeq.Load(); i%2 == 1 && s > 0 {
					url = fmt.Sprintf("%s/v1/audit/%d", qc.base, 1+rng.Uint64N(s))
				} else {
					url = fmt.Sprintf("%s/v1/audit?tenant_id=tenant-%02d&action=tool.call&limit=100", qc.base, rng.IntN(20))
				}
				t0 := time.Now()
				err := qc.get(url)
				d := time.Since(t0)
				if err != nil {
					stats.fail(err)
					errsAll.Add(1)
				} else {
					stats.mu.Lock()
					stats.queryLat = append(stats.queryLat, d)
					stats.queries++
					stats.mu.Unlock()
				}
				time.Sleep(*queryPause)
			}
		}(q)
	}

	fmt.Println("| minute | ingest events/s | ingest p99 | queries/s | query p99 | server RSS | Go heap in use | GC goal | open fds | segments | checkpoints | server CPU | errors |")
	fmt.Println("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	start := time.Now()
	stats.take()
	cpuPrev, _ := procCPU(srv.pid())
	prev := start
	for i := 1; time.Since(start) < *dur; i++ {
		next := start.Add(time.Duration(i) * *interval)
		if end := start.Add(*dur); next.After(end) {
			next = end
		}
		time.Sleep(time.Until(next))
		now := time.Now()
		st := stats.take()
		cpu, _ := procCPU(srv.pid())
		el := now.Sub(prev).Seconds()
		heap := qc.goMemstats("go_memstats_heap_inuse_bytes", "go_memstats_next_gc_bytes")
		fmt.Printf("| %.1f | %s | %s | %.0f | %s | %.0f MB | %.0f MB | %.0f MB | %d | %d | %d | %.0f%% | %d |\n",
			now.Sub(start).Minutes(), commas(float64(st.events)/el), ms(p99(st.ingestLat)), float64(st.queries)/el, ms(p99(st.queryLat)),
			float64(procRSS(srv.pid()))/(1<<20), heap[0]/(1<<20), heap[1]/(1<<20), procFDs(srv.pid()), countSegments(srv.data), countCheckpoints(srv.data),
			100*(cpu-cpuPrev).Seconds()/el, st.errors)
		if st.lastErr != "" {
			fmt.Fprintf(os.Stderr, "harness: %d errors in this interval, the last: %s\n", st.errors, st.lastErr)
		}
		prev, cpuPrev = now, cpu
	}
	stop.Store(true)
	wg.Wait()
	lc.http.CloseIdleConnections()
	qc.http.CloseIdleConnections()
	if err := srv.stop(); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	fmt.Printf("\n%s events acknowledged in %v, %d errors; load average at end %s\n", commas(float64(total.Load())), dur.Round(time.Second), errsAll.Load(), loadAvg())
	out, err := exec.Command(bins[0].path, "verify", "--data", srv.data,
		"--key", filepath.Join(srv.data, "hmac.key"), "--pubkey", filepath.Join(srv.data, "signing.pub")).CombinedOutput()
	fmt.Printf("vellum verify of the store after the soak:\n%s\n", indent(string(out)))
	if err != nil {
		return fmt.Errorf("verify after the soak: %v", err)
	}
	if errsAll.Load() > 0 {
		return fmt.Errorf("%d requests failed during the soak", errsAll.Load())
	}
	return nil
}

// goMemstats returns the server's Go runtime gauges named (from GET
// /metrics, read with the admin token), -1 for each it could not read:
// go_memstats_heap_inuse_bytes is the heap in use, live and not yet
// collected; go_memstats_next_gc_bytes the GC's goal, twice the heap live
// after the last collection (GOGC 100), so it shows whether live memory
// grows.
func (c *loadClient) goMemstats(names ...string) []float64 {
	out := make([]float64, len(names))
	for i := range out {
		out[i] = -1
	}
	req, err := http.NewRequest(http.MethodGet, c.base+"/metrics", nil)
	if err != nil {
		return out
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil || resp.StatusCode != http.StatusOK {
		return out
	}
	for line := range strings.Lines(buf.String()) {
		for i, name := range names {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					out[i] = f
				}
			}
		}
	}
	return out
}

// get reads url and checks for 200.
func (c *loadClient) get(url string) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	_, err = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d: %.200s", strings.TrimPrefix(url, c.base), resp.StatusCode, buf.Bytes())
	}
	return nil
}

// lastSeqOf returns the last seq of an ingest response {"seqs":[...]}.
func lastSeqOf(b []byte) uint64 {
	i := bytes.LastIndexAny(b, "[,")
	j := bytes.LastIndexByte(b, ']')
	if i < 0 || j <= i {
		return 0
	}
	s, _ := strconv.ParseUint(string(bytes.TrimSpace(b[i+1:j])), 10, 64)
	return s
}

func countSegments(data string) int {
	m, _ := filepath.Glob(filepath.Join(data, "segments", "seg-*.vseg"))
	return len(m)
}

// countCheckpoints counts the frames of DATA/checkpoints (see FORMAT.md,
// "Checkpoint log"): magic VCKP, u32 length, note, CRC.
func countCheckpoints(data string) int {
	b, err := os.ReadFile(filepath.Join(data, "checkpoints"))
	if err != nil {
		return 0
	}
	n := 0
	for off := 0; off+8 <= len(b) && string(b[off:off+4]) == "VCKP"; n++ {
		l := int(b[off+4]) | int(b[off+5])<<8 | int(b[off+6])<<16 | int(b[off+7])<<24
		off += 8 + l + 4
	}
	return n
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
