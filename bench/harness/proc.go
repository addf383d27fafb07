package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vellumlog/vellum/bench"
	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/segment"
)

// Tokens the harness starts servers with (quick-start variables).
const (
	adminToken  = "harness-admin-token-0123456789"
	ingestToken = "harness-ingest-token-0123456789"
)

// serverProc is a `vellum serve` the harness started as a separate process
// on loopback, with its own data directory.
type serverProc struct {
	cmd  *exec.Cmd
	dir  string // scratch directory: config, logs, data/
	data string
	base string // http://127.0.0.1:port
	log  string // path of the server's stderr
	done chan error
}

// serverConfig is what the harness varies in the server's config file.
type serverConfig struct {
	LogLevel        string
	SegmentMaxSize  string // e.g. "32MiB"; empty: the server's default
	CheckpointEvery string // e.g. "10s"; empty: default
	Extra           string // more YAML under audit:, indented by two spaces
}

// startServer runs bin serve in a fresh directory under parent and waits
// until it answers /readyz.
func startServer(bin, parent string, c serverConfig) (*serverProc, error) {
	dir, err := os.MkdirTemp(parent, "vellum-harness-")
	if err != nil {
		return nil, err
	}
	s := &serverProc{dir: dir, data: filepath.Join(dir, "data"), log: filepath.Join(dir, "server.log"), done: make(chan error, 1)}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	// The harness picks the port, so that it need not read the server's
	// startup line (which a log_level above info leaves out).
	addr, err := freeAddr()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.base = "http://" + addr
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "addr: %s\ndata_dir: %q\nlog_level: %s\naudit:\n", addr, s.data, c.LogLevel)
	if c.SegmentMaxSize != "" {
		fmt.Fprintf(&cfg, "  segment_max_size: %s\n", c.SegmentMaxSize)
	}
	if c.CheckpointEvery != "" {
		fmt.Fprintf(&cfg, "  checkpoint:\n    every: %s\n", c.CheckpointEvery)
	}
	cfg.WriteString(c.Extra)
	cfgPath := filepath.Join(dir, "vellum.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(s.log)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	s.cmd = exec.Command(bin, "serve", "--config", cfgPath)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.Env = append(os.Environ(), "VELLUM_ADMIN_TOKEN="+adminToken, "VELLUM_INGEST_TOKEN="+ingestToken)
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-s.done:
			out, _ := os.ReadFile(s.log)
			os.RemoveAll(dir)
			return nil, fmt.Errorf("server exited (%v):\n%s", err, out)
		default:
		}
		resp, err := http.Get(s.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			s.remove()
			return nil, fmt.Errorf("server not ready within 60 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *serverProc) pid() int { return s.cmd.Process.Pid }

// stop sends SIGTERM (the server finishes requests in flight and closes
// the store) and waits; after 60 s it kills the process.
func (s *serverProc) stop() error {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		return err
	case <-time.After(60 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		return errors.New("server did not stop within 60 s of SIGTERM; killed")
	}
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// remove deletes the server's directory.
func (s *serverProc) remove() { os.RemoveAll(s.dir) }

// procCPU returns the user+system CPU time process pid has used, from
// /proc/<pid>/stat (fields 14 and 15, in clock ticks of 1/100 s).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after it are
	// counted from the closing parenthesis: state is field 3.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return time.Duration(ut+st) * tick, nil
}

// selfCPU is the harness's own user+system CPU time (not its children's).
func selfCPU() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procRSS returns the resident set size of pid in bytes (VmRSS).
func procRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// procFDs counts the open file descriptors of pid.
func procFDs(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(ents)
}

// loadAvg is the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// scratchDir checks that parent is on a disk, not tmpfs (fsync would cost
// nothing there), unless allowed, and says which file system it is.
func scratchDir(parent string, allowMemory bool) (string, error) {
	if parent == "" {
		parent = os.TempDir()
	}
	fsType, err := bench.FSType(parent)
	if err != nil {
		return "", err
	}
	mem, _ := bench.InMemoryFS(parent)
	if mem && !allowMemory {
		return "", fmt.Errorf("%s is on %s, where fsync costs nothing; pass --dir on a disk (or --allow-tmpfs to measure the CPU ceiling)", parent, fsType)
	}
	return fsType, nil
}

// buildVellum builds the vellum command of the module at srcDir into
// out (a binary path).
func buildVellum(srcDir, out string) error {
	cmd := exec.Command("go", "build", "-o", out, "./cmd/vellum")
	cmd.Dir = srcDir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build in %s: %v\n%s", srcDir, err, b)
	}
	return nil
}

// buildAt builds the vellum command as of git revision rev into out,
// through a temporary git worktree that is removed afterwards.
func buildAt(rev, out string) error {
	wt, err := os.MkdirTemp("", "vellum-harness-rev-")
	if err != nil {
		return err
	}
	os.Remove(wt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if b, err := exec.CommandContext(ctx, "git", "worktree", "add", "--detach", wt, rev).CombinedOutput(); err != nil {
		return fmt.Errorf("git worktree add %s: %v\n%s", rev, err, b)
	}
	defer func() {
		exec.Command("git", "worktree", "remove", "--force", wt).Run()
		os.RemoveAll(wt)
	}()
	return buildVellum(wt, out)
}

// codecFlag maps a --compression value to its segment codec.
func codecFlag(s string) (segment.Codec, error) {
	switch s {
	case "s2dict":
		return segment.CodecS2Dict, nil
	case "s2":
		return segment.CodecS2, nil
	case "zstd":
		return segment.CodecZstd, nil
	}
	return 0, fmt.Errorf("--compression %q is not s2dict, s2 or zstd", s)
}

// segmentBytes sums the sizes of a store's segment files.
func segmentBytes(dir string) (int64, int, error) {
	nums, err := layout.ListSegments(nil, dir)
	if err != nil {
		return 0, 0, err
	}
	var n int64
	for _, num := range nums {
		fi, err := os.Stat(layout.SegmentPath(dir, num))
		if err != nil {
			return 0, 0, err
		}
		n += fi.Size()
	}
	return n, len(nums), nil
}
