package witness

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/cosign"
	"github.com/vellumlog/vellum/merkle"
	"github.com/vellumlog/vellum/vfs"
)

// DefaultName is the witness's key name when Options.Name is empty on
// first run.
const DefaultName = "vellum-witness"

// lockName is the witness directory's lock file.
const lockName = "LOCK"

// signatureAlarmEvery bounds how often a bad-signature refusal for one
// origin is recorded as an alarm: anyone can send junk, and the alarm log
// must not grow without bound. Every refusal is still logged.
const signatureAlarmEvery = time.Minute

// Log is a log the witness watches: its origin line and its checkpoint
// signing key (a note verifier, such as the contents of a Vellum store's
// signing.pub).
type Log struct {
	Origin string
	Key    note.Verifier
}

// Options configure a Witness. The zero value works (a witness watching no
// log answers 404 to everything).
type Options struct {
	// FS is the file system; vfs.Default when nil.
	FS vfs.FS
	// Name is the key name of a witness created on first run (it appears
	// in every cosignature line); DefaultName when empty. Ignored once the
	// key exists.
	Name string
	// Logs are the logs to watch.
	Logs []Log
	// Now is the clock (cosignature times, alarm times); time.Now when nil.
	Now func() time.Time
	// Logger receives one line per refusal and per cosignature; nil
	// discards.
	Logger *slog.Logger
}

// Witness cosigns checkpoints of the logs it watches, each only if it
// extends the last one it cosigned for that log, and keeps its view and
// an alarm log in its directory. It is safe for concurrent use: requests
// for one witness are checked and persisted one at a time, so a smaller
// checkpoint can never overwrite a larger one that raced it.
type Witness struct {
	dir    string
	fs     vfs.FS
	now    func() time.Time
	log    *slog.Logger
	lock   io.Closer
	signer *cosign.Signer
	logs   map[string]Log

	mu           sync.Mutex
	st           *stateFile
	views        map[string]*view
	alarms       *alarmLog
	rollbackSeen map[string]bool
	lastSigAlarm map[string]time.Time
	closed       bool
}

// view is the latest checkpoint cosigned for one origin.
type view struct {
	size uint64
	root merkle.Hash
	note []byte
}

// Open opens the witness directory dir, creating the key pair and an empty
// view on first run. It refuses to start when the directory cannot be
// trusted (ErrState): a key without a view (the view was removed: an empty
// one would cosign a rolled-back log), a view without its key, a view not
// cosigned by the key, or an alarm log holding fewer alarms than the view
// records. Every recorded alarm is logged at error level.
func Open(dir string, opts *Options) (*Witness, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Name == "" {
		o.Name = DefaultName
	}
	w := &Witness{dir: dir, fs: o.FS, now: o.Now, log: o.Logger.With(slog.String("component", "witness")),
		logs: map[string]Log{}, views: map[string]*view{}, rollbackSeen: map[string]bool{}, lastSigAlarm: map[string]time.Time{}}
	for i, l := range o.Logs {
		if err := checkOrigin(l.Origin); err != nil {
			return nil, fmt.Errorf("witness: log %d: %w", i+1, err)
		}
		if l.Key == nil {
			return nil, fmt.Errorf("witness: log %q has no key", l.Origin)
		}
		if _, dup := w.logs[l.Origin]; dup {
			return nil, fmt.Errorf("witness: log %q is configured twice", l.Origin)
		}
		w.logs[l.Origin] = l
	}
	if err := w.fs.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("witness: create %s: %w", dir, err)
	}
	lock, err := w.fs.Lock(filepath.Join(dir, lockName))
	if err != nil {
		if errors.Is(err, vfs.ErrLocked) {
			return nil, fmt.Errorf("witness: %s is in use by another witness process: %w", dir, err)
		}
		return nil, fmt.Errorf("witness: lock %s: %w", dir, err)
	}
	w.lock = lock
	if err := w.load(o.Name); err != nil {
		lock.Close()
		return nil, err
	}
	return w, nil
}

func checkOrigin(o string) error {
	_, err := checkpoint.Parse([]byte(o + "\n0\n" + merkle.EmptyRoot.Base64() + "\n"))
	return err
}

// load reads or creates the key and the state and checks them against
// each other and the alarm log.
func (w *Witness) load(name string) error {
	st, haveState, err := readState(w.fs, w.dir)
	if err != nil {
		return err
	}
	keyPath := filepath.Join(w.dir, KeyName)
	_, kerr := w.fs.Stat(keyPath)
	haveKey := kerr == nil
	switch {
	case !haveState && !haveKey:
		if err := w.create(name); err != nil {
			return err
		}
		st = w.st
	case haveState && !haveKey:
		if len(st.Logs) > 0 || st.Alarms.Count > 0 {
			return fmt.Errorf("%w: %s holds this witness's view but its key %s is missing; restore the key from backup", ErrState, filepath.Join(w.dir, StateName), keyPath)
		}
		// A first run that stopped between writing the state and the key.
		if err := w.create(name); err != nil {
			return err
		}
		st = w.st
	case !haveState && haveKey:
		return fmt.Errorf("%w: the key %s exists but the witness's view (%s) is missing; restore it from backup. "+
			"A witness that forgot what it cosigned would cosign a rolled-back log; to start a new witness instead (a new identity auditors must be told about), move %s and %s away",
			ErrState, keyPath, filepath.Join(w.dir, StateName), KeyName, PubName)
	default:
		b, err := vfs.ReadFile(w.fs, keyPath)
		if err != nil {
			return fmt.Errorf("witness: read %s: %w", keyPath, err)
		}
		if fi, err := w.fs.Stat(keyPath); err == nil && fi.Mode().Perm()&0o077 != 0 {
			return fmt.Errorf("%w: %s has mode %04o; chmod 600 it", checkpoint.ErrKeyFileMode, keyPath, fi.Mode().Perm())
		}
		s, err := cosign.NewSigner(string(b))
		if err != nil {
			return fmt.Errorf("%w (%s)", err, keyPath)
		}
		if got := s.Verifier().String(); got != st.Witness {
			return fmt.Errorf("%w: %s belongs to witness %s, but the key %s is %s", ErrState, filepath.Join(w.dir, StateName), st.Witness, keyPath, got)
		}
		w.signer = s
		w.st = st
	}
	w.signer.Now = w.now
	al, err := openAlarms(w.fs, w.dir)
	if err != nil {
		return err
	}
	w.alarms = al
	if err := w.checkAlarms(); err != nil {
		al.close()
		return err
	}
	for origin, ls := range st.Logs {
		v, err := w.loadView(origin, ls)
		if err != nil {
			al.close()
			return err
		}
		w.views[origin] = v
	}
	for _, a := range al.list {
		w.log.Error("witness alarm on record", slog.Uint64("alarm", a.Seq), slog.Time("time", a.Time), slog.String("kind", a.Kind),
			slog.String("origin", a.Origin), slog.String("detail", a.Detail))
		if a.Kind == KindRollback {
			w.rollbackSeen[rollbackKey(a)] = true
		}
	}
	return nil
}

// create makes the key pair and an empty view. The state is written first:
// a state without a key and without any view is recognised on the next
// start as an unfinished first run.
func (w *Witness) create(name string) error {
	skey, vkey, err := cosign.GenerateKey(name)
	if err != nil {
		return fmt.Errorf("witness: %w", err)
	}
	s, err := cosign.NewSigner(skey)
	if err != nil {
		return err
	}
	st := &stateFile{Format: stateFormat, Witness: vkey, Logs: map[string]logState{}}
	if err := writeState(w.fs, w.dir, st); err != nil {
		return err
	}
	for _, f := range []struct {
		name, text string
		mode       os.FileMode
	}{{KeyName, skey, 0o600}, {PubName, vkey, 0o644}} {
		path := filepath.Join(w.dir, f.name)
		w.fs.Remove(path)
		fh, err := w.fs.Create(path)
		if err != nil {
			return fmt.Errorf("witness: create %s: %w", path, err)
		}
		if err := w.fs.Chmod(path, f.mode); err != nil {
			fh.Close()
			return fmt.Errorf("witness: chmod %s: %w", path, err)
		}
		_, err = fh.Write([]byte(f.text + "\n"))
		if err == nil {
			err = fh.Sync()
		}
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("witness: write %s: %w", path, err)
		}
	}
	if err := w.fs.SyncDir(w.dir); err != nil {
		return fmt.Errorf("witness: sync %s: %w", w.dir, err)
	}
	w.signer, w.st = s, st
	w.log.Info("created a new witness key and an empty view", slog.String("verifier_key", vkey))
	return nil
}

// checkAlarms compares the alarm log with what the state says it held.
func (w *Witness) checkAlarms() error {
	al, mark := w.alarms, w.st.Alarms
	if uint64(len(al.list)) < mark.Count {
		return fmt.Errorf("%w: the alarm log %s holds %d alarms but the state records %d: alarms were removed; restore the alarm log from backup",
			ErrState, al.path, len(al.list), mark.Count)
	}
	if mark.Count > 0 && al.hashes[mark.Count-1] != mark.Head {
		return fmt.Errorf("%w: alarm %d in %s is not the one the state records (hash %s, recorded %s): the alarm log was altered",
			ErrState, mark.Count, al.path, al.hashes[mark.Count-1], mark.Head)
	}
	if uint64(len(al.list)) > mark.Count {
		// Alarms appended before a crash kept the state from recording them.
		return w.saveState(w.st.Logs)
	}
	return nil
}

// loadView checks one stored checkpoint: its origin, and this witness's
// cosignature on it; with the log's configured key, the log's signature.
func (w *Witness) loadView(origin string, ls logState) (*view, error) {
	msg := []byte(ls.Checkpoint)
	sn, err := checkpoint.ParseNote(msg)
	if err != nil {
		return nil, fmt.Errorf("%w: the view of %q does not parse: %w", ErrState, origin, err)
	}
	if sn.Origin != origin {
		return nil, fmt.Errorf("%w: the view of %q holds a checkpoint of %q", ErrState, origin, sn.Origin)
	}
	if _, ok, err := cosign.Find(msg, w.signer.Verifier()); err != nil || !ok {
		return nil, fmt.Errorf("%w: the view of %q does not carry this witness's valid cosignature (state altered, or another witness's)", ErrState, origin)
	}
	if l, ok := w.logs[origin]; ok {
		if _, err := checkpoint.Open(msg, l.Key); err != nil {
			w.log.Warn("the stored checkpoint was not signed by the log's configured key (was the log's key changed?); its size and root stay the witness's view",
				slog.String("origin", origin), slog.String("error", err.Error()))
		}
	}
	return &view{size: sn.Size, root: sn.Root, note: msg}, nil
}

// saveState writes the state with logs and the alarm log's current mark.
// The caller holds w.mu (or is Open).
func (w *Witness) saveState(logs map[string]logState) error {
	st := &stateFile{Format: stateFormat, Witness: w.st.Witness, Logs: logs,
		Alarms: alarmMark{Count: uint64(len(w.alarms.list)), Head: w.alarms.head}}
	if err := writeState(w.fs, w.dir, st); err != nil {
		return err
	}
	w.st = st
	return nil
}

// Verifier returns the witness's public key, the one auditors pass to
// `vellum verify --witness`.
func (w *Witness) Verifier() *cosign.Verifier { return w.signer.Verifier() }

// Add checks a request and cosigns its checkpoint, returning the
// cosignature line, or a *RefusedError with the status C2SP tlog-witness
// prescribes. Refusals that may be evidence of misbehaviour are recorded in
// the alarm log before Add returns.
//
// Beyond the spec, a checkpoint equal to the latest cosigned one (same
// size and root) is cosigned again whatever its old size, so a retried or
// concurrent push of one checkpoint gets the same answer every time.
func (w *Witness) Add(req *AddRequest) ([]byte, error) {
	msg := req.Checkpoint
	sn, err := checkpoint.ParseNote(msg)
	if err != nil {
		return nil, w.refuse(&RefusedError{Status: http.StatusBadRequest, Kind: KindMalformed, Reason: err.Error()}, "")
	}
	l, ok := w.logs[sn.Origin]
	if !ok {
		return nil, w.refuse(&RefusedError{Status: http.StatusNotFound, Kind: KindUnknownLog, Reason: fmt.Sprintf("this witness does not watch origin %q", sn.Origin)}, sn.Origin)
	}
	s, err := checkpoint.Open(msg, l.Key)
	if err != nil {
		if errors.Is(err, checkpoint.ErrSignature) {
			re := &RefusedError{Status: http.StatusForbidden, Kind: KindSignature, Reason: fmt.Sprintf("no valid signature by the key of %q (%s+%08x): %v", sn.Origin, l.Key.Name(), l.Key.KeyHash(), err)}
			return nil, w.alarm(re, sn.Origin, req)
		}
		return nil, w.refuse(&RefusedError{Status: http.StatusBadRequest, Kind: KindMalformed, Reason: err.Error()}, sn.Origin)
	}
	body := noteText(msg)
	stored, err := logSigned(msg, l.Key)
	if err != nil {
		return nil, w.refuse(&RefusedError{Status: http.StatusBadRequest, Kind: KindMalformed, Reason: err.Error()}, sn.Origin)
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, &RefusedError{Status: http.StatusServiceUnavailable, Kind: KindStorage, Reason: "the witness is shutting down"}
	}
	cur := w.views[s.Origin]
	var n uint64
	if cur != nil {
		n = cur.size
	}
	smaller := cur != nil && s.Size < cur.size
	rollback := func(status int) error {
		re := &RefusedError{Status: status, Kind: KindRollback, Size: n,
			Reason: fmt.Sprintf("the log signed a checkpoint of %d records after this witness cosigned one of %d: the log was rolled back (or an old checkpoint was replayed)", s.Size, n)}
		key := fmt.Sprintf("%s %d %s", s.Origin, s.Size, s.Root.Base64())
		if w.rollbackSeen[key] {
			return w.refuse(re, s.Origin)
		}
		w.rollbackSeen[key] = true
		return w.alarm(re, s.Origin, req)
	}
	switch {
	case req.OldSize > s.Size:
		if smaller {
			return nil, rollback(http.StatusBadRequest)
		}
		return nil, w.refuse(&RefusedError{Status: http.StatusBadRequest, Kind: KindMalformed,
			Reason: fmt.Sprintf("old size %d is larger than the checkpoint's size %d", req.OldSize, s.Size)}, s.Origin)
	case cur != nil && s.Size == cur.size && s.Root == cur.root:
		line, err := w.signer.Cosign(body)
		if err != nil {
			return nil, &RefusedError{Status: http.StatusInternalServerError, Kind: KindStorage, Reason: err.Error()}
		}
		w.log.Info("cosigned again the latest checkpoint", slog.String("origin", s.Origin), slog.Uint64("size", s.Size))
		return line, nil
	case smaller:
		return nil, rollback(http.StatusConflict)
	case req.OldSize != n:
		return nil, w.refuse(&RefusedError{Status: http.StatusConflict, Kind: KindConflict, Size: n,
			Reason: fmt.Sprintf("old size %d is not the size of the latest cosigned checkpoint, %d", req.OldSize, n)}, s.Origin)
	case cur != nil && s.Size == cur.size:
		return nil, w.alarm(&RefusedError{Status: http.StatusConflict, Kind: KindFork, Size: n,
			Reason: fmt.Sprintf("the log signed two checkpoints of %d records with different roots (%s cosigned, %s now): the log forked", n, cur.root.Base64(), s.Root.Base64())}, s.Origin, req)
	case n == 0:
		if len(req.Proof) != 0 {
			return nil, w.refuse(&RefusedError{Status: http.StatusBadRequest, Kind: KindMalformed,
				Reason: fmt.Sprintf("old size 0 takes an empty consistency proof, got %d lines", len(req.Proof))}, s.Origin)
		}
	default:
		p := &merkle.ConsistencyProof{Size1: n, Size2: s.Size, Hashes: req.Proof}
		if err := merkle.VerifyConsistency(p, cur.root, s.Root); err != nil {
			return nil, w.alarm(&RefusedError{Status: http.StatusUnprocessableEntity, Kind: KindInconsistent, Size: n,
				Reason: fmt.Sprintf("the consistency proof from the cosigned checkpoint of %d records to %d does not verify (%v): the log's history differs from what this witness cosigned (rewritten, rolled back or forked)", n, s.Size, err)}, s.Origin, req)
		}
	}
	line, err := w.signer.Cosign(body)
	if err != nil {
		return nil, &RefusedError{Status: http.StatusInternalServerError, Kind: KindStorage, Reason: err.Error()}
	}
	next := &view{size: s.Size, root: s.Root, note: append(stored, line...)}
	logs := make(map[string]logState, len(w.st.Logs)+1)
	for k, v := range w.st.Logs {
		logs[k] = v
	}
	logs[s.Origin] = logState{Checkpoint: string(next.note)}
	if err := w.saveState(logs); err != nil {
		w.log.Error("cannot persist the witness's view; nothing was cosigned", slog.String("origin", s.Origin), slog.String("error", err.Error()))
		return nil, &RefusedError{Status: http.StatusInternalServerError, Kind: KindStorage, Reason: "the witness could not persist its view; nothing was cosigned"}
	}
	w.views[s.Origin] = next
	w.log.Info("cosigned", slog.String("origin", s.Origin), slog.Uint64("old_size", n), slog.Uint64("size", s.Size))
	return line, nil
}

// refuse logs a refusal that is not an alarm.
func (w *Witness) refuse(re *RefusedError, origin string) error {
	w.log.Warn("refused a checkpoint", slog.Int("status", re.Status), slog.String("kind", re.Kind), slog.String("origin", origin), slog.String("reason", re.Reason))
	return re
}

// alarm logs a refusal at error level and records it in the alarm log
// (bad signatures at most once a minute per origin), then the state's
// mark of the alarm log. The caller holds w.mu, except for signature
// refusals, which take it here.
func (w *Witness) alarm(re *RefusedError, origin string, req *AddRequest) error {
	if re.Kind == KindSignature {
		w.mu.Lock()
		defer w.mu.Unlock()
		now := w.now()
		if last, ok := w.lastSigAlarm[origin]; ok && now.Sub(last) < signatureAlarmEvery {
			w.log.Error("refused a checkpoint (alarm already recorded in the last minute)", slog.Int("status", re.Status), slog.String("kind", re.Kind),
				slog.String("origin", origin), slog.String("reason", re.Reason))
			return re
		}
		w.lastSigAlarm[origin] = now
	}
	a := Alarm{Time: w.now().UTC(), Kind: re.Kind, Origin: origin, Status: re.Status, Detail: re.Reason, Submitted: string(req.Marshal())}
	if v := w.views[origin]; v != nil {
		a.Latest = string(v.note)
	}
	a, err := w.alarms.append(a)
	if err == nil {
		err = w.saveState(w.st.Logs)
	}
	if err != nil {
		w.log.Error("cannot record an alarm", slog.String("origin", origin), slog.String("kind", re.Kind), slog.String("error", err.Error()))
	}
	w.log.Error("ALARM: refused a checkpoint", slog.Uint64("alarm", a.Seq), slog.Int("status", re.Status), slog.String("kind", re.Kind),
		slog.String("origin", origin), slog.String("reason", re.Reason))
	return re
}

func rollbackKey(a Alarm) string {
	r, err := ParseAddRequest([]byte(a.Submitted))
	if err != nil {
		return ""
	}
	sn, err := checkpoint.ParseNote(r.Checkpoint)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%s %d %s", sn.Origin, sn.Size, sn.Root.Base64())
}

// noteText returns a signed note's text: everything before the blank line
// that starts its signatures, with the text's final newline.
func noteText(msg []byte) []byte {
	return msg[:bytes.LastIndex(msg, []byte("\n\n"))+1]
}

// logSigned returns msg with only the signature lines by key.
func logSigned(msg []byte, key note.Verifier) ([]byte, error) {
	n, err := note.Open(msg, note.VerifierList(key))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", checkpoint.ErrMalformed, err)
	}
	out := append([]byte(n.Text), '\n')
	for _, s := range n.Sigs {
		out = fmt.Appendf(out, "— %s %s\n", s.Name, s.Base64)
	}
	return out, nil
}

// Latest returns the latest checkpoint cosigned for origin: the log's
// signed note with this witness's cosignature.
func (w *Witness) Latest(origin string) ([]byte, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	v, ok := w.views[origin]
	if !ok {
		return nil, false
	}
	return bytes.Clone(v.note), true
}

// Origins returns the origins the witness holds a view of, sorted.
func (w *Witness) Origins() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.views))
	for o := range w.views {
		out = append(out, o)
	}
	sort.Strings(out)
	return out
}

// Alarms returns every alarm on record, oldest first.
func (w *Witness) Alarms() []Alarm {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Alarm(nil), w.alarms.list...)
}

// Close releases the directory. Requests after Close are refused.
func (w *Witness) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	err := w.alarms.close()
	if lerr := w.lock.Close(); err == nil {
		err = lerr
	}
	return err
}
