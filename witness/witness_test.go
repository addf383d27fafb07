package witness

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/cosign"
	"github.com/vellumlog/vellum/vfs"
)

func openTest(t *testing.T, fs vfs.FS, dir string, logs ...*testLog) *Witness {
	t.Helper()
	var ls []Log
	for _, l := range logs {
		ls = append(ls, Log{Origin: l.origin, Key: l.key})
	}
	c := &clock{time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
	w, err := Open(dir, &Options{FS: fs, Name: "witness.test/w1", Logs: ls, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// status returns the HTTP status of err (200 for nil) and its size.
func status(t *testing.T, err error) (int, uint64) {
	t.Helper()
	if err == nil {
		return http.StatusOK, 0
	}
	var re *RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("not a refusal: %v", err)
	}
	return re.Status, re.Size
}

func TestAddProtocol(t *testing.T) {
	lg := newTestLog(t, 7)
	lg.grow(100, 'a')
	stranger := newTestLog(t, 8) // same origin, another key
	stranger.grow(100, 'a')
	other := newTestLog(t, 7)
	other.origin = "vellum/ffffffffffffffffffffffffffffffff"
	other.grow(10, 'x')
	forked := lg.fork(20)
	forked.grow(80, 'f') // the same first 20 leaves, then different ones

	w := openTest(t, nil, t.TempDir(), lg)
	defer w.Close()
	steps := []struct {
		name   string
		req    *AddRequest
		status int
		size   uint64 // 409: the size in the answer
		alarm  string // kind of the alarm recorded, "" for none
	}{
		{"old 0 with a proof is malformed", &AddRequest{OldSize: 0, Proof: lg.request(5, 20).Proof, Checkpoint: lg.checkpoint(20).Note}, 400, 0, ""},
		{"first checkpoint, old 0", lg.request(0, 10), 200, 0, ""},
		{"the same checkpoint again", lg.request(10, 10), 200, 0, ""},
		{"the same checkpoint with a stale old size (idempotent)", lg.request(0, 10), 200, 0, ""},
		{"extends with a valid proof", lg.request(10, 30), 200, 0, ""},
		{"wrong old size: 409 with the witness's size", lg.request(10, 50), 409, 30, ""},
		{"old size larger than the checkpoint", &AddRequest{OldSize: 60, Checkpoint: lg.checkpoint(50).Note}, 400, 0, ""},
		{"unknown origin", other.request(0, 10), 404, 0, ""},
		{"signed by another key", stranger.request(30, 60), 403, 0, KindSignature},
		{"a second bad signature within a minute is not recorded again", stranger.request(30, 61), 403, 0, ""},
		{"rollback: smaller than the latest cosigned", lg.request(0, 20), 409, 30, KindRollback},
		{"the same rollback again is not recorded twice", lg.request(0, 20), 409, 30, ""},
		{"rollback claiming the right old size", lg.request(30, 25), 400, 0, KindRollback},
		{"fork: the cosigned size with another root", forked.request(30, 30), 409, 30, KindFork},
		{"rewritten history: the proof does not verify", forked.request(30, 80), 422, 30, KindInconsistent},
		{"a garbage proof", &AddRequest{OldSize: 30, Proof: lg.request(30, 80).Proof[1:], Checkpoint: lg.checkpoint(80).Note}, 422, 30, KindInconsistent},
		{"still extends after all that", lg.request(30, 100), 200, 0, ""},
	}
	alarms := 0
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			line, err := w.Add(st.req)
			got, size := status(t, err)
			if got != st.status || (got == 409 && size != st.size) {
				t.Fatalf("status %d size %d (%v), want %d size %d", got, size, err, st.status, st.size)
			}
			if got == 200 {
				sn, _ := checkpoint.ParseNote(st.req.Checkpoint)
				c, ok, err := cosign.Find(cosign.Append(st.req.Checkpoint, line), w.Verifier())
				if err != nil || !ok || c.Time.Unix() != time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC).Unix() {
					t.Fatalf("answer %q is not a valid cosignature: %v", line, err)
				}
				if latest, _ := w.Latest(lg.origin); !strings.HasPrefix(string(latest), string(sn.Marshal())) {
					t.Fatalf("latest is %q", latest)
				}
			}
			as := w.Alarms()
			if st.alarm == "" {
				if len(as) != alarms {
					t.Fatalf("an alarm was recorded: %+v", as[len(as)-1])
				}
				return
			}
			if len(as) != alarms+1 || as[alarms].Kind != st.alarm || as[alarms].Status != st.status || as[alarms].Origin != lg.origin {
				t.Fatalf("alarms %+v, want one more of kind %s", as, st.alarm)
			}
			if st.alarm != KindSignature && !strings.Contains(as[alarms].Latest, "— witness.test/w1 ") {
				t.Fatalf("the alarm does not keep the cosigned checkpoint: %q", as[alarms].Latest)
			}
			if as[alarms].Submitted != string(st.req.Marshal()) {
				t.Fatal("the alarm does not keep the request")
			}
			alarms++
		})
	}
}

// TestConcurrentPushes sends the same checkpoint, and checkpoints of many
// sizes, from many goroutines: the same checkpoint is cosigned for every
// caller, and the view only ever grows.
func TestConcurrentPushes(t *testing.T) {
	lg := newTestLog(t, 7)
	lg.grow(300, 'a')
	w := openTest(t, nil, t.TempDir(), lg)
	defer w.Close()
	if _, err := w.Add(lg.request(0, 10)); err != nil {
		t.Fatal(err)
	}
	t.Run("same checkpoint", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				line, err := w.Add(lg.request(10, 50))
				if err == nil {
					_, ok, ferr := cosign.Find(cosign.Append(lg.checkpoint(50).Note, line), w.Verifier())
					if !ok || ferr != nil {
						err = fmt.Errorf("bad cosignature %q", line)
					}
				}
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("a concurrent push of the same checkpoint failed: %v", err)
			}
		}
	})
	t.Run("racing sizes", func(t *testing.T) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var accepted uint64
		for size := uint64(51); size <= 300; size += 7 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := w.Add(lg.request(50, size)); err == nil { // some win, the rest are refused
					mu.Lock()
					accepted = max(accepted, size)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		latest, _ := w.Latest(lg.origin)
		sn, _ := checkpoint.ParseNote(latest)
		// The check of the old size and the write of the view are one
		// step: the view is the largest checkpoint cosigned, never an
		// older one that lost the race.
		if sn.Size != accepted {
			t.Fatalf("view at %d, the largest cosigned was %d", sn.Size, accepted)
		}
		// A smaller checkpoint arriving after a larger one looks like a
		// rollback to the witness (one store pushes one checkpoint at a
		// time, so it is one); nothing else is an alarm.
		for _, a := range w.Alarms() {
			if a.Kind != KindRollback {
				t.Fatalf("racing pushes raised a %s alarm: %s", a.Kind, a.Detail)
			}
		}
	})
}

func TestRestartKeepsView(t *testing.T) {
	lg := newTestLog(t, 7)
	lg.grow(50, 'a')
	dir := t.TempDir()
	w := openTest(t, nil, dir, lg)
	if _, err := w.Add(lg.request(0, 20)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Add(lg.request(0, 10)); err == nil {
		t.Fatal("rollback accepted")
	}
	vkey := w.Verifier().String()
	w.Close()

	w = openTest(t, nil, dir, lg)
	defer w.Close()
	if w.Verifier().String() != vkey {
		t.Fatal("the key changed across a restart")
	}
	if got, size := status(t, errOnly(w.Add(lg.request(0, 15)))); got != 409 || size != 20 {
		t.Fatalf("after restart: %d %d", got, size)
	}
	if as := w.Alarms(); len(as) != 2 || as[0].Kind != KindRollback {
		t.Fatalf("alarms %+v", as)
	}
	if _, err := w.Add(lg.request(20, 50)); err != nil {
		t.Fatal(err)
	}
}

func errOnly(_ []byte, err error) error { return err }

// TestStateTampering: what an operator might do to make the witness forget
// is refused at start.
func TestStateTampering(t *testing.T) {
	lg := newTestLog(t, 7)
	lg.grow(50, 'a')
	setup := func(t *testing.T) (*vfs.Mem, string) {
		fs := vfs.NewMem()
		dir := "/w"
		w := openTest(t, fs, dir, lg)
		if _, err := w.Add(lg.request(0, 20)); err != nil {
			t.Fatal(err)
		}
		w.Add(lg.request(0, 10)) // an alarm
		w.Add(lg.request(0, 11)) // another
		w.Close()
		return fs, dir
	}
	rewrite := func(fs *vfs.Mem, path string, f func([]byte) []byte) {
		b, _ := vfs.ReadFile(fs, path)
		fs.Remove(path)
		vfs.WriteFileAtomic(fs, filepath.Dir(path), path, f(b))
	}
	tests := []struct {
		name   string
		tamper func(fs *vfs.Mem, dir string)
		want   string
	}{
		{"state removed", func(fs *vfs.Mem, dir string) { fs.Remove(dir + "/" + StateName) }, "view"},
		{"key removed", func(fs *vfs.Mem, dir string) { fs.Remove(dir + "/" + KeyName) }, "key"},
		{"alarm log removed", func(fs *vfs.Mem, dir string) {
			fs.Remove(dir + "/" + AlarmsName)
		}, "alarms were removed"},
		{"last alarm cut off", func(fs *vfs.Mem, dir string) {
			rewrite(fs, dir+"/"+AlarmsName, func(b []byte) []byte {
				list, _, _, _ := parseAlarms("", b)
				_ = list
				// keep only the first entry
				n, _ := alarmAt(b, 0)
				return b[:n]
			})
		}, "alarms were removed"},
		{"view rolled back by editing the state", func(fs *vfs.Mem, dir string) {
			rewrite(fs, dir+"/"+StateName, func(b []byte) []byte {
				return []byte(strings.Replace(string(b), `\n20\n`, `\n10\n`, 1))
			})
		}, "cosignature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, dir := setup(t)
			tt.tamper(fs, dir)
			_, err := Open(dir, &Options{FS: fs, Logs: []Log{{Origin: lg.origin, Key: lg.key}}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
			if !errors.Is(err, ErrState) && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v is not ErrState", err)
			}
		})
	}
	t.Run("an alarm altered in the middle", func(t *testing.T) {
		fs, dir := setup(t)
		rewrite(fs, dir+"/"+AlarmsName, func(b []byte) []byte {
			n, _ := alarmAt(b, 0)
			first := b[:n]
			a := strings.Replace(string(first[alarmHead:n-alarmTail]), `"rollback"`, `"rollbacc"`, 1)
			return append(frameAlarm([]byte(a)), b[n:]...)
		})
		_, err := Open(dir, &Options{FS: fs, Logs: []Log{{Origin: lg.origin, Key: lg.key}}})
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("an unfinished first run starts over", func(t *testing.T) {
		fs := vfs.NewMem()
		w := openTest(t, fs, "/w")
		w.Close()
		fs.Remove("/w/" + KeyName)
		w = openTest(t, fs, "/w", lg)
		defer w.Close()
		if _, err := w.Add(lg.request(0, 5)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a torn final alarm is cut back", func(t *testing.T) {
		fs, dir := setup(t)
		// An alarm whose write was cut short by a crash, after the state
		// recorded two.
		f, _ := fs.OpenWrite(dir + "/" + AlarmsName)
		f.Write(frameAlarm([]byte(`{"seq":3}`))[:10])
		f.Sync()
		f.Close()
		w, err := Open(dir, &Options{FS: fs, Logs: []Log{{Origin: lg.origin, Key: lg.key}}})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if len(w.Alarms()) != 2 {
			t.Fatalf("alarms %d", len(w.Alarms()))
		}
	})
}

// TestCrashKeepsWhatWasAnswered crashes the file system after each answer
// (keeping only synced bytes): everything the witness cosigned survives.
func TestCrashKeepsWhatWasAnswered(t *testing.T) {
	lg := newTestLog(t, 7)
	lg.grow(100, 'a')
	fs := vfs.NewMem()
	w := openTest(t, fs, "/w", lg)
	old := uint64(0)
	for size := uint64(5); size <= 100; size += 19 {
		if _, err := w.Add(lg.request(old, size)); err != nil {
			t.Fatal(err)
		}
		old = size
		w.Add(lg.request(0, 1)) // an alarm too
		crashed := fs.CrashKeepPrefix(nil)
		w2, err := Open("/w", &Options{FS: crashed, Logs: []Log{{Origin: lg.origin, Key: lg.key}}})
		if err != nil {
			t.Fatalf("after a crash at size %d: %v", size, err)
		}
		latest, _ := w2.Latest(lg.origin)
		sn, _ := checkpoint.ParseNote(latest)
		if sn.Size != size || len(w2.Alarms()) != 1 {
			t.Fatalf("after a crash: view %d (want %d), %d alarms", sn.Size, size, len(w2.Alarms()))
		}
		w2.Close()
	}
	w.Close()
}

func TestOpenRejectsBadOptions(t *testing.T) {
	lg := newTestLog(t, 7)
	for name, logs := range map[string][]Log{
		"bad origin":    {{Origin: "has space", Key: lg.key}},
		"no key":        {{Origin: lg.origin}},
		"twice":         {{Origin: lg.origin, Key: lg.key}, {Origin: lg.origin, Key: lg.key}},
		"origin with +": {{Origin: "a+b", Key: lg.key}},
	} {
		if _, err := Open(t.TempDir(), &Options{Logs: logs}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	dir := t.TempDir()
	w, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := Open(dir, nil); !errors.Is(err, vfs.ErrLocked) {
		t.Fatalf("second witness on one directory: %v", err)
	}
	_ = note.VerifierList
}
