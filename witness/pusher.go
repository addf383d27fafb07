package witness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/cosign"
	"github.com/vellumlog/vellum/merkle"
	"github.com/vellumlog/vellum/vfs"
)

// Defaults of PusherOptions.
const (
	DefaultRetryMin = time.Second
	DefaultRetryMax = time.Minute
	// requestTimeout bounds one add-checkpoint request.
	requestTimeout = 30 * time.Second
	// maxConflicts is how many 409 answers in a row that only correct the
	// old size the pusher follows before it treats the witness as refusing.
	maxConflicts = 3
)

// Target is a witness a store pushes its checkpoints to: the witness's URL
// (submission prefix) and its cosignature key.
type Target struct {
	URL string
	Key *cosign.Verifier
}

// Prover builds consistency proofs between two sizes of the store's tree
// (*engine.Engine implements it).
type Prover interface {
	ConsistencyProof(ctx context.Context, size1, size2 uint64) (*merkle.ConsistencyProof, error)
}

// PusherOptions configure a Pusher. Targets is required.
type PusherOptions struct {
	Targets []Target
	// Quorum is how many witnesses must cosign a checkpoint before it is
	// saved and served as the cosigned checkpoint; all of them when zero.
	Quorum int
	// FS is the file system of the data directory; vfs.Default when nil.
	FS vfs.FS
	// HTTP is the client; one with a 30 s timeout when nil.
	HTTP *http.Client
	// RetryMin and RetryMax bound the exponential backoff after a failed
	// or refused push (defaults 1 s and 1 min).
	RetryMin, RetryMax time.Duration
	// Logger receives a line per cosignature and per refusal (refusals at
	// error level); nil discards.
	Logger *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Witness states in Status.
const (
	StateOK          = "ok"          // the witness cosigned the latest checkpoint pushed
	StatePending     = "pending"     // nothing pushed yet, or a push is under way
	StateRefused     = "refused"     // the witness refused the store's checkpoint: an alarm
	StateUnreachable = "unreachable" // the witness did not answer, or answered 5xx
)

// Status is what the store knows of one witness.
type Status struct {
	Witness string `json:"witness"`
	URL     string `json:"url"`
	State   string `json:"state"`
	// CosignedSize is the size of the latest checkpoint the witness
	// cosigned for this store, as far as the store knows.
	CosignedSize uint64 `json:"cosigned_size"`
	// Kind is the refusal's kind (rollback, fork, inconsistent,
	// signature, unknown-log, malformed) when State is refused.
	Kind   string    `json:"kind,omitempty"`
	Detail string    `json:"detail,omitempty"`
	Since  time.Time `json:"since,omitzero"`
}

// Pusher sends a store's checkpoints to its witnesses as the store signs
// them, one goroutine per witness, with retries and exponential backoff,
// and keeps the newest checkpoint a quorum cosigned in the data directory
// (cosign.CheckpointFile). Notify never blocks, so ingest never waits for
// a witness. A refusal is an alarm: logged at error level and reported by
// Status until the witness cosigns again. It is safe for concurrent use.
type Pusher struct {
	dir     string
	fs      vfs.FS
	quorum  int
	min     time.Duration
	max     time.Duration
	log     *slog.Logger
	now     func() time.Time
	targets []*target
	prover  Prover

	latest  atomic.Pointer[checkpoint.Signed]
	proof   atomic.Pointer[merkle.ConsistencyProof] // from the checkpoint before latest, when Notify had one
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started bool

	mu         sync.Mutex
	pending    map[uint64]*pendingCP
	saved      *checkpoint.Signed
	savedCount int
}

type target struct {
	Target
	idx    int
	id     string
	client *Client
	wake   chan struct{}

	// Owned by the target's goroutine.
	known     bool // size holds the witness's latest cosigned size
	size      uint64
	root      merkle.Hash
	rootKnown bool
	conflicts int

	mu     sync.Mutex
	status Status
}

type pendingCP struct {
	cp    checkpoint.Signed
	lines map[int][]byte
}

var errAgain = errors.New("witness: push again with the witness's size")

// NewPusher makes a pusher for the store in dir. It reads the cosigned
// checkpoint saved there, which tells it what each witness last cosigned.
func NewPusher(dir string, opts *PusherOptions) (*Pusher, error) {
	if opts == nil || len(opts.Targets) == 0 {
		return nil, errors.New("witness: a pusher needs at least one witness")
	}
	o := *opts
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: requestTimeout}
	}
	if o.RetryMax <= 0 {
		o.RetryMax = DefaultRetryMax
	}
	if o.RetryMin <= 0 {
		o.RetryMin = min(DefaultRetryMin, o.RetryMax)
	}
	o.RetryMax = max(o.RetryMax, o.RetryMin)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Quorum == 0 {
		o.Quorum = len(o.Targets)
	}
	if o.Quorum < 1 || o.Quorum > len(o.Targets) {
		return nil, fmt.Errorf("witness: quorum %d is not between 1 and the %d witnesses", o.Quorum, len(o.Targets))
	}
	p := &Pusher{dir: dir, fs: o.FS, quorum: o.Quorum, min: o.RetryMin, max: o.RetryMax, now: o.Now,
		log: o.Logger.With(slog.String("component", "witness-pusher")), pending: map[uint64]*pendingCP{}}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	seen := map[string]bool{}
	for i, t := range o.Targets {
		if t.URL == "" || t.Key == nil {
			return nil, fmt.Errorf("witness: witness %d needs a URL and a key", i+1)
		}
		if seen[t.Key.ID()] {
			return nil, fmt.Errorf("witness: witness key %s is listed twice", t.Key.ID())
		}
		seen[t.Key.ID()] = true
		tg := &target{Target: t, idx: i, id: t.Key.ID(), client: &Client{URL: t.URL, HTTP: o.HTTP}, wake: make(chan struct{}, 1)}
		tg.status = Status{Witness: tg.id, URL: t.URL, State: StatePending}
		p.targets = append(p.targets, tg)
	}
	p.loadSaved()
	return p, nil
}

// loadSaved reads the saved cosigned checkpoint: the store serves it until
// a newer one is cosigned, and each witness's cosignature on it tells the
// old size of the next push.
func (p *Pusher) loadSaved() {
	path := filepath.Join(p.dir, cosign.CheckpointFile)
	if _, err := p.fs.Stat(path); err != nil {
		return
	}
	msg, err := vfs.ReadFile(p.fs, path)
	if err == nil {
		var sn checkpoint.Signed
		if sn, err = checkpoint.ParseNote(msg); err == nil {
			n := 0
			for _, t := range p.targets {
				if _, ok, ferr := cosign.Find(msg, t.Key); ok && ferr == nil {
					t.known, t.size, t.root, t.rootKnown = true, sn.Size, sn.Root, true
					t.status.CosignedSize = sn.Size
					n++
				}
			}
			p.saved, p.savedCount = &sn, n
			return
		}
	}
	p.log.Warn("ignoring an unreadable cosigned checkpoint; the next cosigned checkpoint replaces it", slog.String("path", path), slog.String("error", err.Error()))
}

// Start starts pushing, first latest (the store's latest checkpoint when
// it opened, or nil), then whatever Notify hands in. prover builds the
// consistency proofs.
func (p *Pusher) Start(prover Prover, latest *checkpoint.Signed) {
	if p == nil || p.started {
		return
	}
	p.started = true
	p.prover = prover
	if latest != nil && p.latest.Load() == nil {
		p.latest.Store(latest)
	}
	for _, t := range p.targets {
		// Push once even if the saved file says the witness has the
		// latest checkpoint: a store restored from an earlier copy has an
		// earlier file too, and only the witness knows better.
		t.rootKnown = false
		p.wg.Add(1)
		go p.run(t)
	}
}

// Notify hands the pusher a newly signed checkpoint and, when the caller
// has it, the consistency proof from the previous one (a witness that
// cosigned that one needs no other, so the pusher does not rebuild it).
// It never blocks; a witness busy with an older checkpoint gets the newest
// when it is done. Use it as engine.Options.OnCheckpoint. Safe on a nil
// Pusher.
func (p *Pusher) Notify(s checkpoint.Signed, proof *merkle.ConsistencyProof) {
	if p == nil {
		return
	}
	p.proof.Store(proof)
	p.latest.Store(&s)
	for _, t := range p.targets {
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
}

// Close stops pushing and waits for the goroutines. A push under way is
// abandoned.
func (p *Pusher) Close() {
	if p == nil {
		return
	}
	p.cancel()
	p.wg.Wait()
}

// LatestCosigned returns the newest checkpoint cosigned by a quorum of the
// witnesses: the store's signed note with their signature lines.
func (p *Pusher) LatestCosigned() (checkpoint.Signed, bool) {
	if p == nil {
		return checkpoint.Signed{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.saved == nil {
		return checkpoint.Signed{}, false
	}
	return *p.saved, true
}

// Quorum returns how many witnesses must cosign a checkpoint.
func (p *Pusher) Quorum() int { return p.quorum }

// WitnessStatus returns what the store knows of each witness, in
// configuration order.
func (p *Pusher) WitnessStatus() []Status {
	if p == nil {
		return nil
	}
	out := make([]Status, len(p.targets))
	for i, t := range p.targets {
		t.mu.Lock()
		out[i] = t.status
		t.mu.Unlock()
	}
	return out
}

// Alarms returns one sentence per witness that refuses the store's
// checkpoints.
func (p *Pusher) Alarms() []string {
	var out []string
	for _, s := range p.WitnessStatus() {
		if s.State == StateRefused {
			out = append(out, fmt.Sprintf("witness %s (%s) refuses this store's checkpoints since %s: %s", s.Witness, s.URL, s.Since.Format(time.RFC3339), s.Detail))
		}
	}
	return out
}

func (p *Pusher) run(t *target) {
	defer p.wg.Done()
	var delay time.Duration
	for {
		if delay > 0 {
			tm := time.NewTimer(delay)
			select {
			case <-p.ctx.Done():
				tm.Stop()
				return
			case <-tm.C:
			}
		}
		cp := p.latest.Load()
		if cp == nil || (t.known && t.rootKnown && t.size == cp.Size && t.root == cp.Root) {
			select {
			case <-p.ctx.Done():
				return
			case <-t.wake:
			}
			delay = 0
			continue
		}
		err := p.push(t, cp)
		switch {
		case err == nil:
			delay, t.conflicts = 0, 0
		case errors.Is(err, errAgain) && t.conflicts < maxConflicts:
			t.conflicts++
			delay = 0
		default:
			t.conflicts = 0
			if delay == 0 {
				delay = p.min
			} else {
				delay = min(2*delay, p.max)
			}
		}
		if p.ctx.Err() != nil {
			return
		}
	}
}

// push sends cp to t once.
func (p *Pusher) push(t *target, cp *checkpoint.Signed) error {
	ctx, cancel := context.WithTimeout(p.ctx, requestTimeout)
	defer cancel()
	req := &AddRequest{Checkpoint: cp.Note}
	if t.known && t.size <= cp.Size {
		req.OldSize = t.size
		if pr := p.proof.Load(); t.size > 0 && t.size < cp.Size && pr != nil && pr.Size1 == t.size && pr.Size2 == cp.Size {
			req.Proof = pr.Hashes
		} else if t.size > 0 && t.size < cp.Size {
			pr, err := p.prover.ConsistencyProof(ctx, t.size, cp.Size)
			if err != nil {
				if ctx.Err() == nil {
					p.log.Warn("cannot build a consistency proof for a witness", slog.String("witness", t.id), slog.Uint64("from", t.size),
						slog.Uint64("to", cp.Size), slog.String("error", err.Error()))
				}
				return err
			}
			req.Proof = pr.Hashes
		}
	}
	lines, err := t.client.AddCheckpoint(ctx, req)
	if err == nil {
		return p.cosigned(t, cp, lines)
	}
	if p.ctx.Err() != nil {
		return err
	}
	var se *StatusError
	if !errors.As(err, &se) {
		p.unreachable(t, err.Error())
		return err
	}
	origin := cp.Origin
	switch se.Status {
	case http.StatusConflict:
		n := se.Size
		switch {
		case n > cp.Size:
			t.known, t.size, t.rootKnown = true, n, false
			p.refused(t, KindRollback, fmt.Sprintf("the witness has cosigned a checkpoint of %d records, this store's latest has %d: the store was rolled back to an earlier copy, or another store signs checkpoints with this key", n, cp.Size))
			p.keepConflict(ctx, t, origin)
		case t.known && n == req.OldSize:
			p.refused(t, KindFork, fmt.Sprintf("the witness has cosigned another checkpoint of %d records: this store's history differs from what the witness saw (forked or rewritten)", n))
			p.keepConflict(ctx, t, origin)
		default:
			t.known, t.size, t.rootKnown = true, n, false
			return errAgain
		}
	case http.StatusUnprocessableEntity:
		p.refused(t, KindInconsistent, fmt.Sprintf("the witness refused the consistency proof from its cosigned checkpoint of %d records to this store's of %d: this store's history differs from what the witness cosigned (rolled back, rewritten or forked)", req.OldSize, cp.Size))
		p.keepConflict(ctx, t, origin)
	case http.StatusForbidden:
		p.refused(t, KindSignature, fmt.Sprintf("the witness does not accept this store's checkpoint signature: it holds another key for origin %q (%s)", origin, se.Body))
	case http.StatusNotFound:
		p.refused(t, KindUnknownLog, fmt.Sprintf("the witness does not watch origin %q; add it there (vellum witness --log %s=<this store's signing.pub>)", origin, origin))
	case http.StatusBadRequest:
		p.refused(t, KindMalformed, "the witness rejected the request: "+se.Body)
	default:
		p.unreachable(t, se.Error())
	}
	return err
}

// cosigned checks a 200 answer and records the cosignature.
func (p *Pusher) cosigned(t *target, cp *checkpoint.Signed, answer []byte) error {
	lines, err := cosign.ParseLines(answer)
	var c cosign.Cosignature
	ok := false
	if err == nil {
		c, ok, err = cosign.Find(cosign.Append(cp.Note, lines...), t.Key)
	}
	if err != nil || !ok {
		p.refused(t, KindSignature, fmt.Sprintf("the witness answered without a valid cosignature by %s (is that its key?)", t.id))
		return fmt.Errorf("witness: no valid cosignature by %s", t.id)
	}
	t.known, t.size, t.root, t.rootKnown = true, cp.Size, cp.Root, true
	t.mu.Lock()
	was := t.status.State
	t.status = Status{Witness: t.id, URL: t.URL, State: StateOK, CosignedSize: cp.Size, Since: p.now().UTC()}
	t.mu.Unlock()
	if was == StateRefused {
		p.log.Warn("the witness cosigns this store's checkpoints again", slog.String("witness", t.id), slog.Uint64("size", cp.Size))
	}
	p.log.Debug("cosigned", slog.String("witness", t.id), slog.Uint64("size", cp.Size))
	p.collect(t, cp, []byte(c.Line))
	return nil
}

func (p *Pusher) refused(t *target, kind, detail string) {
	t.mu.Lock()
	if t.status.State != StateRefused || t.status.Kind != kind {
		t.status.Since = p.now().UTC()
	}
	t.status.State, t.status.Kind, t.status.Detail = StateRefused, kind, detail
	t.status.CosignedSize = t.size
	t.mu.Unlock()
	p.log.Error("ALARM: a witness refused this store's checkpoint", slog.String("witness", t.id), slog.String("url", t.URL),
		slog.String("kind", kind), slog.String("detail", detail))
}

func (p *Pusher) unreachable(t *target, detail string) {
	t.mu.Lock()
	if t.status.State != StateUnreachable {
		t.status.Since = p.now().UTC()
	}
	t.status.State, t.status.Kind, t.status.Detail = StateUnreachable, "", detail
	t.mu.Unlock()
	p.log.Warn("a witness did not answer; retrying with backoff", slog.String("witness", t.id), slog.String("url", t.URL), slog.String("error", detail))
}

// keepConflict fetches the witness's cosigned checkpoint that the store
// does not extend and keeps it in the data directory as evidence
// (cosign.ConflictPrefix), where `vellum verify --witness` finds it. It
// is best effort: a witness without the monitoring endpoint is skipped.
func (p *Pusher) keepConflict(ctx context.Context, t *target, origin string) {
	msg, err := t.client.Latest(ctx, origin)
	if err != nil {
		p.log.Debug("cannot fetch the witness's cosigned checkpoint", slog.String("witness", t.id), slog.String("error", err.Error()))
		return
	}
	sn, err := checkpoint.ParseNote(msg)
	if err != nil || sn.Origin != origin {
		return
	}
	if _, ok, err := cosign.Find(msg, t.Key); !ok || err != nil {
		return
	}
	name := filepath.Join(p.dir, fmt.Sprintf("%s%08x", cosign.ConflictPrefix, t.Key.KeyHash()))
	if old, err := vfs.ReadFile(p.fs, name); err == nil && bytes.Equal(old, msg) {
		return
	}
	if err := vfs.WriteFileAtomic(p.fs, p.dir, name, msg); err != nil {
		p.log.Error("cannot keep the witness's conflicting checkpoint", slog.String("path", name), slog.String("error", err.Error()))
		return
	}
	p.log.Error("kept the witness's cosigned checkpoint this store does not extend", slog.String("witness", t.id), slog.String("path", name), slog.Uint64("size", sn.Size))
}

// collect adds t's cosignature line for cp and saves cp once a quorum
// cosigned it (and it is newer than what is saved, or has more
// cosignatures).
func (p *Pusher) collect(t *target, cp *checkpoint.Signed, line []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pd := p.pending[cp.Size]
	if pd == nil || pd.cp.Root != cp.Root {
		pd = &pendingCP{cp: *cp, lines: map[int][]byte{}}
		p.pending[cp.Size] = pd
	}
	pd.lines[t.idx] = line
	n := len(pd.lines)
	newer := p.saved == nil || cp.Size > p.saved.Size || (cp.Size == p.saved.Size && cp.Root == p.saved.Root && n > p.savedCount)
	if n >= p.quorum && newer {
		var lines [][]byte
		for i := range p.targets {
			if l, ok := pd.lines[i]; ok {
				lines = append(lines, l)
			}
		}
		msg := cosign.Append(cp.Note, lines...)
		path := filepath.Join(p.dir, cosign.CheckpointFile)
		if err := vfs.WriteFileAtomic(p.fs, p.dir, path, msg); err != nil {
			p.log.Error("cannot save the cosigned checkpoint", slog.String("path", path), slog.String("error", err.Error()))
		} else {
			p.saved = &checkpoint.Signed{Checkpoint: cp.Checkpoint, Note: msg}
			p.savedCount = n
			p.log.Info("checkpoint cosigned by a quorum of witnesses", slog.Uint64("size", cp.Size), slog.Int("cosignatures", n), slog.Int("quorum", p.quorum))
		}
	}
	for size := range p.pending {
		if p.saved != nil && size < p.saved.Size {
			delete(p.pending, size)
		}
	}
	if len(p.pending) > 64 { // witnesses far apart: keep the newest
		for size := range p.pending {
			if size < cp.Size {
				delete(p.pending, size)
			}
		}
	}
}
