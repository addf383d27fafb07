package server

// Free-space alarms (NIST 800-53 AU-4 storage capacity, AU-5 response to
// audit processing failures): below audit.disk.warn_free the server reports
// degraded; below audit.disk.min_free it refuses ingest with 507 before the
// disk fills, instead of failing closed in the middle of a write, and takes
// ingest again by itself once space is freed.

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vellumlog/vellum/metrics"
)

type diskLevel int

const (
	diskOK diskLevel = iota
	diskWarn
	diskRefuse
)

func (l diskLevel) String() string {
	return [...]string{"ok", "warn", "refuse"}[l]
}

// diskState is the result of one free-space check.
type diskState struct {
	free, total   uint64
	warn, minimum uint64
	level         diskLevel
	err           error
}

func (d diskState) detail() string {
	switch {
	case d.err != nil:
		return fmt.Sprintf("cannot check free disk space: %v", d.err)
	case d.level == diskRefuse:
		return fmt.Sprintf("free space on the data directory's file system is %s, below the floor of %s (audit.disk.min_free): ingest is refused until space is freed, and resumes by itself",
			human(d.free), ByteSize(d.minimum))
	case d.level == diskWarn:
		return fmt.Sprintf("free space on the data directory's file system is %s, below %s (audit.disk.warn_free)", human(d.free), ByteSize(d.warn))
	}
	return ""
}

// diskMonitor checks the free space of the data directory's file system:
// on ingest requests, on /readyz, and every check_interval. It logs each
// change of level once. Safe for concurrent use.
type diskMonitor struct {
	path     string
	space    func(string) (free, total uint64, err error)
	warn     uint64
	minimum  uint64
	interval time.Duration
	log      *slog.Logger
	m        *metrics.Metrics
	// An ingest request may reuse a measurement younger than reuseAge
	// when it showed at least reuseSlack bytes above the floor beyond the
	// request's own (forRequest). Zero: measure on every request.
	reuseAge   time.Duration
	reuseSlack uint64
	last       atomic.Pointer[measured] // the last successful measurement

	mu      sync.Mutex
	level   diskLevel
	lastErr string
}

// measured is a diskState and when it was measured.
type measured struct {
	st diskState
	at time.Time
}

// With the real statfs(2), an ingest request reuses a measurement made in
// the last diskReuseAge if it left more than diskReuseSlack above the
// floor: statfs on every one-event request was ~4% of the server's CPU
// (issue 14's profile), and no ingest can write 256 MiB in 50 ms (the
// floor is approximate anyway: other processes share the disk).
const (
	diskReuseAge   = 50 * time.Millisecond
	diskReuseSlack = 256 << 20
)

func newDiskMonitor(path string, cfg *DiskConfig, space func(string) (uint64, uint64, error), log *slog.Logger, m *metrics.Metrics) *diskMonitor {
	d := &diskMonitor{path: path, space: space, warn: uint64(cfg.WarnFree), minimum: uint64(cfg.MinFree),
		interval: time.Duration(cfg.CheckInterval), log: log, m: m}
	if space == nil { // a test's space function is called every time
		d.space, d.reuseAge, d.reuseSlack = statfs, diskReuseAge, diskReuseSlack
	}
	m.DiskThresholds(d.warn, d.minimum)
	return d
}

// statfs returns the bytes available to an unprivileged writer (f_bavail,
// not f_bfree: the root reserve is not ours to count on) and the size of
// the file system holding path.
func statfs(path string) (free, total uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	bs := uint64(st.Bsize)
	return uint64(st.Bavail) * bs, uint64(st.Blocks) * bs, nil
}

// check measures free space now, updates the metrics and logs a change of
// level.
func (d *diskMonitor) check() diskState {
	free, total, err := d.space(d.path)
	st := diskState{free: free, total: total, warn: d.warn, minimum: d.minimum, err: err}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		// Keep the last level: a failing check neither raises nor clears
		// an alarm.
		st.level = d.level
		d.m.DiskCheckFailed()
		if msg := err.Error(); msg != d.lastErr {
			d.lastErr = msg
			d.log.Error("cannot check free disk space", "err", msg)
		}
		return st
	}
	d.lastErr = ""
	defer func() { d.last.Store(&measured{st: st, at: time.Now()}) }()
	switch {
	case free < d.minimum:
		st.level = diskRefuse
	case free < d.warn:
		st.level = diskWarn
	}
	d.m.Disk(free, total, st.level >= diskWarn, st.level == diskRefuse)
	if st.level != d.level {
		attrs := []any{"free", human(free), "warn_free", ByteSize(d.warn).String(), "min_free", ByteSize(d.minimum).String(), "path", d.path}
		switch st.level {
		case diskRefuse:
			d.log.Error("free disk space is below audit.disk.min_free: refusing ingest with 507 until space is freed", attrs...)
		case diskWarn:
			d.log.Warn("free disk space is below audit.disk.warn_free", attrs...)
		default:
			d.log.Info("free disk space is above audit.disk.warn_free again", attrs...)
		}
		d.level = st.level
	}
	return st
}

// forRequest is check for an ingest request of need bytes: a recent
// measurement that left room to spare is reused (diskReuseAge).
func (d *diskMonitor) forRequest(need uint64) diskState {
	if m := d.last.Load(); m != nil && d.reuseAge > 0 && m.st.level == diskOK &&
		m.st.free >= m.st.minimum+need+d.reuseSlack && time.Since(m.at) < d.reuseAge {
		return m.st
	}
	return d.check()
}

// run checks every interval until stop is closed.
func (d *diskMonitor) run(stop <-chan struct{}) {
	t := time.NewTicker(d.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			d.check()
		case <-stop:
			return
		}
	}
}

// diskOK refuses an ingest request with 507 when free space, less the
// request's body, would be below the floor; nothing of it is stored.
func (s *Server) diskOK(contentLength, bodyLen int64) error {
	need := uint64(max(contentLength, bodyLen, 0))
	st := s.ops.disk.forRequest(need)
	if st.err != nil {
		return nil // the alarm is raised in the log, the metric and /readyz; ingest goes on
	}
	if st.level == diskRefuse || st.free < st.minimum+need {
		return httpErr(http.StatusInsufficientStorage,
			"insufficient storage: free space on the audit store's file system is %s, and storing this request would leave less than the floor of %s (audit.disk.min_free); nothing of this request was stored; ingest resumes by itself once space is freed",
			human(st.free), ByteSize(st.minimum))
	}
	return nil
}

// human writes a byte count with a binary unit and up to one decimal
// (1.2GiB), exact when it is a whole number of units.
func human(n uint64) string {
	for _, u := range byteUnits {
		if u.mult > 1 && n >= uint64(u.mult) {
			if n%uint64(u.mult) == 0 {
				return fmt.Sprintf("%d%s", n/uint64(u.mult), u.suffix)
			}
			return fmt.Sprintf("%.1f%s", float64(n)/float64(u.mult), u.suffix)
		}
	}
	return fmt.Sprintf("%dB", n)
}
