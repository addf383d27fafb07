package layout

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/vellumlog/vellum/vfs"
)

// HoldsName is the legal-hold file in a data directory (segment/FORMAT.md,
// "Retention"). Wire constant: do not change.
const HoldsName = "holds"

// HoldsFormat is the format number of the holds file. Wire constant.
const HoldsFormat = 1

// Hold is a legal hold: while it is in the holds file no segment that may
// hold a record of its tenant (every tenant when empty) received in
// [Since, Until) (unbounded where zero) is purged.
type Hold struct {
	ID       string    `json:"id"`
	TenantID string    `json:"tenant_id,omitempty"`
	Since    time.Time `json:"since,omitzero"`
	Until    time.Time `json:"until,omitzero"`
	Reason   string    `json:"reason"`
	SetBy    string    `json:"set_by"`
	SetAt    time.Time `json:"set_at"`
	// Seq is the retention.hold.set record that set it.
	Seq uint64 `json:"seq"`
}

// Check reports what is wrong with a hold's fields, naming the field.
func (h *Hold) Check() error {
	switch {
	case h.Reason == "":
		return errors.New("reason is empty: a hold says why it is set")
	case len(h.Reason) > 4096:
		return errors.New("reason is longer than 4096 bytes")
	case len(h.TenantID) > 1024:
		return errors.New("tenant_id is longer than 1024 bytes")
	case !h.Since.IsZero() && !h.Until.IsZero() && !h.Since.Before(h.Until):
		return fmt.Errorf("since %s is not before until %s", h.Since.Format(time.RFC3339Nano), h.Until.Format(time.RFC3339Nano))
	}
	return nil
}

// Touches reports whether the hold covers records received between first
// and last (Unix ns, inclusive) that may belong to tenant test says.
func (h *Hold) Touches(first, last int64, mayHoldTenant func(string) bool) bool {
	if !h.Since.IsZero() && last < h.Since.UnixNano() {
		return false
	}
	if !h.Until.IsZero() && first >= h.Until.UnixNano() {
		return false
	}
	return h.TenantID == "" || mayHoldTenant(h.TenantID)
}

type holdsFile struct {
	Format int    `json:"format"`
	Holds  []Hold `json:"holds"`
}

// ReadHolds returns the holds in dir's holds file (none when it does not
// exist). A malformed file wraps ErrCorrupt. fs nil means vfs.Default.
func ReadHolds(fs vfs.FS, dir string) ([]Hold, error) {
	if fs == nil {
		fs = vfs.Default
	}
	path := filepath.Join(dir, HoldsName)
	b, err := vfs.ReadFile(fs, path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("layout: read %s: %w", path, err)
	}
	return ParseHolds(b)
}

// ParseHolds parses and checks a holds file.
func ParseHolds(b []byte) ([]Hold, error) {
	var f holdsFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, HoldsName, err)
	}
	if f.Format != HoldsFormat {
		return nil, fmt.Errorf("%w: %s: format %d, this build reads %d", ErrCorrupt, HoldsName, f.Format, HoldsFormat)
	}
	seen := map[string]bool{}
	for i := range f.Holds {
		h := &f.Holds[i]
		if h.ID == "" || seen[h.ID] {
			return nil, fmt.Errorf("%w: %s: hold %d has an empty or repeated id %q", ErrCorrupt, HoldsName, i, h.ID)
		}
		seen[h.ID] = true
		if err := h.Check(); err != nil {
			return nil, fmt.Errorf("%w: %s: hold %s: %v", ErrCorrupt, HoldsName, h.ID, err)
		}
	}
	return f.Holds, nil
}

// WriteHolds replaces dir's holds file atomically (temporary file, fsync,
// rename, fsync of dir).
func WriteHolds(fs vfs.FS, dir string, holds []Hold) error {
	if holds == nil {
		holds = []Hold{}
	}
	b, err := json.MarshalIndent(holdsFile{Format: HoldsFormat, Holds: holds}, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, HoldsName)
	if err := vfs.WriteFileAtomic(fs, dir, path, append(b, '\n')); err != nil {
		return fmt.Errorf("layout: write %s: %w", path, err)
	}
	return nil
}
