package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/cosign"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/witness"
)

// BenchmarkIngestWitness measures durable appends to a store that signs
// checkpoints, without and with a witness. With one, every checkpoint is
// pushed over loopback HTTP to a real witness running in a child process
// (as on its own machine, but sharing these two cores), which fsyncs its
// view before answering. The two stores take turns in rounds of 50,000
// records (4 callers, 1,000 records per call), so both see the same disk
// and the same neighbours: on a shared machine only an interleaved run
// gives a ratio worth quoting.
//
// After each round the benchmark waits until that store's tree goroutine
// has caught up (and, for the witnessed store, until the witness has
// cosigned its newest checkpoint), so no work spills
// into the other store's round. That wait is not wall time ingest would
// spend (a server never waits for its tree or a witness), but the CPU
// burnt in it would compete with ingest, so it is charged to the store
// whose round it finishes, as CPU time. checkpoint=N signs every N records
// (the server's default, every 100,000 records or 10 s, pushes ten times
// less often than checkpoint=10000 at these rates).
// Reported: both rates, ratio = witnessed / plain (target >= 0.98), and
// each side's CPU per record in this process (the witness's own CPU, in
// its process, is not counted).
func BenchmarkIngestWitness(b *testing.B) {
	const callers, batch, round = 4, 1000, 50_000
	for _, every := range []int{100_000, 10_000, 1_000} {
		b.Run(fmt.Sprintf("checkpoint=%d", every), func(b *testing.B) {
			plain, _ := openWitnessed(b, every, false)
			witnessed, cosigned := openWitnessed(b, every, true)
			pool := pregen(4096)
			rounds := (b.N + round - 1) / round
			var plainTime, witnessTime, plainCPU, witnessCPU time.Duration
			b.SetBytes(recordBytes)
			b.ResetTimer()
			for r := 0; r < rounds; r++ {
				cpu0 := cpuTime()
				plainTime += ingestRound(b, plain, pool, callers, batch, round)
				cpu1 := cpuTime()
				settle(plain, nil)
				cpu2 := cpuTime()
				witnessTime += ingestRound(b, witnessed, pool, callers, batch, round)
				cpu3 := cpuTime()
				settle(witnessed, cosigned)
				cpu4 := cpuTime()
				plainTime += cpu2 - cpu1
				witnessTime += cpu4 - cpu3
				plainCPU += cpu2 - cpu0
				witnessCPU += cpu4 - cpu2
			}
			b.StopTimer()
			n := float64(rounds * round)
			pr, wr := n/plainTime.Seconds(), n/witnessTime.Seconds()
			b.ReportMetric(pr, "records/s-plain")
			b.ReportMetric(wr, "records/s-witness")
			b.ReportMetric(wr/pr, "ratio")
			// CPU per record is steadier than wall time on a shared machine.
			b.ReportMetric(float64(plainCPU.Nanoseconds())/n, "cpu-ns/record-plain")
			b.ReportMetric(float64(witnessCPU.Nanoseconds())/n, "cpu-ns/record-witness")
			plain.Close()
			witnessed.Close()
		})
	}
}

// settle waits until e's tree goroutine, which hashes behind the writer,
// has caught up with everything appended and, with cosigned, until the
// witness has cosigned the newest checkpoint: the work a round set going,
// done before the other store's round starts.
func settle(e *engine.Engine, cosigned func() uint64) {
	for {
		size, _ := e.TreeHead()
		cp, _ := e.LatestCheckpoint()
		if size == e.LastSeq() && (cosigned == nil || cosigned() >= cp.Size) {
			return
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// ingestRound appends n records to e from callers goroutines, batch
// records per call, and returns how long it took.
func ingestRound(b *testing.B, e *engine.Engine, pool []vellum.Record, callers, batch, n int) time.Duration {
	calls := n / batch
	t0 := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	issued := 0
	for w := 0; w < callers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			recs := make([]vellum.Record, batch)
			for i := 0; ; i++ {
				mu.Lock()
				if issued >= calls {
					mu.Unlock()
					return
				}
				issued++
				mu.Unlock()
				for j := range recs {
					recs[j] = pool[(w*7919+i*batch+j)%len(pool)]
				}
				if _, err := e.Append(context.Background(), recs...); err != nil {
					b.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	return time.Since(t0)
}

// openWitnessed opens a signing store in a fresh directory, with a witness
// pusher and a witness when withWitness. cosigned reports the size of the
// newest checkpoint the witness cosigned.
func openWitnessed(b *testing.B, every int, withWitness bool) (e *engine.Engine, cosigned func() uint64) {
	b.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	priv, pub, err := checkpoint.GenerateKey("bench")
	if err != nil {
		b.Fatal(err)
	}
	signer, _ := note.NewSigner(priv)
	k, _ := chain.NewKey(bytes.Repeat([]byte{1}, 32))
	dir := b.TempDir()
	opts := &engine.Options{Keys: chain.NewKeyring(k), Logger: quiet, Signer: signer, CheckpointRecords: every, CheckpointInterval: -1}
	if !withWitness {
		e, err := engine.Open(dir, opts)
		if err != nil {
			b.Fatal(err)
		}
		return e, nil
	}
	// The origin is known once the store exists.
	e, err = engine.Open(dir, opts)
	if err != nil {
		b.Fatal(err)
	}
	origin := e.Origin()
	e.Close()
	url, key := startWitnessProcess(b, origin, pub)
	p, err := witness.NewPusher(dir, &witness.PusherOptions{Targets: []witness.Target{{URL: url, Key: key}}, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	opts.OnCheckpoint = p.Notify
	if e, err = engine.Open(dir, opts); err != nil {
		b.Fatal(err)
	}
	p.Start(e, nil)
	b.Cleanup(p.Close)
	return e, func() uint64 {
		s, _ := p.LatestCosigned()
		return s.Size
	}
}

// The witness runs in a child process (this test binary, re-executed), as
// it would on its own machine: its CPU is not this process's, and
// cpu-ns/record counts only what the store spends on pushing.
const (
	envWitnessDir = "VELLUM_BENCH_WITNESS_DIR"
	envWitnessLog = "VELLUM_BENCH_WITNESS_LOG"
)

func init() {
	dir := os.Getenv(envWitnessDir)
	if dir == "" {
		return
	}
	origin, key, _ := strings.Cut(os.Getenv(envWitnessLog), "=")
	v, err := note.NewVerifier(key)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	w, err := witness.Open(dir, &witness.Options{Logs: []witness.Log{{Origin: origin, Key: v}}, Logger: quiet})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Printf("%s %s\n", l.Addr(), w.Verifier())
	go http.Serve(l, w.Handler())
	io.Copy(io.Discard, os.Stdin) // until the parent closes stdin or exits
	w.Close()
	os.Exit(0)
}

// startWitnessProcess starts a witness watching origin in a child process
// and returns its URL and key.
func startWitnessProcess(b *testing.B, origin, logKey string) (string, *cosign.Verifier) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envWitnessDir+"="+b.TempDir(), envWitnessLog+"="+origin+"="+logKey)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("witness process: %v", err)
	}
	addr, vkey, _ := strings.Cut(strings.TrimSpace(line), " ")
	key, err := cosign.NewVerifier(vkey)
	if err != nil {
		b.Fatal(err)
	}
	return "http://" + addr, key
}
