package server

import (
	"bytes"
	"fmt"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/engine"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/bench"
)

// benchBody is n bench.Gen events as an ingest body (a JSON array), the
// shape the HTTP load generator sends.
func benchBody(tb testing.TB, n int) []byte {
	g := bench.NewGen(1)
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		r := g.Next()
		b.Write(eventJSON(tb, &r))
	}
	b.WriteByte(']')
	return b.Bytes()
}

// BenchmarkDecodeEvents measures the ingest decoder on bodies of
// bench.Gen events: DecodeEvents (impl=fast, which takes these plain
// bodies on its hand-written path), the same into a reused scratch as
// handleIngest decodes (impl=scratch), its jsontext path alone, and the
// decoder both replaced (impl=oracle, built on encoding/json's
// Decoder.Token), in the same run.
func BenchmarkDecodeEvents(b *testing.B) {
	for _, n := range []int{1, 1000} {
		body := benchBody(b, n)
		for _, impl := range []struct {
			name string
			dec  func([]byte, DecodeOptions) ([]vellum.Record, error)
		}{
			{"fast", DecodeEvents}, // the plain bodies' path (fastdecode.go)
			{"scratch", func() func([]byte, DecodeOptions) ([]vellum.Record, error) {
				// As handleIngest decodes: into a scratch the previous
				// request released (scratch.go).
				sc := new(ingestScratch)
				var last []vellum.Record
				return func(b []byte, o DecodeOptions) ([]vellum.Record, error) {
					sc.reset(last, nil)
					var err error
					last, err = decodeEventsInto(sc, b, o, nil, true)
					return last, err
				}
			}()},
			{"jsontext", func(b []byte, o DecodeOptions) ([]vellum.Record, error) {
				o.MaxEvents, o.MaxRecordSize = DefaultMaxEvents, DefaultMaxRecordSize
				return slowDecodeEvents(b, o, nil, true)
			}},
			{"oracle", oracleDecodeEvents},
		} {
			b.Run(fmt.Sprintf("events=%d/impl=%s", n, impl.name), func(b *testing.B) {
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for b.Loop() {
					recs, err := impl.dec(body, DecodeOptions{})
					if err != nil || len(recs) != n {
						b.Fatal(len(recs), err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
			})
		}
	}
}

// BenchmarkIngestRequest measures the server's own work for one ingest
// request of one event, with everything but the network and the disk:
// routing, auth, the request log line, decoding, the engine's append and
// the response. The engine runs on tmpfs (/dev/shm), where fsync costs
// nothing, so that what is measured is CPU; log=text formats every
// request's log line as `vellum serve` does (into io.Discard).
func BenchmarkIngestRequest(b *testing.B) {
	body := benchBody(b, 1)
	for _, logName := range []string{"text", "none"} {
		b.Run("events=1/log="+logName, func(b *testing.B) {
			dir, err := os.MkdirTemp("/dev/shm", "vellum-bench")
			if err != nil {
				b.Skipf("no tmpfs: %v", err)
			}
			defer os.RemoveAll(dir)
			key, _ := chain.GenerateKey()
			e, err := engine.Open(dir, &engine.Options{Keys: chain.NewKeyring(key), Logger: slog.New(slog.DiscardHandler), DedupEntries: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			log := slog.New(slog.DiscardHandler)
			if logName == "text" {
				log = slog.New(slog.NewTextHandler(io.Discard, nil))
			}
			cfg := DefaultConfig()
			cfg.Auth = testAuthConfig()
			srv, err := New(cfg, e, &Options{Logger: log, LookupEnv: envOf(map[string]string{"ACME_INGEST": acmeIngest})})
			if err != nil {
				b.Fatal(err)
			}
			h := srv.Handler()
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/v1/audit/events", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+ingestToken)
				req.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}
