package main

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vellumlog/vellum/engine"
)

// TestServeReplicaPurge: vellum serve with audit.replicate (SQLite) and a
// retention policy. A purge on request (POST /v1/audit/purge) removes the
// replica's rows of the purged seqs, and only those; a purge by `vellum
// purge` while the server is stopped is applied to the replica when the
// server starts again.
func TestServeReplicaPurge(t *testing.T) {
	data, _ := oldStore(t) // 20 records, 200 down to 105 days old
	db := filepath.Join(t.TempDir(), "replica.db")
	cfg := "audit:\n  replicate:\n    backend: sqlite\n    path: " + db + "\n  retention:\n    max_age: 150d\n"
	span := func() (lo, hi, n int64) {
		t.Helper()
		c, err := sql.Open("sqlite3", "file:"+db+"?_busy_timeout=5000")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.QueryRow(`SELECT COALESCE(MIN(seq), 0), COALESCE(MAX(seq), 0), COUNT(*) FROM audit_records`).Scan(&lo, &hi, &n); err != nil {
			t.Fatal(err)
		}
		return
	}
	// waitFor waits until the replica holds exactly seq from..(at least to).
	waitFor := func(url string, from, to uint64, logs *syncBuffer) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			var rz readyz
			getJSON(t, url+"/readyz", &rz)
			lo, hi, n := span()
			if rz.Replica.Records == 0 && lo == int64(from) && hi >= int64(to) && n == hi-lo+1 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica holds seq %d..%d (%d rows), want %d..%d or more; readyz %+v\n%s", lo, hi, n, from, to, rz, logs)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	url, logs, stop := serveWith(t, data, cfg)
	waitFor(url, 1, 20, logs)
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/audit/purge", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var res engine.PurgeResult
	err = json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || len(res.Segments) == 0 {
		t.Fatalf("purge: %d %+v %v", resp.StatusCode, res, err)
	}
	through := res.Segments[len(res.Segments)-1].LastSeq // about 11: the records older than 150 days
	if through < 10 || through > 12 {
		t.Fatalf("purged through seq %d, want the records older than 150 days (10 or 11)", through)
	}
	waitFor(url, through+1, res.AnchorSeq, logs)
	stop()
	if !strings.Contains(logs.String(), "replica purged") {
		t.Errorf("no replica purge logged:\n%s", logs)
	}

	// Stopped: `vellum purge` goes further; the replica still holds the
	// rows until the server runs again.
	code, out, errs := runCmd("purge", "--data", data, "--max-age", "120d", "--json")
	var res2 engine.PurgeResult
	if code != 0 || json.Unmarshal([]byte(out), &res2) != nil || len(res2.Segments) == 0 {
		t.Fatalf("vellum purge: %d %s %s", code, out, errs)
	}
	through2 := res2.Segments[len(res2.Segments)-1].LastSeq
	if lo, _, _ := span(); lo != int64(through)+1 || through2 <= through {
		t.Fatalf("before the restart the replica starts at %d (want %d); vellum purge went to %d", lo, through+1, through2)
	}
	url, logs, stop = serveWith(t, data, cfg)
	defer stop()
	waitFor(url, through2+1, res2.AnchorSeq, logs)
}
