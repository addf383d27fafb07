// Command floor is a stand-in for `vellum serve` that measures what
// net/http and the kernel cost per ingest request on this machine, for
// `bench/harness ingest --bin floor=PATH`: it answers GET /readyz and
// POST /v1/audit/events as vellum serve does (the body read, the same five
// response headers, {"seqs":[n]}), with no store, auth, decoding, access
// log or metrics. It is a lower bound, not a server: it keeps nothing.
//
//	go build -o /tmp/floor ./bench/harness/floor
//	go run ./bench/harness ingest --clients 64 --batch 1 --bin floor=/tmp/floor --bin vellum=/tmp/vellum
//
// With FLOOR_SYNC set (e.g. 400us) in its environment, each request also
// waits for a group "commit" as the engine's callers wait for theirs: one
// goroutine takes the requests queued so far, blocks its thread for
// FLOOR_SYNC (as fdatasync does), and wakes them; what that adds to the
// CPU per request is the cost of the wait's wake-ups, without the disk.
// FLOOR_CPUPROFILE=FILE writes a CPU profile. It takes the flags of
// `vellum serve` that the harness passes and uses only --config's addr.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(2)
	}
}

func run() error {
	if len(os.Args) < 2 || os.Args[1] != "serve" {
		return fmt.Errorf("usage: floor serve --config FILE (FLOOR_SYNC, FLOOR_CPUPROFILE in the environment)")
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg := fs.String("config", "", "vellum serve's config file; only addr is read")
	fs.String("cpuprofile", "", "ignored (set FLOOR_CPUPROFILE)")
	if err := fs.Parse(os.Args[2:]); err != nil {
		return err
	}
	addr, err := configAddr(*cfg)
	if err != nil {
		return err
	}
	var syncFor time.Duration
	if v := os.Getenv("FLOOR_SYNC"); v != "" {
		if syncFor, err = time.ParseDuration(v); err != nil || syncFor <= 0 {
			return fmt.Errorf("FLOOR_SYNC %q: want a positive duration", v)
		}
	}
	if p := os.Getenv("FLOOR_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var c *committer
	if syncFor > 0 {
		c = &committer{syncFor: syncFor, kick: make(chan struct{}, 1)}
		go c.loop()
	}
	var seq atomic.Uint64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			io.WriteString(w, `{"status":"ready"}`)
			return
		}
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if c != nil {
			c.wait()
		}
		out := `{"seqs":[` + strconv.FormatUint(seq.Add(1), 10) + "]}\n"
		hd := w.Header()
		hd["X-Request-Id"] = []string{"0123456789abcdef"}
		hd["Cache-Control"] = []string{"no-store"}
		hd["X-Content-Type-Options"] = []string{"nosniff"}
		hd["Content-Type"] = []string{"application/json"}
		hd["Content-Length"] = []string{strconv.Itoa(len(out))}
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, out)
	})
	srv := &http.Server{Addr: addr, Handler: h}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- srv.ListenAndServe() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	return srv.Shutdown(context.Background())
}

// configAddr reads the top-level addr: line of the harness's config.
func configAddr(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "addr: "); ok {
			return strings.TrimSpace(a), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("%s: no addr: line", path)
}

// committer is the group commit of FLOOR_SYNC.
type committer struct {
	syncFor time.Duration
	kick    chan struct{}
	mu      sync.Mutex
	queue   []chan struct{}
}

// wait queues the caller for the next commit and returns once it is done.
func (c *committer) wait() {
	ch := make(chan struct{})
	c.mu.Lock()
	c.queue = append(c.queue, ch)
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
	<-ch
}

func (c *committer) loop() {
	for range c.kick {
		c.mu.Lock()
		q := c.queue
		c.queue = nil
		c.mu.Unlock()
		if len(q) == 0 {
			continue
		}
		blockThread(c.syncFor) // as fdatasync does (sleep_linux.go)
		for _, ch := range q {
			close(ch)
		}
		select {
		case c.kick <- struct{}{}: // requests that queued meanwhile
		default:
		}
	}
}
