package layout

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/vfs"
)

// PurgedName is the retention manifest in a data directory
// (segment/FORMAT.md, "Retention"): what purges removed and what later
// proofs need of it. Wire constant: do not change.
const PurgedName = "purged"

// PurgedFormat is the format number of the manifest. Wire constant.
const PurgedFormat = 1

// Hash is a 32-byte Merkle hash; its JSON form is lower-case hex.
type Hash [32]byte

// MarshalText encodes h as lower-case hex.
func (h Hash) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h[:])), nil }

// UnmarshalText decodes 64 hex characters.
func (h *Hash) UnmarshalText(b []byte) error {
	if len(b) != 64 {
		return fmt.Errorf("hash must be 64 hex characters, got %d", len(b))
	}
	_, err := hex.Decode(h[:], b)
	return err
}

// Purged is the content of DATA/purged: every segment numbered up to
// Through was removed by a retention purge. It is replaced atomically, and
// only after the purge's anchor record is durable, before any segment file
// is deleted; recovery deletes what a crash left of the segments it names.
type Purged struct {
	Format int `json:"format"`
	// Through is the last purged segment: the store starts at Through+1.
	Through uint64 `json:"through_segment"`
	// LastSeq is the last purged record (the log-wide tree's purged
	// prefix has this many leaves); LastMAC is its chain MAC, which the
	// next segment's header must carry as its prev MAC.
	LastSeq uint64     `json:"last_seq"`
	LastMAC vellum.MAC `json:"last_mac"`
	// Range is the compact range [0, LastSeq) of the log-wide tree: one
	// hash per set bit of LastSeq, largest subtree first. Proofs and roots
	// of trees of at least LastSeq leaves need nothing else of the purged
	// records.
	Range []Hash `json:"range"`
	// Purges are the purges that removed them, oldest first.
	Purges []Purge `json:"purges"`
}

// Purge is one purge: the anchor record that authorized it and the
// segments it removed (contiguous, ascending).
type Purge struct {
	AnchorSeq uint64          `json:"anchor_seq"`
	Time      time.Time       `json:"time"`
	Segments  []PurgedSegment `json:"segments"`
}

// PurgedSegment describes a removed segment as its footer did.
type PurgedSegment struct {
	Number     uint64     `json:"segment"`
	FirstSeq   uint64     `json:"first_seq"`
	LastSeq    uint64     `json:"last_seq"` // FirstSeq-1 when empty
	FirstTime  time.Time  `json:"first_time,omitzero"`
	LastTime   time.Time  `json:"last_time,omitzero"`
	LastMAC    vellum.MAC `json:"last_mac"`
	MerkleRoot Hash       `json:"merkle_root"`
	Tenants    []string   `json:"tenants,omitempty"` // tenants with a retention period of their own it may hold
	Rule       string     `json:"rule"`              // why it expired
}

// ReadPurged returns dir's retention manifest, or nil when there is none
// (nothing was ever purged). A malformed manifest wraps ErrCorrupt. fs nil
// means vfs.Default.
func ReadPurged(fs vfs.FS, dir string) (*Purged, error) {
	if fs == nil {
		fs = vfs.Default
	}
	path := filepath.Join(dir, PurgedName)
	b, err := vfs.ReadFile(fs, path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("layout: read %s: %w", path, err)
	}
	return ParsePurged(b)
}

// ParsePurged parses and checks a retention manifest.
func ParsePurged(b []byte) (*Purged, error) {
	var p Purged
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, PurgedName, err)
	}
	bad := func(format string, args ...any) (*Purged, error) {
		return nil, fmt.Errorf("%w: %s: %s", ErrCorrupt, PurgedName, fmt.Sprintf(format, args...))
	}
	if p.Format != PurgedFormat {
		return bad("format %d, this build reads %d", p.Format, PurgedFormat)
	}
	if p.Through == 0 || len(p.Purges) == 0 {
		return bad("names no purged segment")
	}
	if len(p.Range) != bits.OnesCount64(p.LastSeq) {
		return bad("%d range hashes for %d purged records, want %d", len(p.Range), p.LastSeq, bits.OnesCount64(p.LastSeq))
	}
	next, seq := uint64(1), uint64(1)
	for i, pg := range p.Purges {
		if len(pg.Segments) == 0 {
			return bad("purge %d names no segment", i)
		}
		if pg.AnchorSeq == 0 {
			return bad("purge %d has no anchor record", i)
		}
		for _, s := range pg.Segments {
			if s.Number != next {
				return bad("purge %d lists segment %d, expected %d", i, s.Number, next)
			}
			if s.FirstSeq != seq || s.LastSeq+1 < s.FirstSeq {
				return bad("segment %d holds seq %d..%d, expected to start at %d", s.Number, s.FirstSeq, s.LastSeq, seq)
			}
			next, seq = next+1, s.LastSeq+1
		}
		if pg.AnchorSeq < seq {
			return bad("purge %d's anchor record %d lies inside what it purged", i, pg.AnchorSeq)
		}
	}
	if next-1 != p.Through || seq-1 != p.LastSeq {
		return bad("the purges end at segment %d seq %d, the manifest says segment %d seq %d", next-1, seq-1, p.Through, p.LastSeq)
	}
	last := p.Purges[len(p.Purges)-1].Segments
	if m := last[len(last)-1].LastMAC; m != p.LastMAC {
		return bad("last MAC %s differs from segment %d's %s", p.LastMAC, p.Through, m)
	}
	return &p, nil
}

// WritePurged replaces dir's retention manifest atomically (temporary
// file, fsync, rename, fsync of dir).
func WritePurged(fs vfs.FS, dir string, p *Purged) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	if _, err := ParsePurged(b); err != nil {
		return fmt.Errorf("layout: refusing to write a bad manifest: %w", err)
	}
	path := filepath.Join(dir, PurgedName)
	if err := vfs.WriteFileAtomic(fs, dir, path, append(b, '\n')); err != nil {
		return fmt.Errorf("layout: write %s: %w", path, err)
	}
	return nil
}

// Segments returns every purged segment, in order.
func (p *Purged) Segments() []PurgedSegment {
	var out []PurgedSegment
	for _, pg := range p.Purges {
		out = append(out, pg.Segments...)
	}
	return out
}
