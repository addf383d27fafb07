package bench

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/segment"
	"github.com/vellumlog/vellum/verify"
)

// verifyStore is a store of ~350-byte records with checkpoints, built once
// per benchmark binary: VELLUM_BENCH_VERIFY_RECORDS records (default
// 2,000,000) in 64 MiB segments (five of them, so both cores of the
// project's machine get near-equal shares: verification is parallel across
// segments). 64 MiB was the engine's default when PERFORMANCE.md's numbers
// were taken; it is set here so that they stay comparable.
type verifyStore struct {
	dir      string
	key      *chain.Key
	signer   note.Signer
	verifier note.Verifier
	records  int
	bytes    int64
	samples  [][]byte // encodings for the HMAC baseline
}

// verifyStores holds the store of each codec, built on first use.
var verifyStores struct {
	sync.Mutex
	m map[segment.Codec]*verifyStore
}

func buildVerifyStore(codec segment.Codec) (*verifyStore, error) {
	n := 2_000_000
	if f := flag.Lookup("test.benchtime"); f != nil && f.Value.String() == "1x" {
		n = 100_000 // `make bench-smoke` runs every benchmark once: keep it quick
	}
	if s := os.Getenv("VELLUM_BENCH_VERIFY_RECORDS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "vellum-bench-verify-")
	if err != nil {
		return nil, err
	}
	k, _ := chain.NewKey(bytes.Repeat([]byte{1}, 32))
	priv, pub, err := checkpoint.GenerateKey("bench")
	if err != nil {
		return nil, err
	}
	signer, _ := note.NewSigner(priv)
	verifier, _ := note.NewVerifier(pub)
	e, err := engine.Open(dir, &engine.Options{Keys: chain.NewKeyring(k), Signer: signer, SegmentSize: 64 << 20, Codec: codec,
		DedupEntries: -1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil, err
	}
	pool := pregen(4096)
	s := &verifyStore{dir: dir, key: k, signer: signer, verifier: verifier, records: n}
	for i := range 1024 {
		enc, _ := pool[i].MarshalBinary()
		s.samples = append(s.samples, enc)
	}
	// Four appenders of 1,000-record batches: the build is the engine's
	// own batch path.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var vsErr error
	left := n
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			batch := make([]vellum.Record, 1000)
			for i := 0; ; i++ {
				mu.Lock()
				m := min(left, len(batch))
				left -= m
				mu.Unlock()
				if m == 0 {
					return
				}
				for j := range m {
					batch[j] = pool[(w*7919+i*1000+j)%len(pool)]
				}
				if _, err := e.Append(context.Background(), batch[:m]...); err != nil {
					mu.Lock()
					vsErr = err
					mu.Unlock()
					return
				}
			}
		}(w)
	}
	wg.Wait()
	if err := e.Close(); err != nil {
		return nil, err
	}
	if vsErr != nil {
		return nil, vsErr
	}
	nums, _ := layout.ListSegments(nil, dir)
	for _, num := range nums {
		fi, _ := os.Stat(layout.SegmentPath(dir, num))
		s.bytes += fi.Size()
	}
	return s, nil
}

// processCPU returns the process's user plus system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// getVerifyStore builds the store of each codec once per process; the
// directories are removed when the process's benchmarks end (TestMain runs
// cleanups).
func getVerifyStore(b *testing.B, codec segment.Codec) *verifyStore {
	verifyStores.Lock()
	defer verifyStores.Unlock()
	if s := verifyStores.m[codec]; s != nil {
		return s
	}
	s, err := buildVerifyStore(codec)
	if err != nil {
		b.Fatal(err)
	}
	if verifyStores.m == nil {
		verifyStores.m = map[segment.Codec]*verifyStore{}
	}
	verifyStores.m[codec] = s
	cleanups = append(cleanups, func() { os.RemoveAll(s.dir) })
	return s
}

// BenchmarkVerify measures `vellum verify` on the whole store: every
// segment read, CRC-checked, decompressed and parsed, every leaf hashed
// into the segment and log-wide trees, every checkpoint's signature and
// root checked, and with keys=hmac every record's MAC. workers=1 is one
// core; workers=all uses GOMAXPROCS. cache=cold drops the store's pages
// from the page cache (fsync, then POSIX_FADV_DONTNEED on every file)
// before each verification, so it reads from the disk as an auditor's
// first run does; cache=warm verifies a store the page cache holds.
// codec=zstd is the same records in zstd blocks. baseline=hmac is
// HMAC-SHA256 alone over the same records on one core, the floor that full
// verification is judged against.
func BenchmarkVerify(b *testing.B) {
	all := runtime.GOMAXPROCS(0)
	for _, codec := range []segment.Codec{segment.CodecS2Dict, segment.CodecS2, segment.CodecZstd} {
		for _, cache := range []string{"cold", "warm"} {
			for _, c := range []struct {
				name    string
				workers int
				hmac    bool
			}{
				{"workers=1/keys=hmac+pubkey", 1, true},
				{fmt.Sprintf("workers=all(%d)/keys=hmac+pubkey", all), all, true},
				{"workers=1/keys=pubkey", 1, false},
				{fmt.Sprintf("workers=all(%d)/keys=pubkey", all), all, false},
			} {
				b.Run(fmt.Sprintf("codec=%s/cache=%s/%s", codec, cache, c.name), func(b *testing.B) {
					s := getVerifyStore(b, codec)
					o := &verify.Options{Verifier: s.verifier, Workers: c.workers}
					if c.hmac {
						o.Keys = chain.NewKeyring(s.key)
					}
					if cache == "cold" {
						requireDisk(b, s.dir) // tmpfs pages cannot be evicted
					}
					b.Logf("store: %d records, %d MiB in %s", s.records, s.bytes>>20, s.dir)
					b.SetBytes(s.bytes)
					evictStore(b, s.dir) // a known start for warm too: read once below
					if cache == "warm" {
						if _, err := verify.Dir(s.dir, o); err != nil {
							b.Fatal(err)
						}
					}
					var cpu time.Duration
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						if cache == "cold" {
							b.StopTimer()
							evictStore(b, s.dir)
							if i == 0 {
								b.ReportMetric(residentFraction(b, s.dir), "resident-before")
							}
							b.StartTimer()
						}
						cpu0 := processCPU()
						rep, err := verify.Dir(s.dir, o)
						cpu += processCPU() - cpu0
						if err != nil {
							b.Fatal(err)
						}
						if !rep.OK() || rep.Records != uint64(s.records) {
							b.Fatalf("store does not verify: %v", rep.First())
						}
					}
					b.StopTimer()
					recordsPerSec(b, b.N*s.records)
					// On a shared machine the wall-clock rate depends on what
					// else runs; the CPU the process got says how much it
					// was slowed.
					b.ReportMetric(cpu.Seconds()/b.Elapsed().Seconds(), "cores-used")
					b.ReportMetric(float64(b.N*s.records)/cpu.Seconds(), "records/cpu-s")
					b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*s.records), "cpu-ns/record")
					reportBytesPerRecord(b, s.bytes, s.records)
				})
			}
		}
	}
	b.Run("baseline=hmac/workers=1", func(b *testing.B) {
		s := getVerifyStore(b, segment.CodecS2)
		// HMAC-SHA256 of as many ~350-byte records as the store holds,
		// so an iteration is comparable with one verification.
		h := s.key.NewHasher()
		var prev vellum.MAC
		b.SetBytes(s.bytes)
		cpu0 := processCPU()
		for b.Loop() {
			for i := range s.records {
				prev = h.Next(prev, s.samples[i%len(s.samples)])
			}
		}
		recordsPerSec(b, b.N*s.records)
		b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N*s.records), "cpu-ns/record")
	})
}

// BenchmarkInclusionProof measures what GET /v1/audit/:seq adds: an
// inclusion proof of a random record against the latest checkpoint, built
// from the segments' stored nodes and at most 256 records read from disk.
func BenchmarkInclusionProof(b *testing.B) {
	s := getVerifyStore(b, segment.CodecS2)
	e, err := engine.Open(s.dir, &engine.Options{Keys: chain.NewKeyring(s.key), Signer: s.signer,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	cp, ok := e.LatestCheckpoint()
	if !ok {
		b.Fatal("no checkpoint")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for b.Loop() {
		seq := 1 + rng.Uint64N(cp.Size)
		if _, err := e.InclusionProof(context.Background(), seq, 0); err != nil {
			b.Fatal(err)
		}
	}
}
