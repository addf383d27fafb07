package engine

// Retention (segment/FORMAT.md, "Retention"; docs/retention.md): whole
// sealed segments are purged from the front of the log once every record in
// them is past the retention period of its tenant, unless a legal hold
// (holds.go) touches them. A purge is made provable first: an anchor record
// (action retention.purge) naming what goes is appended and made durable, a
// checkpoint covering it is signed, and the retention manifest
// (DATA/purged) keeps the compact range of the purged prefix of the
// log-wide tree and the purged segments' ends and roots; only then are the
// files deleted. Recovery finishes a purge a crash interrupted after the
// manifest was written (recovery.go, finishPurge).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/index"
	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/merkle"
	"github.com/vellumlog/vellum/query"
)

// Retention is how long records are kept. The zero value keeps everything.
type Retention struct {
	// MaxAge is how long after its receipt time a record is kept; zero
	// keeps every record.
	MaxAge time.Duration
	// Tenants keeps the records of these tenants longer than MaxAge. A
	// segment is purged only when every record in it is past its tenant's
	// period: with mixed tenants the longest applies.
	Tenants map[string]time.Duration
	// PurgeEvery runs a purge in the background this often; zero purges
	// only on demand (Retainer.Purge, from Engine.Retention).
	PurgeEvery time.Duration
	// HoldTenants are legal holds from configuration: no segment that may
	// hold a record of one of these tenants is purged. (Holds set at run
	// time are Retainer.SetHold's.)
	HoldTenants []string
}

// Enabled reports whether the policy ever purges.
func (r *Retention) Enabled() bool { return r.MaxAge > 0 }

func (r *Retention) check() error {
	switch {
	case r.MaxAge < 0:
		return fmt.Errorf("engine: Retention.MaxAge %s is negative", r.MaxAge)
	case r.PurgeEvery < 0:
		return fmt.Errorf("engine: Retention.PurgeEvery %s is negative", r.PurgeEvery)
	case len(r.Tenants) > 0 && r.MaxAge == 0:
		return errors.New("engine: Retention.Tenants needs Retention.MaxAge: records of other tenants are kept forever otherwise, and a segment's tenants are known only as far as its summaries tell")
	}
	for t, d := range r.Tenants {
		if t == "" {
			return errors.New("engine: Retention.Tenants has an empty tenant id")
		}
		if d < r.MaxAge {
			return fmt.Errorf("engine: Retention.Tenants[%q] %s is shorter than MaxAge %s; tenant periods may only lengthen retention (a segment's records are purged together)", t, d, r.MaxAge)
		}
	}
	return nil
}

// Anchor and hold record actions. Wire constants (other tools look for
// them): do not change.
const (
	ActionPurge       = "retention.purge"
	ActionHoldSet     = "retention.hold.set"
	ActionHoldRelease = "retention.hold.release"
)

// maxPurgeSegments bounds one purge, so its anchor record (a last MAC and a
// Merkle root per segment) stays well under the record size limit.
const maxPurgeSegments = 1000

// PurgeOptions configure one purge.
type PurgeOptions struct {
	// DryRun decides what would go and changes nothing.
	DryRun bool
	// By names who asked (a principal, "schedule", "vellum purge"); it is
	// recorded in the anchor record.
	By string
}

// PurgeSegment is a segment a purge removed, or would remove, and why.
type PurgeSegment struct {
	Segment   uint64    `json:"segment"`
	FirstSeq  uint64    `json:"first_seq"`
	LastSeq   uint64    `json:"last_seq"`
	FirstTime time.Time `json:"first_time,omitzero"`
	LastTime  time.Time `json:"last_time,omitzero"`
	Bytes     int64     `json:"bytes"`
	// Tenants are the tenants with a period of their own whose records the
	// segment may hold (from its span summaries).
	Tenants []string `json:"tenants,omitempty"`
	// ExpiredAt is when its last record passed the longest period that
	// applies; Rule says which.
	ExpiredAt time.Time `json:"expired_at,omitzero"`
	Rule      string    `json:"rule"`
}

// PurgeKept is the first sealed segment a purge keeps, and why; purges
// remove segments from the front only, so it stops there.
type PurgeKept struct {
	Segment   uint64    `json:"segment"`
	Reason    string    `json:"reason"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	Holds     []string  `json:"holds,omitempty"`
}

// PurgeResult says what a purge removed (or, dry, would remove).
type PurgeResult struct {
	DryRun    bool           `json:"dry_run"`
	Segments  []PurgeSegment `json:"segments"`
	Kept      *PurgeKept     `json:"kept,omitempty"`
	AnchorSeq uint64         `json:"anchor_seq,omitempty"`
	Bytes     int64          `json:"bytes"`

	locked time.Duration // how long the index lock (which publish also takes) was held
}

// Retainer owns retention: scheduled and on-demand purges, the
// retention manifest and legal holds (holds.go). Engine.Retention returns
// the engine's. mu serializes purges and hold changes (never held by the
// commit path); holds and purged change only under it. The scheduler runs
// on its own goroutine (start, stop).
type Retainer struct {
	e      *Engine
	mu     sync.Mutex
	holds  []layout.Hold
	purged *layout.Purged
	quit   chan struct{} // closed by stop
	done   chan struct{} // closed when the scheduler has returned
	guard  atomic.Pointer[func() (uint64, string)]
	after  atomic.Pointer[func(*PurgeResult)]
}

// Retention returns the engine's retention: purges and legal holds.
func (e *Engine) Retention() *Retainer { return &e.ret }

// SetPurgeGuard makes purges keep every record after the seq guard
// returns, with the reason it gives: a replica (audit.replicate) that has
// not copied records yet keeps them from being purged under it.
func (rt *Retainer) SetPurgeGuard(guard func() (seq uint64, why string)) {
	rt.guard.Store(&guard)
}

// OnPurge registers fn, called after each purge that removed segments
// (scheduled, admin API or Purge; not a dry run) once its manifest is
// written: the replica (audit.replicate) removes the purged records' rows
// through res.Through(). fn runs while purges are serialized: it must
// return quickly and not call the Retainer. A later call replaces fn.
func (rt *Retainer) OnPurge(fn func(res *PurgeResult)) {
	rt.after.Store(&fn)
}

// Through returns the last seq the purge removed (0 when it removed
// nothing): every record up to it is gone.
func (r *PurgeResult) Through() uint64 {
	if r == nil || r.DryRun || len(r.Segments) == 0 {
		return 0
	}
	return r.Segments[len(r.Segments)-1].LastSeq
}

// start runs scheduled purges (Retention.PurgeEvery) on their own
// goroutine until Close calls stop.
func (rt *Retainer) start() {
	p := &rt.e.opts.Retention
	if !p.Enabled() || p.PurgeEvery <= 0 {
		return
	}
	rt.quit, rt.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(rt.done)
		t := time.NewTicker(p.PurgeEvery)
		defer t.Stop()
		for {
			select {
			case <-rt.quit:
				return
			case <-t.C:
				res, err := rt.Purge(context.Background(), PurgeOptions{By: "schedule"})
				switch {
				case err != nil:
					rt.e.log.Error("scheduled purge failed", slog.String("error", err.Error()))
				case len(res.Segments) > 0:
					rt.e.log.Info("scheduled purge", slog.Int("segments", len(res.Segments)), slog.Int64("bytes", res.Bytes), slog.Uint64("anchor_seq", res.AnchorSeq))
				}
			}
		}
	}()
}

func (rt *Retainer) stop() {
	if rt.quit != nil {
		close(rt.quit)
		<-rt.done
	}
}

// Purged returns the retention manifest: what purges removed (nil when
// nothing was).
func (rt *Retainer) Purged() *layout.Purged {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.purged
}

// Purge removes the sealed segments at the front of the log whose records
// are all past their retention and that no legal hold touches (see the
// file comment for the order of steps). The active segment is never
// purged. With DryRun it only says what would go.
func (rt *Retainer) Purge(ctx context.Context, o PurgeOptions) (*PurgeResult, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if err := rt.e.Err(); err != nil {
		return nil, err
	}
	now := rt.e.opts.Now()
	res, gone := rt.plan(now)
	res.DryRun = o.DryRun
	if o.DryRun || len(gone) == 0 {
		return res, nil
	}
	by := o.By
	if by == "" {
		by = "unknown"
	}
	res, err := rt.apply(ctx, res, gone, by, now)
	if res != nil { // the manifest is written: the purge is decided
		if fn := rt.after.Load(); fn != nil {
			(*fn)(res)
		}
	}
	return res, err
}

// plan picks the sealed segments at the front of the log that a purge at
// now removes, and says what keeps the first one that stays.
func (rt *Retainer) plan(now time.Time) (*PurgeResult, []*segInfo) {
	snap := rt.e.index.snapshot()
	res := &PurgeResult{Segments: []PurgeSegment{}}
	var gone []*segInfo
	guard, guardWhy := uint64(1<<64-1), ""
	if g := rt.guard.Load(); g != nil {
		guard, guardWhy = (*g)()
	}
	for _, si := range snap.sealed {
		if lastSeqOf(si) > guard {
			res.Kept = &PurgeKept{Segment: si.num, Reason: fmt.Sprintf("%s (up to seq %d; the segment ends at seq %d)", guardWhy, guard, lastSeqOf(si))}
			break
		}
		ps, kept := rt.expiry(si, now)
		if kept != nil {
			res.Kept = kept
			break
		}
		if len(gone) == maxPurgeSegments {
			res.Kept = &PurgeKept{Segment: si.num, Reason: fmt.Sprintf("one purge removes at most %d segments; the next run goes on", maxPurgeSegments)}
			break
		}
		res.Segments = append(res.Segments, ps)
		res.Bytes += ps.Bytes
		gone = append(gone, si)
	}
	if res.Kept == nil && snap.active != nil {
		res.Kept = &PurgeKept{Segment: snap.active.seg.num, Reason: "the active segment is never purged (it is sealed by size or audit.segment_max_age first)"}
	}
	return res, gone
}

// apply carries out a planned purge of gone, in the crash-safe order of
// the file comment: anchor record and checkpoint, manifest, then readers
// and files. An error before the manifest is written leaves everything in
// place; an error removing the files returns res too (the manifest names
// them, and the next Open removes them).
func (rt *Retainer) apply(ctx context.Context, res *PurgeResult, gone []*segInfo, by string, now time.Time) (*PurgeResult, error) {
	last := gone[len(gone)-1]
	sec, err := rt.e.tree.sectionOf(last)
	if err != nil {
		return nil, err
	}
	if sec == nil {
		return nil, fmt.Errorf("engine: purge: %s has no Merkle section (sealed by an older build), so later proofs could not survive its removal; nothing purged", last.path)
	}

	// 1. The anchor record, durable, and a checkpoint that covers it.
	seqs, err := rt.appendSystem(ctx, anchorRecord(res.Segments, gone, by))
	if err != nil {
		return nil, fmt.Errorf("engine: purge: append the anchor record: %w", err)
	}
	res.AnchorSeq = seqs[0]
	if rt.e.opts.Signer != nil {
		if _, err := rt.e.SignCheckpoint(ctx); err != nil {
			return nil, fmt.Errorf("engine: purge: sign the checkpoint that covers the anchor record: %w", err)
		}
	}

	// 2. The manifest: from here on the purge is decided, and recovery
	// finishes it.
	m := &layout.Purged{Format: layout.PurgedFormat}
	if old := rt.purged; old != nil {
		m.Purges = slices.Clone(old.Purges)
	}
	pg := layout.Purge{AnchorSeq: res.AnchorSeq, Time: now.UTC()}
	for i, ps := range res.Segments {
		si := gone[i]
		end := layout.SealedEnd(&si.hdr, si.footer)
		pg.Segments = append(pg.Segments, layout.PurgedSegment{
			Number: ps.Segment, FirstSeq: si.hdr.FirstSeq, LastSeq: end.LastSeq, FirstTime: ps.FirstTime, LastTime: ps.LastTime,
			LastMAC: end.LastMAC, MerkleRoot: layout.Hash(si.footer.MerkleRoot), Tenants: ps.Tenants, Rule: ps.Rule,
		})
	}
	m.Purges = append(m.Purges, pg)
	lastEnd := layout.SealedEnd(&last.hdr, last.footer)
	m.Through, m.LastSeq, m.LastMAC = last.num, lastEnd.LastSeq, lastEnd.LastMAC
	for _, h := range sec.Range {
		m.Range = append(m.Range, layout.Hash(h))
	}
	if err := layout.WritePurged(rt.e.opts.FS, rt.e.dir, m); err != nil {
		return nil, fmt.Errorf("engine: purge: %w", err)
	}
	rt.purged = m

	// 3. Readers stop seeing them (the only step under the index lock),
	// then the files go.
	prefix, err := merkle.RangeFrom(0, sec.Size, sec.Range)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, last.path, err)
	}
	rt.e.tree.prune(prefix, gone)
	t := time.Now()
	rt.e.index.dropSealed(len(gone), lastEnd.LastSeq)
	res.locked = time.Since(t)
	for _, si := range gone {
		rt.e.index.cache.Forget(si.post)
	}
	if err := removeSegments(rt.e.opts.FS, rt.e.dir, gone); err != nil {
		return res, fmt.Errorf("engine: purge: %w (the manifest names them; the next Open removes them)", err)
	}
	rt.e.log.Info("purged expired segments", slog.Uint64("first_segment", gone[0].num), slog.Uint64("last_segment", last.num),
		slog.Uint64("last_seq", lastEnd.LastSeq), slog.Uint64("anchor_seq", res.AnchorSeq), slog.Int64("bytes", res.Bytes), slog.String("by", by), slog.Duration("index_step", res.locked))
	return res, nil
}

// removeSegments closes and deletes purged segment files, then makes the
// deletions durable.
func removeSegments(fs interface {
	Remove(string) error
	SyncDir(string) error
}, dir string, gone []*segInfo) error {
	for _, si := range gone {
		si.markPurged() // closes its reader; never opened again (files.go)
		if err := fs.Remove(si.path); err != nil {
			return fmt.Errorf("remove %s: %w", si.path, err)
		}
	}
	return fs.SyncDir(layout.SegmentsPath(dir))
}

// expiry decides whether sealed segment si has expired at now: it returns
// what a purge would record of it, or why it is kept.
func (rt *Retainer) expiry(si *segInfo, now time.Time) (PurgeSegment, *PurgeKept) {
	p := &rt.e.opts.Retention
	ft := si.footer
	ps := PurgeSegment{Segment: si.num, FirstSeq: si.hdr.FirstSeq, LastSeq: lastSeqOf(si), Bytes: ft.Offset}
	if fi, err := rt.e.opts.FS.Stat(si.path); err == nil {
		ps.Bytes = fi.Size()
	}
	if !p.Enabled() {
		return ps, &PurgeKept{Segment: si.num, Reason: "no retention period is configured (audit.retention.max_age)"}
	}
	if ft.Count == 0 {
		ps.Rule = "empty segment"
		return ps, rt.held(si, ps)
	}
	ps.FirstTime, ps.LastTime = time.Unix(0, ft.FirstTime).UTC(), time.Unix(0, ft.LastTime).UTC()
	sums := spanSummaries(si)
	// The newest record a tenant's period applies to: per span, the
	// span's last time, for every tenant its summary may hold.
	expires := time.Unix(0, ft.LastTime).Add(p.MaxAge)
	rule := "audit.retention.max_age " + p.MaxAge.String()
	tenants := slices.Sorted(maps.Keys(p.Tenants))
	for _, t := range tenants {
		q := query.Query{TenantID: t}
		var newest int64
		found := false
		for i, sp := range ft.Spans {
			if sums == nil || sums[i].MayMatch(&q) {
				newest, found = sp.LastTime, true
			}
		}
		if !found {
			continue
		}
		ps.Tenants = append(ps.Tenants, t)
		if at := time.Unix(0, newest).Add(p.Tenants[t]); at.After(expires) {
			expires, rule = at, fmt.Sprintf("audit.retention.tenants.%s %s", t, p.Tenants[t])
		}
	}
	if !now.After(expires) {
		return ps, &PurgeKept{Segment: si.num, ExpiresAt: expires.UTC(), Reason: fmt.Sprintf("not expired: its newest record passes %s at %s", rule, expires.UTC().Format(time.RFC3339Nano))}
	}
	ps.ExpiredAt, ps.Rule = expires.UTC(), rule
	return ps, rt.held(si, ps)
}

// held returns why a legal hold keeps si, or nil.
func (rt *Retainer) held(si *segInfo, ps PurgeSegment) *PurgeKept {
	holds := rt.holds
	for _, t := range rt.e.opts.Retention.HoldTenants {
		holds = append(holds[:len(holds):len(holds)], layout.Hold{ID: "config:" + t, TenantID: t})
	}
	if len(holds) == 0 {
		return nil
	}
	sums := spanSummaries(si)
	var ids []string
	for i := range holds {
		h := &holds[i]
		touches := false
		for j, sp := range si.footer.Spans {
			if h.Touches(sp.FirstTime, sp.LastTime, func(t string) bool {
				return sums == nil || sums[j].MayMatch(&query.Query{TenantID: t})
			}) {
				touches = true
				break
			}
		}
		if len(si.footer.Spans) == 0 && h.TenantID == "" && h.Since.IsZero() && h.Until.IsZero() {
			touches = true // a hold on everything holds empty segments too
		}
		if touches {
			ids = append(ids, h.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	return &PurgeKept{Segment: si.num, Holds: ids, Reason: fmt.Sprintf("expired (%s) but under legal hold %s", ps.Rule, strings.Join(ids, ", "))}
}

// spanSummaries returns a sealed segment's span summaries, or nil when its
// footer has none usable (then every tenant may be in every span).
func spanSummaries(si *segInfo) []index.Summary { return si.sums }

// anchorRecord is the retention.purge record: what goes, by whom.
func anchorRecord(segs []PurgeSegment, infos []*segInfo, by string) vellum.Record {
	first, last := segs[0], segs[len(segs)-1]
	a := map[string]string{
		"retention.segments":   fmt.Sprintf("%d-%d", first.Segment, last.Segment),
		"retention.first_seq":  strconv.FormatUint(first.FirstSeq, 10),
		"retention.last_seq":   strconv.FormatUint(last.LastSeq, 10),
		"retention.first_time": timeText(first.FirstTime),
		"retention.last_time":  timeText(last.LastTime),
	}
	var rules, macs, roots []string
	for i, s := range segs {
		rules = append(rules, fmt.Sprintf("%d:%s", s.Segment, s.Rule))
		macs = append(macs, fmt.Sprintf("%d:%s", s.Segment, layout.SealedEnd(&infos[i].hdr, infos[i].footer).LastMAC))
		roots = append(roots, fmt.Sprintf("%d:%x", s.Segment, infos[i].footer.MerkleRoot))
	}
	a["retention.rules"] = strings.Join(rules, "; ")
	a["retention.last_macs"] = strings.Join(macs, ",")
	a["retention.merkle_roots"] = strings.Join(roots, ",")
	return vellum.Record{
		Service:    "vellum",
		UserID:     by,
		Action:     ActionPurge,
		Outcome:    vellum.Outcome{Status: vellum.StatusSuccess, Reason: fmt.Sprintf("purge segments %d-%d (seq %d-%d): retention expired", first.Segment, last.Segment, first.FirstSeq, last.LastSeq)},
		Attributes: a,
	}
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// appendSystem appends a record the engine writes itself (a purge's
// anchor), without the Redactor: its attributes are hex MACs and roots that
// verify compares with the manifest byte for byte, and a detector that
// took one for an address or a secret would break that.
func (rt *Retainer) appendSystem(ctx context.Context, r vellum.Record) ([]uint64, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if n := r.EncodedSize(); n > rt.e.opts.MaxRecordSize {
		return nil, fmt.Errorf("%w: the anchor record is %d bytes encoded, over the maximum of %d", ErrTooLarge, n, rt.e.opts.MaxRecordSize)
	}
	enc, err := r.AppendBinary(nil)
	if err != nil {
		return nil, err
	}
	p := newPrepared(1, len(enc))
	p.items[0] = item{enc: enc, keys: keysOf(&r)}
	return rt.e.AppendPrepared(ctx, p)
}
