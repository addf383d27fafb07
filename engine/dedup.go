package engine

import (
	"fmt"
	"strconv"

	"github.com/vellumlog/vellum"
)

type dedupEntry struct {
	key string
	seq uint64
}

// dedupWindow remembers the seq of the last n (tenant, event_id) pairs so a
// retried event is stored once. The committer guards it with its mu.
type dedupWindow struct {
	max  int
	m    map[string]uint64
	ring []dedupEntry
	next int
}

func newDedupWindow(n int) *dedupWindow {
	if n <= 0 {
		return &dedupWindow{}
	}
	return &dedupWindow{max: n, m: make(map[string]uint64, min(n, 1<<16)), ring: make([]dedupEntry, 0, min(n, 1<<16))}
}

// dedupKey is the tenant's length, the tenant and the event id: no pair of
// (tenant, event id) maps onto another's key, whatever bytes they hold.
func dedupKey(tenant, eventID string) string {
	return strconv.Itoa(len(tenant)) + ":" + tenant + eventID
}

func (d *dedupWindow) get(k string) (uint64, bool) {
	s, ok := d.m[k]
	return s, ok
}

func (d *dedupWindow) put(k string, seq uint64) {
	if d.max == 0 {
		return
	}
	if len(d.ring) < d.max {
		d.ring = append(d.ring, dedupEntry{k, seq})
	} else {
		if old := d.ring[d.next]; d.m[old.key] == old.seq {
			delete(d.m, old.key)
		}
		d.ring[d.next] = dedupEntry{k, seq}
		d.next = (d.next + 1) % d.max
	}
	d.m[k] = seq
}

// load fills the window with the event ids of the newest records of
// snapshot s, when the store opens.
func (d *dedupWindow) load(s *snapshot) error {
	if d.max == 0 || s.last == 0 {
		return nil
	}
	from := s.first
	if s.last-from+1 > uint64(d.max) {
		from = s.last - uint64(d.max) + 1
	}
	var f vellum.Fields
	for si, en := range scanEntries(s, from, s.last) {
		if en.Record == nil {
			return fmt.Errorf("engine: load recent event ids: %w", en.err)
		}
		if err := vellum.PeekFields(en.Record, &f); err != nil {
			return fmt.Errorf("%w: %s offset %d seq %d: %w", ErrCorrupt, si.path, en.Offset, en.Seq, err)
		}
		if len(f.EventID) > 0 {
			d.put(dedupKey(string(f.TenantID), string(f.EventID)), en.Seq)
		}
	}
	return nil
}
