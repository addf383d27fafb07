package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/metrics"
	"github.com/vellumlog/vellum/vfs"
)

// ingestUntilRefused sends batches of n events until the server answers
// something other than 200, and returns every acknowledged seq with its
// event_id, and the refusing answer.
func ingestUntilRefused(t *testing.T, e *testEnv, n int, pad int) (map[uint64]string, int, []byte) {
	t.Helper()
	acked := map[uint64]string{}
	arg := strings.Repeat("x", pad)
	for batch := 0; batch < 100_000; batch++ {
		var evs []string
		for i := 0; i < n; i++ {
			id := fmt.Sprintf("b%d-%d", batch, i)
			evs = append(evs, fmt.Sprintf(`{"event_id":%q,"tenant_id":"acme","action":"tool.call","tool":{"name":"read_file","arguments":{"pad":%q}},"outcome":{"status":"success"}}`, id, arg))
		}
		status, body, _ := e.do("POST", "/v1/audit/events", ingestToken, []byte("["+strings.Join(evs, ",")+"]"))
		if status != http.StatusOK {
			return acked, status, body
		}
		var r struct{ Seqs []uint64 }
		if err := json.Unmarshal(body, &r); err != nil || len(r.Seqs) != n {
			t.Fatalf("ingest answer %s", body)
		}
		for i, s := range r.Seqs {
			acked[s] = fmt.Sprintf("b%d-%d", batch, i)
		}
	}
	t.Fatal("the disk never filled")
	return nil, 0, nil
}

// checkAcked reopens the store and checks that every acknowledged record
// is there under its seq.
func checkAcked(t *testing.T, fs vfs.FS, dir string, key *chain.Key, acked map[uint64]string) {
	t.Helper()
	e, err := engine.Open(dir, &engine.Options{Keys: chain.NewKeyring(key), FS: fs, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer e.Close()
	for seq, id := range acked {
		r, err := e.Get(context.Background(), seq)
		if err != nil {
			t.Fatalf("acknowledged seq %d (%s) lost: %v", seq, id, err)
		}
		if r.EventID != id {
			t.Fatalf("seq %d holds %q, acknowledged as %q", seq, r.EventID, id)
		}
	}
}

// TestDiskFloor fills a capacity-limited in-memory disk (the fault-
// injecting vfs.Mem, with free space reported from it as statfs would):
// the server degrades below warn_free, refuses ingest with 507 below
// min_free before the disk is full (the engine never fails), loses nothing
// it acknowledged, and takes ingest again by itself once space returns.
func TestDiskFloor(t *testing.T) {
	mem := vfs.NewMem()
	const capacity = 4 << 20
	mem.SetCapacity(capacity)
	key, _ := chain.GenerateKey()
	store, err := engine.Open("/data", &engine.Options{Keys: chain.NewKeyring(key), FS: mem, NoCompression: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	space := func(string) (uint64, uint64, error) {
		c, used := mem.Space()
		return uint64(max(c-used, 0)), uint64(c), nil
	}
	m := metrics.New(&metrics.Options{NoRuntime: true})
	e := newTestServerWith(t, store, &Options{Metrics: m, DiskSpace: space}, func(c *ServerConfig) {
		c.Audit.Disk = DiskConfig{WarnFree: 2 << 20, MinFree: 1 << 20, CheckInterval: Duration(DefaultDiskCheckInterval)}
	})
	if status, b, _ := e.do("GET", "/readyz", "", nil); status != 200 || !strings.Contains(string(b), `"ready"`) {
		t.Fatalf("readyz on an empty disk: %d %s", status, b)
	}
	acked, status, body := ingestUntilRefused(t, e, 20, 1000)
	if status != http.StatusInsufficientStorage {
		t.Fatalf("the disk filled with %d: %s", status, body)
	}
	d := detail(t, body)
	if !strings.Contains(d, "audit.disk.min_free") || !strings.Contains(d, "nothing of this request was stored") {
		t.Fatalf("507 detail: %s", d)
	}
	if err := store.Err(); err != nil {
		t.Fatalf("the engine failed instead of ingest being refused first: %v", err)
	}
	if c, used := mem.Space(); c-used < 1<<19 {
		t.Fatalf("only %d bytes left when ingest was refused; the floor is 1 MiB", c-used)
	}
	if len(acked) < 100 {
		t.Fatalf("only %d records before the floor", len(acked))
	}
	// The last batch would have crossed the floor; free space is now
	// just above it: degraded, still ready for smaller requests.
	if status, b, _ := e.do("GET", "/readyz", "", nil); status != 200 || !strings.Contains(string(b), "degraded") {
		t.Fatalf("readyz just above the floor: %d %s", status, b)
	}
	// Something else takes space: below the floor, /readyz is 503 and even
	// a small ingest is 507.
	_, used := mem.Space()
	mem.SetCapacity(used + 512<<10)
	status, b, _ := e.do("GET", "/readyz", "", nil)
	if status != 503 || !strings.Contains(detail(t, b), "min_free") {
		t.Fatalf("readyz below the floor: %d %s", status, b)
	}
	if status, b, _ := e.do("POST", "/v1/audit/events", ingestToken, []byte("["+event()+"]")); status != 507 {
		t.Fatalf("a small ingest below the floor: %d %s", status, b)
	}
	// Reads go on below the floor (and are audited).
	e.list(auditToken, "limit=1")
	f := e.scrape(adminToken)
	if value(t, f, "vellum_disk_alarm", "level", "refuse") != 1 || value(t, f, "vellum_disk_alarm", "level", "warn") != 1 {
		t.Fatal("the disk alarms are not raised")
	}
	if value(t, f, "vellum_ingest_rejections_total", "reason", "disk_full") != 2 {
		t.Fatal("the 507 is not counted")
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "below audit.disk.warn_free") || !strings.Contains(logs, "refusing ingest with 507") {
		t.Fatalf("no alarm in the log:\n%s", logs)
	}

	// Space returns (a bigger disk): ingest resumes without a restart.
	mem.SetCapacity(64 << 20)
	seqs := e.ingest(ingestToken, event("event_id", "after", "tenant_id", "acme"))
	acked[seqs[0]] = "after"
	if status, b, _ := e.do("GET", "/readyz", "", nil); status != 200 || !strings.Contains(string(b), `"ready"`) {
		t.Fatalf("readyz after space returned: %d %s", status, b)
	}
	if !strings.Contains(e.logs.String(), "above audit.disk.warn_free again") {
		t.Fatal("the recovery is not logged")
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	checkAcked(t, mem, "/data", key, acked)
}

// TestDiskWarnDegraded: below warn_free only, /readyz is 200 "degraded"
// with the reason, and ingest goes on.
func TestDiskWarnDegraded(t *testing.T) {
	var free atomic.Uint64
	var broken atomic.Bool
	free.Store(3 << 30)
	space := func(string) (uint64, uint64, error) {
		if broken.Load() {
			return 0, 0, errors.New("statfs: input/output error")
		}
		return free.Load(), 100 << 30, nil
	}
	e := newTestServerWith(t, newTestStore(t), &Options{DiskSpace: space}, nil)
	status, b, _ := e.do("GET", "/readyz", "", nil)
	if status != 200 || !strings.Contains(string(b), `"ready"`) {
		t.Fatalf("%d %s", status, b)
	}
	free.Store(900 << 20)
	status, b, _ = e.do("GET", "/readyz", "", nil)
	var r readiness
	json.Unmarshal(b, &r)
	if status != 200 || r.Status != "degraded" || !strings.Contains(r.Detail, "900MiB") || !strings.Contains(r.Detail, "warn_free") {
		t.Fatalf("%d %s", status, b)
	}
	e.ingest(ingestToken, event())
	// A failing check raises nothing by itself but says so.
	broken.Store(true)
	status, b, _ = e.do("GET", "/readyz", "", nil)
	if status != 200 || !strings.Contains(string(b), "cannot check free disk space") {
		t.Fatalf("%d %s", status, b)
	}
}

// TestDiskFloorRealFS does the same on a real 24 MiB tmpfs mounted for the
// test (it needs root; elsewhere it says why it skips): real statfs, real
// files, real fsync.
func TestDiskFloorRealFS(t *testing.T) {
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=24m", "vellum-test", mnt).CombinedOutput(); err != nil {
		// Mounting needs root (CAP_SYS_ADMIN); the project's machines and
		// CI have it, a container or a developer's laptop may not.
		t.Skipf("cannot mount a size-limited tmpfs here (needs root): %v %s; TestDiskFloor covers the same on the in-memory file system", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	data := filepath.Join(mnt, "data")
	// Ballast takes 8 MiB of the 24; deleting it is "space returns".
	ballast := filepath.Join(mnt, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 8<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	key, _ := chain.GenerateKey()
	store, err := engine.Open(data, &engine.Options{Keys: chain.NewKeyring(key), NoCompression: true, SegmentSize: 4 << 20, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := newTestServerWith(t, store, &Options{}, func(c *ServerConfig) {
		c.Audit.Disk = DiskConfig{WarnFree: 8 << 20, MinFree: 4 << 20, CheckInterval: Duration(DefaultDiskCheckInterval)}
	})
	acked, status, body := ingestUntilRefused(t, e, 50, 1000)
	if status != http.StatusInsufficientStorage {
		t.Fatalf("the disk filled with %d: %s", status, body)
	}
	if err := store.Err(); err != nil {
		t.Fatalf("the engine failed instead of ingest being refused first: %v", err)
	}
	free, _, err := statfs(data)
	if err != nil || free < 1<<20 {
		t.Fatalf("free %d (%v) when ingest was refused", free, err)
	}
	if status, b, _ := e.do("GET", "/readyz", "", nil); !strings.Contains(string(b), "degraded") && status != 503 {
		t.Fatalf("readyz at the floor: %d %s", status, b)
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	seqs := e.ingest(ingestToken, event("event_id", "after", "tenant_id", "acme"))
	acked[seqs[0]] = "after"
	if status, _, _ := e.do("GET", "/readyz", "", nil); status != 200 {
		t.Fatalf("readyz after space returned: %d", status)
	}
	t.Logf("%d records acknowledged before the floor; %d bytes free when refused", len(acked), free)
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	checkAcked(t, nil, data, key, acked)
}

// TestDiskReuse pins when an ingest request may skip statfs: only right
// after a measurement that left more than the slack above the floor
// beyond the request itself; near the floor, after a failed check, or once
// the measurement is old, every request measures again.
func TestDiskReuse(t *testing.T) {
	var calls atomic.Int64
	var free atomic.Uint64
	space := func(string) (uint64, uint64, error) {
		calls.Add(1)
		return free.Load(), 100 << 30, nil
	}
	d := newDiskMonitor("/x", &DiskConfig{WarnFree: 2 << 30, MinFree: 1 << 30, CheckInterval: Duration(DefaultDiskCheckInterval)},
		space, slog.New(slog.DiscardHandler), metrics.New(nil))
	measures := func(need uint64) bool {
		t.Helper()
		before := calls.Load()
		d.forRequest(need)
		return calls.Load() != before
	}
	free.Store(10 << 30)
	if first, second := measures(0), measures(0); !first || !second {
		t.Fatal("with a test's space function (no reuse configured) every request must measure")
	}
	d.reuseAge, d.reuseSlack = time.Hour, 256<<20
	for _, tc := range []struct {
		name    string
		free    uint64 // at the last measurement
		need    uint64
		age     time.Duration
		measure bool
	}{
		{"room to spare, fresh", 10 << 30, 1 << 20, 0, false},
		{"room to spare, old", 10 << 30, 1 << 20, 2 * time.Hour, true},
		{"within the slack of the floor", 1<<30 + 200<<20, 1 << 20, 0, true},
		{"the request itself eats the room", 1<<30 + 300<<20, 100 << 20, 0, true},
		{"below warn_free", 1<<30 + 900<<20, 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			free.Store(tc.free)
			d.check()
			m := *d.last.Load()
			m.at = m.at.Add(-tc.age)
			d.last.Store(&m)
			if got := measures(tc.need); got != tc.measure {
				t.Fatalf("measured %v, want %v", got, tc.measure)
			}
		})
	}
	// A floor crossed is seen at once when the last check was close.
	free.Store(1<<30 + 100<<20)
	d.check()
	free.Store(1 << 20)
	if st := d.forRequest(0); st.level != diskRefuse {
		t.Fatalf("level %v after the disk filled, want refuse", st.level)
	}
}
