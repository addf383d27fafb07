package engine

import (
	"fmt"
	"hash/maphash"
	"strconv"

	"github.com/vellumlog/vellum"
)

type dedupEntry struct {
	key  string
	hash uint64 // dedupHash(key)
	seq  uint64
}

// dedupWindow remembers the seq of the last n (tenant, event_id) pairs so a
// retried event is stored once. The committer guards it with its mu.
//
// The map is keyed by each key's 64-bit hash and points into the ring,
// which holds the key itself: a lookup hashes nothing under the
// committer's lock (Prepare hashed the key on the caller's goroutine) and
// compares strings only when the hash is found, where a map keyed by the
// string hashed it again and chased each key's bytes on every probe, a
// cache miss at every lookup, insert and eviction (PERFORMANCE.md, "The
// dedup window"). Two keys of one hash (about one pair in 10^9 among
// 100,000 random keys) cannot both be in the map: the newer replaces the
// older, which is then forgotten early, as if it had left the window.
type dedupWindow struct {
	max  int
	m    map[uint64]int // key hash -> index in ring
	ring []dedupEntry
	next int
}

func newDedupWindow(n int) *dedupWindow {
	if n <= 0 {
		return &dedupWindow{}
	}
	return &dedupWindow{max: n, m: make(map[uint64]int, min(n, 1<<16)), ring: make([]dedupEntry, 0, min(n, 1<<16))}
}

// dedupKey is the tenant's length, the tenant and the event id: no pair of
// (tenant, event id) maps onto another's key, whatever bytes they hold.
func dedupKey(tenant, eventID string) string {
	return strconv.Itoa(len(tenant)) + ":" + tenant + eventID
}

// dedupSeed seeds dedupHash: the window lives in memory only, so the
// hashes need not be stable across processes.
var dedupSeed = maphash.MakeSeed()

// dedupHash is the hash the window keys k by.
func dedupHash(k string) uint64 { return maphash.String(dedupSeed, k) }

// get returns the seq stored for k, whose hash is h.
func (d *dedupWindow) get(k string, h uint64) (uint64, bool) {
	i, ok := d.m[h]
	if !ok || d.ring[i].key != k {
		return 0, false
	}
	return d.ring[i].seq, true
}

// put remembers seq for k, whose hash is h and which get did not find,
// forgetting the oldest key once the window is full.
func (d *dedupWindow) put(k string, h uint64, seq uint64) {
	if d.max == 0 {
		return
	}
	i := len(d.ring)
	if i < d.max {
		d.ring = append(d.ring, dedupEntry{k, h, seq})
	} else {
		i = d.next
		if j, ok := d.m[d.ring[i].hash]; ok && j == i {
			delete(d.m, d.ring[i].hash)
		}
		d.ring[i] = dedupEntry{k, h, seq}
		d.next = (d.next + 1) % d.max
	}
	d.m[h] = i
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
			k := dedupKey(string(f.TenantID), string(f.EventID))
			h := dedupHash(k)
			if _, ok := d.get(k, h); !ok {
				d.put(k, h, en.Seq)
			}
		}
	}
	return nil
}
