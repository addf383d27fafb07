package engine

// Legal holds (docs/retention.md): a hold by tenant, by receipt-time range,
// or both keeps every segment it touches from being purged. Holds live in
// DATA/holds (layout.WriteHolds: replaced atomically), and setting or
// releasing one is itself an audit record (retention.hold.set,
// retention.hold.release), appended and durable before the file changes.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/layout"
)

// ErrNoHold reports a hold id that is not set.
var ErrNoHold = errors.New("engine: no such legal hold")

// Holds returns the legal holds in force, oldest first.
func (rt *Retainer) Holds() []layout.Hold {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return slices.Clone(rt.holds)
}

// SetHold sets a legal hold: h's TenantID, Since, Until and Reason (at
// least a reason), by the named principal. It appends the
// retention.hold.set record, then makes the hold durable, and returns it
// with its id, time and record seq.
func (rt *Retainer) SetHold(ctx context.Context, h layout.Hold, by string) (layout.Hold, error) {
	h.ID, h.SetBy, h.Seq = "", by, 0
	if err := h.Check(); err != nil {
		return layout.Hold{}, fmt.Errorf("%w: legal hold: %v", vellum.ErrInvalid, err)
	}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return layout.Hold{}, err
	}
	h.ID = "hold-" + hex.EncodeToString(id[:])
	h.SetAt = rt.e.opts.Now().UTC()
	rt.mu.Lock()
	defer rt.mu.Unlock()
	seqs, err := rt.e.Append(ctx, holdRecord(ActionHoldSet, &h, by))
	if err != nil {
		return layout.Hold{}, fmt.Errorf("engine: legal hold: append its record: %w", err)
	}
	h.Seq = seqs[0]
	holds := append(slices.Clone(rt.holds), h)
	if err := layout.WriteHolds(rt.e.opts.FS, rt.e.dir, holds); err != nil {
		return layout.Hold{}, fmt.Errorf("engine: legal hold: %w", err)
	}
	rt.holds = holds
	return h, nil
}

// ReleaseHold releases the legal hold id, by the named principal: it
// appends the retention.hold.release record, then removes the hold from
// the holds file. The next purge may remove what it kept.
func (rt *Retainer) ReleaseHold(ctx context.Context, id, by string) (layout.Hold, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	i := slices.IndexFunc(rt.holds, func(h layout.Hold) bool { return h.ID == id })
	if i < 0 {
		return layout.Hold{}, fmt.Errorf("%w: %q", ErrNoHold, id)
	}
	h := rt.holds[i]
	if _, err := rt.e.Append(ctx, holdRecord(ActionHoldRelease, &h, by)); err != nil {
		return layout.Hold{}, fmt.Errorf("engine: legal hold: append its release record: %w", err)
	}
	holds := slices.Delete(slices.Clone(rt.holds), i, i+1)
	if err := layout.WriteHolds(rt.e.opts.FS, rt.e.dir, holds); err != nil {
		return layout.Hold{}, fmt.Errorf("engine: legal hold: %w", err)
	}
	rt.holds = holds
	return h, nil
}

func holdRecord(action string, h *layout.Hold, by string) vellum.Record {
	a := map[string]string{"retention.hold_id": h.ID, "retention.hold_set_by": h.SetBy}
	if !h.Since.IsZero() {
		a["retention.hold_since"] = h.Since.UTC().Format(time.RFC3339Nano)
	}
	if !h.Until.IsZero() {
		a["retention.hold_until"] = h.Until.UTC().Format(time.RFC3339Nano)
	}
	if h.Seq != 0 {
		a["retention.hold_seq"] = fmt.Sprint(h.Seq)
	}
	return vellum.Record{
		TenantID:   h.TenantID,
		Service:    "vellum",
		UserID:     by,
		Action:     action,
		Outcome:    vellum.Outcome{Status: vellum.StatusSuccess, Reason: h.Reason},
		Attributes: a,
	}
}
