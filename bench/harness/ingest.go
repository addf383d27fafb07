package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/bench"
)

// binFlag collects --bin name=path pairs in order.
type binFlag []namedBin

type namedBin struct{ name, path string }

func (b *binFlag) String() string { return fmt.Sprint(*b) }

func (b *binFlag) Set(v string) error {
	name, path, ok := strings.Cut(v, "=")
	if !ok || name == "" || path == "" {
		return errors.New("want name=path")
	}
	*b = append(*b, namedBin{name, path})
	return nil
}

const ingestUsage = `harness ingest: HTTP ingest throughput of vellum serve, run as a separate
process on loopback with a fresh data directory per run.

  go run ./bench/harness ingest --clients 4 --batch 1000 --duration 10s --runs 5
  go run ./bench/harness ingest --clients 64 --batch 1 --baseline e851bcb

Each run starts the server, lets the clients post for --warmup, then
measures for --duration: events/s, request latency p50/p99, the server's
CPU per event (from /proc/<pid>/stat) and the load generator's own CPU per
event (getrusage), then stops the server with SIGTERM. With several
servers (--bin, --baseline) the runs alternate between them so they share
the machine's conditions, and the summary gives medians and the ratio to
the first. Events are bench.Gen records (~350 bytes encoded, ~530 as
JSON), each with a unique event_id so none is deduplicated.

The load generator shares the machine with the server, so its own CPU
matters: by default (--client raw) each client keeps one HTTP/1.1
connection alive and sends a pre-encoded request head and body with one
writev, without net/http's Transport (about half the CPU per one-event
request); --client nethttp uses the Transport (also kept alive).
--server-cpuprofile DIR profiles each run's server (vellum serve
--cpuprofile) and --cpuprofile FILE the load generator.

Flags:
`

func runIngest(args []string) error {
	fl := flag.NewFlagSet("ingest", flag.ExitOnError)
	fl.Usage = func() { fmt.Fprint(os.Stderr, ingestUsage); fl.PrintDefaults() }
	clients := fl.Int("clients", 4, "concurrent HTTP clients, each posting one request at a time")
	batch := fl.Int("batch", 1000, "events per request (a JSON array)")
	dur := fl.Duration("duration", 10*time.Second, "measured time per run")
	warmup := fl.Duration("warmup", 2*time.Second, "time before measuring, per run")
	runs := fl.Int("runs", 5, "runs per server; the summary gives medians")
	var bins binFlag
	fl.Var(&bins, "bin", "name=path of a vellum binary to measure (repeatable); default: this module's, built now")
	baseline := fl.String("baseline", "", "git revision to build and measure first, as the baseline (e.g. e851bcb)")
	dir := fl.String("dir", "", "parent of the servers' data directories (default $TMPDIR); must not be tmpfs")
	allowMem := fl.Bool("allow-tmpfs", false, "allow --dir on tmpfs (measures the CPU ceiling, not a disk)")
	logLevel := fl.String("log-level", "info", "the servers' log_level (info logs one line per request, as deployed)")
	srvProf := fl.String("server-cpuprofile", "", "directory for a CPU profile of each run's server (serve --cpuprofile; not passed to the --baseline server, which may predate the flag)")
	client := fl.String("client", "raw", "the load generator's HTTP client: raw (kept-alive connections, pre-encoded request heads, no allocation per request) or nethttp (net/http's Transport)")
	genProf := fl.String("cpuprofile", "", "write the load generator's own CPU profile (all runs) to this file")
	fl.Parse(args)
	if *clients < 1 || *batch < 1 || *runs < 1 || *dur <= 0 {
		return errors.New("--clients, --batch, --runs and --duration must be positive")
	}
	if *client != "raw" && *client != "nethttp" {
		return fmt.Errorf("--client %q is not raw or nethttp", *client)
	}
	fsType, err := scratchDir(*dir, *allowMem)
	if err != nil {
		return err
	}
	bins, cleanup, err := resolveBins(bins, *baseline)
	defer cleanup()
	if err != nil {
		return err
	}
	fmt.Printf("# ingest: %d clients x %d events per request, %v per run after %v warm-up, %d runs per server\n",
		*clients, *batch, *dur, *warmup, *runs)
	fmt.Printf("# data on %s; load average at start %s; %s; client %s\n", fsType, loadAvg(), machine(), *client)
	if *genProf != "" {
		stop, err := profileSelf(*genProf)
		if err != nil {
			return err
		}
		defer stop()
	}
	pools := makeBodies(*clients, *batch)
	results := map[string][]ingestResult{}
	fmt.Println("\n| server | run | events/s | p50 | p99 | server CPU/event | load gen CPU/event | errors | load avg |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
	for r := 1; r <= *runs; r++ {
		for _, b := range bins {
			sc := serverConfig{LogLevel: *logLevel}
			if *srvProf != "" && (*baseline == "" || b.name != bins[0].name) {
				sc.CPUProfile = filepath.Join(*srvProf, fmt.Sprintf("%s-run%d.pprof", strings.Trim(b.name, "()"), r))
			}
			res, err := ingestOnce(b.path, *dir, sc, *client, pools, *batch, *warmup, *dur)
			if err != nil {
				return fmt.Errorf("%s run %d: %w", b.name, r, err)
			}
			results[b.name] = append(results[b.name], res)
			fmt.Printf("| %s | %d | %s | %s | %s | %s | %s | %d | %s |\n", b.name, r, commas(res.rate), ms(res.p50), ms(res.p99),
				us(res.serverCPU), us(res.genCPU), res.errors, res.load)
		}
	}
	fmt.Printf("\nMedians of %d runs (%d clients x %d events per request; load average at end %s):\n\n", *runs, *clients, *batch, loadAvg())
	fmt.Println("| server | events/s | ratio | p50 | p99 | server CPU/event | load gen CPU/event | errors |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	var base float64
	for i, b := range bins {
		rs := results[b.name]
		m := medianResult(rs)
		if i == 0 {
			base = m.rate
		}
		errs := 0
		for _, r := range rs {
			errs += r.errors
		}
		fmt.Printf("| %s | %s | %.2f | %s | %s | %s | %s | %d |\n", b.name, commas(m.rate), m.rate/base, ms(m.p50), ms(m.p99),
			us(m.serverCPU), us(m.genCPU), errs)
	}
	return nil
}

// resolveBins builds what is to be measured: the baseline revision, then
// the given binaries, or this module's command when none is given.
func resolveBins(bins binFlag, baseline string) (binFlag, func(), error) {
	tmp, err := os.MkdirTemp("", "vellum-harness-bin-")
	if err != nil {
		return nil, func() {}, err
	}
	cleanup := func() { os.RemoveAll(tmp) }
	var out binFlag
	if baseline != "" {
		p := filepath.Join(tmp, "vellum-"+baseline)
		fmt.Fprintf(os.Stderr, "building vellum at %s ...\n", baseline)
		if err := buildAt(baseline, p); err != nil {
			return nil, cleanup, err
		}
		out = append(out, namedBin{"base(" + baseline + ")", p})
	}
	if len(bins) == 0 {
		p := filepath.Join(tmp, "vellum-this")
		fmt.Fprintln(os.Stderr, "building vellum from this tree ...")
		if err := buildVellum(".", p); err != nil {
			return nil, cleanup, err
		}
		bins = binFlag{{"this", p}}
	}
	return append(out, bins...), cleanup, nil
}

// clientBodies are one client's request bodies and where in them each
// event_id's 16 hex digits sit, so every request can carry new ids.
type clientBodies struct {
	bodies [][]byte
	idOffs [][]int
}

const bodiesPerClient = 8

// makeBodies pregenerates the request bodies of every client, so the
// load generator spends its CPU on HTTP, not on making events.
func makeBodies(clients, batch int) []clientBodies {
	out := make([]clientBodies, clients)
	for c := range out {
		g := bench.NewGen(uint64(c + 1))
		n := bodiesPerClient
		if batch >= 100 {
			n = 2 // large bodies: two are enough to vary the content
		}
		for range n {
			var b bytes.Buffer
			b.WriteByte('[')
			for i := range batch {
				if i > 0 {
					b.WriteByte(',')
				}
				r := g.Next()
				b.Write(eventJSON(&r, i))
			}
			b.WriteByte(']')
			body := b.Bytes()
			var offs []int
			const key = `"event_id":"evt-`
			for i := 0; ; {
				j := bytes.Index(body[i:], []byte(key))
				if j < 0 {
					break
				}
				offs = append(offs, i+j+len(key))
				i += j + len(key)
			}
			out[c].bodies = append(out[c].bodies, body)
			out[c].idOffs = append(out[c].idOffs, offs)
		}
	}
	return out
}

// eventJSON is r as an ingest event: its JSON form without what the store
// assigns, and an event time.
func eventJSON(r *vellum.Record, i int) []byte {
	b, _ := json.Marshal(r)
	var m map[string]json.RawMessage
	json.Unmarshal(b, &m)
	for _, k := range []string{"seq", "time", "event_time", "mac", "prev_mac", "key_id", "redactions"} {
		delete(m, k)
	}
	m["time"], _ = json.Marshal(epoch.Add(time.Duration(i) * time.Millisecond).Format(time.RFC3339Nano))
	out, _ := json.Marshal(m)
	return out
}

// stampIDs writes fresh event ids (client and a counter, in hex) into a
// body's event_id slots.
func stampIDs(body []byte, offs []int, client int, next *uint64) {
	const hexd = "0123456789abcdef"
	for _, o := range offs {
		*next++
		v := uint64(client+1)<<44 | *next
		for i := 15; i >= 0; i-- {
			body[o+i] = hexd[v&15]
			v >>= 4
		}
	}
}

type ingestResult struct {
	rate      float64
	p50, p99  time.Duration
	serverCPU time.Duration // per event
	genCPU    time.Duration // per event
	events    int64
	errors    int
	load      string
}

func medianResult(rs []ingestResult) ingestResult {
	med := func(f func(ingestResult) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return ingestResult{
		rate:      med(func(r ingestResult) float64 { return r.rate }),
		p50:       time.Duration(med(func(r ingestResult) float64 { return float64(r.p50) })),
		p99:       time.Duration(med(func(r ingestResult) float64 { return float64(r.p99) })),
		serverCPU: time.Duration(med(func(r ingestResult) float64 { return float64(r.serverCPU) })),
		genCPU:    time.Duration(med(func(r ingestResult) float64 { return float64(r.genCPU) })),
	}
}

// loadClient posts to a server: one connection per client goroutine.
type loadClient struct {
	http  *http.Client
	base  string
	token string
}

func newLoadClient(base, token string, conns int) *loadClient {
	return &loadClient{base: base, token: token, http: &http.Client{
		Timeout: 2 * time.Minute,
		Transport: &http.Transport{
			MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
			DisableCompression: true, IdleConnTimeout: time.Minute,
		},
	}}
}

// post sends one ingest request and checks that it was acknowledged with
// want seqs. buf is reused for the response.
func (c *loadClient) post(body []byte, want int, buf *bytes.Buffer) error {
	req, err := http.NewRequest(http.MethodPost, c.base+"/v1/audit/events", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	buf.Reset()
	_, err = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	return checkAck(resp.StatusCode, buf.Bytes(), err, want)
}

// checkAck checks an ingest answer: 200 with want seqs.
func checkAck(status int, body []byte, err error, want int) error {
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("HTTP %d: %.200s", status, body)
	}
	if !bytes.HasPrefix(body, []byte(`{"seqs":[`)) {
		return fmt.Errorf("not an ingest answer: %.200s", body)
	}
	if got := bytes.Count(body, []byte{','}) + 1; got != want {
		return fmt.Errorf("%d seqs acknowledged, want %d", got, want)
	}
	return nil
}

// ingestOnce runs one measured run against a fresh server.
func ingestOnce(bin, dir string, sc serverConfig, client string, pools []clientBodies, batch int, warmup, dur time.Duration) (ingestResult, error) {
	srv, err := startServer(bin, dir, sc)
	if err != nil {
		return ingestResult{}, err
	}
	defer srv.remove()
	lc := newLoadClient(srv.base, ingestToken, len(pools))
	var (
		stop     atomic.Bool
		winStart atomic.Int64 // unix ns; 0 until the window opens
		winEnd   atomic.Int64
		events   atomic.Int64
		errCount atomic.Int64
		firstErr atomic.Value
		wg       sync.WaitGroup
		lats     = make([][]time.Duration, len(pools))
	)
	for c := range pools {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			var buf bytes.Buffer
			var next uint64
			p := pools[c]
			post := func(body []byte) error { return lc.post(body, batch, &buf) }
			if client == "raw" {
				rp, err := newRawPoster(srv.base, "/v1/audit/events", ingestToken)
				if err != nil {
					errCount.Add(1)
					firstErr.CompareAndSwap(nil, err)
					return
				}
				defer rp.close()
				post = func(body []byte) error {
					status, resp, err := rp.post(body)
					return checkAck(status, resp, err, batch)
				}
			}
			for i := 0; !stop.Load(); i++ {
				k := i % len(p.bodies)
				stampIDs(p.bodies[k], p.idOffs[k], c, &next)
				t0 := time.Now()
				err := post(p.bodies[k])
				t1 := time.Now()
				ws, we := winStart.Load(), winEnd.Load()
				in := ws != 0 && t1.UnixNano() >= ws && (we == 0 || t1.UnixNano() <= we)
				if err != nil {
					errCount.Add(1)
					firstErr.CompareAndSwap(nil, err)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				if in {
					events.Add(int64(batch))
					lats[c] = append(lats[c], t1.Sub(t0))
				}
			}
		}(c)
	}
	time.Sleep(warmup)
	cpu0, err := procCPU(srv.pid())
	if err != nil {
		stop.Store(true)
		wg.Wait()
		srv.stop()
		return ingestResult{}, err
	}
	gen0 := selfCPU()
	t0 := time.Now()
	winStart.Store(t0.UnixNano())
	time.Sleep(dur)
	t1 := time.Now()
	winEnd.Store(t1.UnixNano())
	cpu1, _ := procCPU(srv.pid())
	gen1 := selfCPU()
	load := loadAvg()
	stop.Store(true)
	wg.Wait()
	lc.http.CloseIdleConnections()
	if err := srv.stop(); err != nil {
		return ingestResult{}, fmt.Errorf("server: %w", err)
	}
	n := events.Load()
	res := ingestResult{events: n, errors: int(errCount.Load()), load: load}
	if e, ok := firstErr.Load().(error); ok {
		fmt.Fprintf(os.Stderr, "harness: %d failed requests, the first: %v\n", res.errors, e)
	}
	if n == 0 {
		return res, errors.New("no request completed in the measured window")
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	slices.Sort(all)
	res.rate = float64(n) / t1.Sub(t0).Seconds()
	res.p50 = all[len(all)/2]
	res.p99 = all[min(len(all)-1, len(all)*99/100)]
	res.serverCPU = (cpu1 - cpu0) / time.Duration(n)
	res.genCPU = (gen1 - gen0) / time.Duration(n)
	return res, nil
}

func commas(f float64) string {
	s := fmt.Sprintf("%.0f", f)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

func us(d time.Duration) string { return fmt.Sprintf("%.1f µs", float64(d)/1e3) }

// profileSelf writes the harness's own CPU profile to path until the
// returned func runs.
func profileSelf(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// machine names the CPU count and Go's view of the machine.
func machine() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	model := ""
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "model name") {
			_, model, _ = strings.Cut(line, ":")
			break
		}
	}
	return fmt.Sprintf("%d CPUs (%s)", numCPU(), strings.TrimSpace(model))
}

func numCPU() int { return runtime.NumCPU() }
