package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	tdnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/cosign"
	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/merkle"
	"github.com/vellumlog/vellum/verify"
	"github.com/vellumlog/vellum/witness"
)

// proc is a running vellum process and what it wrote on stderr.
type proc struct {
	cmd *exec.Cmd
	url string
	mu  sync.Mutex
	log bytes.Buffer
}

func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// stop ends the process with SIGTERM (kill: SIGKILL) and waits for it.
func (p *proc) stop(kill bool) {
	if kill {
		p.cmd.Process.Kill()
	} else {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	p.cmd.Wait()
}

// startProc runs `vellum args...` and waits for its "serving" log line.
func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	bin, err := buildVellum()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: exec.Command(bin, args...)}
	p.cmd.Env = append(os.Environ(), "VELLUM_ADMIN_TOKEN="+testToken)
	stderr, _ := p.cmd.StderrPipe()
	p.cmd.Stdout = io.Discard
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`msg=serving addr=(http://[0-9.:]+)`)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	select {
	case p.url = <-addr:
		return p
	case <-time.After(60 * time.Second):
		t.Fatalf("vellum %s did not start:\n%s", args[0], p.logs())
	}
	return nil
}

// store is a store directory with its config and the witnesses it pushes to.
type store struct {
	t    *testing.T
	data string
	cfg  string
	last uint64 // the last seq acknowledged
	srv  *proc
}

// newStore creates a store (keys, STORE) by running the server once.
func newStore(t *testing.T) *store {
	s := &store{t: t, data: t.TempDir()}
	s.srv = startProc(t, "serve", "--data", s.data, "--addr", "127.0.0.1:0")
	s.srv.stop(false)
	return s
}

func (s *store) origin() string {
	id, err := layout.ReadStoreID(nil, s.data)
	if err != nil {
		s.t.Fatal(err)
	}
	return "vellum/" + hex.EncodeToString(id[:])
}

func (s *store) pub() string { return filepath.Join(s.data, checkpoint.PublicKeyFile) }

// configure points the store at witnesses.
func (s *store) configure(ws ...*witnessProc) {
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir: %s\naddr: 127.0.0.1:0\naudit:\n  checkpoint:\n    every_records: 1000\n    every: 200ms\n  witness:\n    retry_max: 300ms\n    witnesses:\n", s.data)
	for _, w := range ws {
		fmt.Fprintf(&b, "      - url: %s\n        key_file: %s\n", w.url(), w.pub())
	}
	s.cfg = filepath.Join(s.t.TempDir(), "vellum.yaml")
	if err := os.WriteFile(s.cfg, []byte(b.String()), 0o600); err != nil {
		s.t.Fatal(err)
	}
}

func (s *store) start() {
	s.srv = startProc(s.t, "serve", "--config", s.cfg)
}

// ingest appends n events tagged tag and returns the last seq.
func (s *store) ingest(n int, tag string) uint64 {
	s.t.Helper()
	var evs []map[string]any
	for i := 0; i < n; i++ {
		evs = append(evs, map[string]any{"event_id": fmt.Sprintf("%s-%d", tag, i), "tenant_id": "acme", "user_id": "alice",
			"action": "tool.call", "tool": map[string]any{"name": tag}, "outcome": map[string]any{"status": "success"}})
	}
	body, _ := json.Marshal(evs)
	resp, err := post(s.srv.url, body)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Seqs []uint64 }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Seqs) != n {
		s.t.Fatalf("ingest: %d %v %v", resp.StatusCode, err, out)
	}
	s.last = out.Seqs[n-1]
	return s.last
}

type witnessReadyz struct {
	Status    string
	Witnesses []witness.Status
	Alarms    []string
}

func (s *store) ready() witnessReadyz {
	s.t.Helper()
	resp, err := http.Get(s.srv.url + "/readyz")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var r witnessReadyz
	json.NewDecoder(resp.Body).Decode(&r)
	return r
}

// waitCosigned waits until every witness cosigned the last seq.
func (s *store) waitCosigned() {
	s.t.Helper()
	eventually(s.t, fmt.Sprintf("the witnesses cosign %d records", s.last), func() bool {
		r := s.ready()
		for _, w := range r.Witnesses {
			if w.State != witness.StateOK || w.CosignedSize < s.last {
				return false
			}
		}
		return len(r.Witnesses) > 0
	})
}

// waitRefused waits until a witness refuses the store, and returns the alarm.
func (s *store) waitRefused() witnessReadyz {
	s.t.Helper()
	var r witnessReadyz
	eventually(s.t, "a witness refuses the store", func() bool {
		r = s.ready()
		return len(r.Alarms) > 0
	})
	return r
}

type witnessProc struct {
	t   *testing.T
	dir string
	p   *proc
}

func startWitnessProc(t *testing.T, dir string, stores ...*store) *witnessProc {
	args := []string{"witness", "--data", dir, "--addr", "127.0.0.1:0", "--name", "witness.test/w1"}
	for _, s := range stores {
		args = append(args, "--log", s.origin()+"="+s.pub())
	}
	return &witnessProc{t: t, dir: dir, p: startProc(t, args...)}
}

func (w *witnessProc) url() string { return w.p.url }
func (w *witnessProc) pub() string { return filepath.Join(w.dir, witness.PubName) }

func (w *witnessProc) alarms() []witness.Alarm {
	w.t.Helper()
	resp, err := http.Get(w.url() + witness.AlarmsPath)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Alarms []witness.Alarm }
	json.NewDecoder(resp.Body).Decode(&out)
	return out.Alarms
}

func (w *witnessProc) latest(origin string) checkpoint.Signed {
	w.t.Helper()
	resp, err := http.Get(w.url() + witness.CheckpointPath + "?origin=" + url.QueryEscape(origin))
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	sn, err := checkpoint.ParseNote(b)
	if err != nil {
		w.t.Fatalf("GET checkpoint: %d %q", resp.StatusCode, b)
	}
	return sn
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting until %s", what)
}

// runVellum runs the command in-process and returns its exit code and stdout.
func runVellum(args ...string) (int, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String() + errb.String()
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", src+"/.", dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
}

func replaceDir(t *testing.T, dir, with string) {
	t.Helper()
	os.RemoveAll(dir)
	os.MkdirAll(dir, 0o750)
	copyDir(t, with, dir)
}

// TestWitnessCatchesRollback: a server with a witness; the store is rolled
// back to an earlier copy and restarted. The witness refuses its next
// checkpoints and records alarms, the server reports them on /witnessReadyz, and
// `vellum verify --witness` reports the rollback with the cosigned size,
// where a verify without the witness says INTACT.
func TestWitnessCatchesRollback(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	s := newStore(t)
	w := startWitnessProc(t, t.TempDir(), s)
	s.configure(w)
	s.start()
	s.ingest(20, "early")
	s.waitCosigned()
	s.srv.stop(false)
	backup := t.TempDir()
	copyDir(t, s.data, backup) // the earlier copy, with its own cosigned checkpoint

	s.start()
	cosigned := s.ingest(30, "late")
	s.waitCosigned()
	s.srv.stop(false)

	// The cosigned checkpoint the server kept verifies with an
	// independent implementation of C2SP tlog-cosignature.
	msg, err := os.ReadFile(filepath.Join(s.data, cosign.CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	wkey, _ := os.ReadFile(w.pub())
	theirs, err := tdnote.NewVerifierForCosignatureV1(strings.TrimSpace(string(wkey)))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := note.Open(msg, note.VerifierList(theirs)); err != nil || len(n.Sigs) != 1 {
		t.Fatalf("transparency-dev's verifier rejects the server's cosigned checkpoint: %v", err)
	}

	// Roll back and restart.
	replaceDir(t, s.data, backup)
	s.start()
	r := s.waitRefused()
	if st := r.Witnesses[0]; st.State != witness.StateRefused || st.Kind != witness.KindRollback || !strings.Contains(r.Alarms[0], "rolled back") {
		t.Fatalf("witnessReadyz after the rollback: %+v", r)
	}
	if !strings.Contains(s.srv.logs(), "ALARM") {
		t.Fatal("the server did not log the refusal as an alarm")
	}
	eventually(t, "the witness records the rollback", func() bool {
		as := w.alarms()
		return len(as) > 0 && as[0].Kind == witness.KindRollback
	})
	s.srv.stop(false)

	pubArgs := []string{"verify", "--data", s.data, "--pubkey", s.pub()}
	if code, out := runVellum(pubArgs...); code != 0 {
		t.Fatalf("without the witness the rolled-back store should look intact (that is the attack): %d\n%s", code, out)
	}
	for name, extra := range map[string][]string{
		"from the witness":               {"--witness", w.pub(), "--witness-url", w.url()},
		"from what the server kept":      {"--witness", w.pub()},
		"quorum 1, key given inline too": {"--witness", strings.TrimSpace(string(wkey)), "--quorum", "1", "--witness-url", w.url()},
	} {
		code, out := runVellum(append(pubArgs, extra...)...)
		want := fmt.Sprintf("records seq %d..%d were cut off", 21, cosigned)
		if code != 1 || !strings.Contains(out, want) || !strings.Contains(out, fmt.Sprintf("%d records (cosigned by witness.test/w1", cosigned)) {
			t.Fatalf("verify %s: exit %d, want 1 and %q:\n%s", name, code, want, out)
		}
	}

	// The rolled-back store grows past the witnessed size: its next
	// checkpoint cannot be proved consistent, and is refused (422).
	s.start()
	s.ingest(60, "after")
	eventually(t, "the witness refuses the longer rewritten history", func() bool {
		for _, a := range w.alarms() {
			if a.Kind == witness.KindInconsistent {
				return true
			}
		}
		return false
	})
	eventually(t, "the server reports it", func() bool {
		r := s.ready()
		return len(r.Witnesses) == 1 && r.Witnesses[0].Kind == witness.KindInconsistent
	})
	s.srv.stop(false)
	code, out := runVellum(append(pubArgs, "--witness", w.pub(), "--witness-url", w.url())...)
	if code != 1 || !strings.Contains(out, fmt.Sprintf("the first %d records differ from the checkpoint of %d records witnesses cosigned", cosigned, cosigned)) ||
		!strings.Contains(out, "records in seq 21..") {
		t.Fatalf("verify after the rolled-back store grew: exit %d\n%s", code, out)
	}
}

// TestWitnessCatchesRewrite: the log rewritten and re-signed with the
// store's own keys (same store id, same signing key, new records) is
// refused by the witness and reported by verify --witness.
func TestWitnessCatchesRewrite(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	s := newStore(t)
	w := startWitnessProc(t, t.TempDir(), s)
	s.configure(w)
	s.start()
	s.ingest(25, "true")
	cosigned := s.last
	s.waitCosigned()
	s.srv.stop(false)

	// An evidence bundle exported now is proved against the cosigned
	// checkpoint and carries its cosignature.
	bundle := filepath.Join(t.TempDir(), "evidence.jsonl")
	if code, out := runVellum("export", "--data", s.data, "--proof", "--pubkey", s.pub(), "--out", bundle); code != 0 || !strings.Contains(out, cosign.CheckpointFile) {
		t.Fatalf("export: %d %s", code, out)
	}
	if code, out := runVellum("verify", "--bundle", bundle, "--pubkey", s.pub(), "--witness", w.pub()); code != 0 || !strings.Contains(out, "witnessed: checkpoint of") {
		t.Fatalf("verify --bundle --witness: %d %s", code, out)
	}
	_, other, _ := cosign.GenerateKey("someone.else")
	if code, out := runVellum("verify", "--bundle", bundle, "--pubkey", s.pub(), "--witness", other); code != 1 || !strings.Contains(out, "witness:") {
		t.Fatalf("verify --bundle with a witness that did not cosign: %d %s", code, out)
	}

	// Rewrite: keep the store's identity and keys, drop its history and
	// every file that remembers it, write another history.
	for _, name := range []string{"segments", checkpoint.LogName, cosign.CheckpointFile} {
		os.RemoveAll(filepath.Join(s.data, name))
	}
	s.start()
	s.ingest(40, "forged")
	r := s.waitRefused()
	if k := r.Witnesses[0].Kind; k != witness.KindInconsistent && k != witness.KindRollback {
		t.Fatalf("refusal %+v", r.Witnesses[0])
	}
	s.srv.stop(false)
	pubArgs := []string{"verify", "--data", s.data, "--pubkey", s.pub()}
	if code, out := runVellum(pubArgs...); code != 0 {
		t.Fatalf("a rewritten and re-signed store passes verify without a witness (the attack): %d\n%s", code, out)
	}
	code, out := runVellum(append(pubArgs, "--witness", w.pub(), "--witness-url", w.url())...)
	if code != 1 || !strings.Contains(out, fmt.Sprintf("the first %d records differ from the checkpoint of %d records witnesses cosigned", cosigned, cosigned)) {
		t.Fatalf("verify --witness on the rewritten store: exit %d\n%s", code, out)
	}
}

// TestWitnessRefusesFork: two stores with the same identity and key (a
// copy of one started beside it) both push to the witness; it cosigns one
// history and refuses the other.
func TestWitnessRefusesFork(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	a := newStore(t)
	w := startWitnessProc(t, t.TempDir(), a)
	a.configure(w)
	a.start()
	a.ingest(10, "common")
	a.waitCosigned()
	a.srv.stop(false)
	b := &store{t: t, data: t.TempDir()}
	copyDir(t, a.data, b.data)
	b.configure(w)
	a.start()
	b.start()
	a.ingest(15, "a")
	b.ingest(25, "b")
	eventually(t, "one of the two stores is refused", func() bool {
		return len(a.ready().Alarms)+len(b.ready().Alarms) > 0
	})
	ra, rb := a.ready(), b.ready()
	if len(ra.Alarms) > 0 && len(rb.Alarms) > 0 {
		t.Fatalf("both stores refused: %v %v", ra.Alarms, rb.Alarms)
	}
	refused := ra
	if len(rb.Alarms) > 0 {
		refused = rb
	}
	if k := refused.Witnesses[0].Kind; k != witness.KindInconsistent && k != witness.KindFork && k != witness.KindRollback {
		t.Fatalf("refusal %+v", refused.Witnesses[0])
	}
	eventually(t, "the witness records the fork", func() bool { return len(w.alarms()) > 0 })
}

// TestWitnessRestartKeepsView: the witness is killed with SIGKILL and
// restarted; it still refuses what it refused before, and concurrent
// pushes of one checkpoint are all cosigned.
func TestWitnessRestartKeepsView(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	s := newStore(t)
	wdir := t.TempDir()
	w := startWitnessProc(t, wdir, s)
	s.configure(w)
	s.start()
	s.ingest(10, "one")
	s.waitCosigned()
	s.ingest(10, "two")
	s.waitCosigned()
	s.srv.stop(false)
	seen := w.latest(s.origin())
	w.p.stop(true) // kill -9

	w = startWitnessProc(t, wdir, s)
	if got := w.latest(s.origin()); got.Size != seen.Size || got.Root != seen.Root {
		t.Fatalf("after kill -9 the witness holds %d, it had cosigned %d", got.Size, seen.Size)
	}
	// The store's first checkpoint, replayed, is a rollback to the
	// restarted witness.
	res, err := checkpoint.ReadLog(nil, filepath.Join(s.data, checkpoint.LogName))
	if err != nil || len(res.Entries) < 2 {
		t.Fatalf("checkpoint log: %v", err)
	}
	first, _ := checkpoint.ParseNote(res.Entries[0].Note)
	body := (&witness.AddRequest{OldSize: 0, Checkpoint: res.Entries[0].Note}).Marshal()
	resp, err := http.Post(w.url()+witness.AddCheckpointPath, "text/plain", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 409 || string(b) != fmt.Sprintf("%d\n", seen.Size) || first.Size >= seen.Size {
		t.Fatalf("replayed checkpoint of %d: %d %q", first.Size, resp.StatusCode, b)
	}

	// Concurrent pushes of one new checkpoint: all cosigned.
	s.start()
	s.ingest(30, "three")
	eventually(t, "the store signs a newer checkpoint", func() bool {
		res, _ := checkpoint.ReadLog(nil, filepath.Join(s.data, checkpoint.LogName))
		last, _ := checkpoint.ParseNote(res.Entries[len(res.Entries)-1].Note)
		return last.Size == s.last
	})
	s.srv.stop(false)
	w.p.stop(false)
	// The store is stopped: push by hand, so this test, not the server,
	// makes the concurrent requests.
	os.Remove(filepath.Join(s.data, cosign.CheckpointFile))
	w = startWitnessProc(t, wdir, s)
	cur := w.latest(s.origin())
	res, _ = checkpoint.ReadLog(nil, filepath.Join(s.data, checkpoint.LogName))
	next := res.Entries[len(res.Entries)-1].Note
	nsn, _ := checkpoint.ParseNote(next)
	st, err := verify.OpenStore(nil, s.data)
	if err != nil {
		t.Fatal(err)
	}
	proof, err := merkle.ProveConsistency(st.Source(), cur.Size, nsn.Size)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	body = (&witness.AddRequest{OldSize: cur.Size, Proof: proof.Hashes, Checkpoint: next}).Marshal()
	var wg sync.WaitGroup
	codes := make(chan int, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Post(w.url()+witness.AddCheckpointPath, "text/plain", bytes.NewReader(body))
			if err != nil {
				codes <- 0
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Fatalf("a concurrent push of one checkpoint got %d", c)
		}
	}
	if got := w.latest(s.origin()); got.Size != nsn.Size {
		t.Fatalf("witness at %d after the pushes of %d", got.Size, nsn.Size)
	}
}
