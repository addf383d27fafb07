package index

import (
	"container/list"
	"math/bits"
	"slices"
	"sync"
)

// The in-memory form of a sealed segment's lists that counts and
// intersects fast. A list read from section 4 is decoded once (Dense) into
// a bitmap of 64-bit words over the segment's ordinals when it is dense
// enough that the bitmap is at most twice the size of its ordinals, or
// into its sorted ordinals otherwise (denseRatio), and kept in a Cache bounded by bytes
// for the next query. Counting the records two bitmaps share is then an
// AND and a popcount per 64 records; a sparse list probes the others.

// denseRatio: a list of count ordinals of a segment of records records is
// held as a bitmap when its records/8 bytes are at most twice what count
// ordinals cost (4 bytes each), that is count ≥ records/64: a bitmap
// counts and probes in constant time per 64 records, ordinals per one.
const denseRatio = 64

// Dense returns l in its fast form for a segment of records records: a
// bitmap when it holds at least one record in 64, its sorted ordinals
// otherwise. Candidates lists are returned as they are.
func (l List) Dense(records int) List {
	if l.candidates || l.words != nil || l.count == 0 {
		return l
	}
	if l.count*denseRatio < records {
		if l.bits == nil {
			return l
		}
		return List{ords: l.AppendRange(make([]uint32, 0, l.count), 0, ^uint32(0)), count: l.count}
	}
	w := make([]uint64, (records+63)/64)
	if l.bits != nil {
		for i, by := range l.bits {
			if by == 0 {
				continue
			}
			o := l.base + uint32(i)*8
			w[o/64] |= uint64(by) << (o % 64)
			if hi := uint64(by) >> (64 - o%64); o%64 > 56 && hi != 0 {
				w[o/64+1] |= hi // set bits lie below records
			}
		}
	} else {
		for _, o := range l.ords {
			w[o/64] |= 1 << (o % 64)
		}
	}
	return List{words: w, count: l.count}
}

// memSize is what l's memory costs, roughly.
func (l *List) memSize() int { return 8*len(l.words) + 4*len(l.ords) + len(l.bits) + 64 }

// rangeMask returns the bits of word i of a bitmap that lie in [lo, hi).
func rangeMask(i int, lo, hi uint32) uint64 {
	m := ^uint64(0)
	if w0 := uint32(i) * 64; lo > w0 {
		m &= ^uint64(0) << (lo - w0)
	}
	if w1 := uint32(i)*64 + 64; hi < w1 {
		m &= ^uint64(0) >> (w1 - hi)
	}
	return m
}

// CountAnd returns how many ordinals in [lo, hi) every list holds, without
// building them: an AND and a popcount per word where every list is a
// bitmap, otherwise the shortest list drives and the others are probed. No
// lists gives 0.
func CountAnd(lists []List, lo, hi uint32) int {
	if len(lists) == 0 || lo >= hi {
		return 0
	}
	allWords := true
	for i := range lists {
		if lists[i].count == 0 {
			return 0
		}
		allWords = allWords && lists[i].words != nil
	}
	if !allWords {
		n := 0
		intersect(lists, lo, hi, func(uint32) { n++ })
		return n
	}
	first, last := int(lo/64), int((hi-1)/64)
	for i := range lists {
		last = min(last, len(lists[i].words)-1)
	}
	if first > last {
		return 0
	}
	and := func(i int) uint64 {
		w := lists[0].words[i]
		for j := 1; j < len(lists); j++ {
			w &= lists[j].words[i]
		}
		return w
	}
	// The edge words are masked to [lo, hi); the ones between are whole.
	n := bits.OnesCount64(and(first) & rangeMask(first, lo, hi))
	if last > first {
		n += bits.OnesCount64(and(last) & rangeMask(last, lo, hi))
	}
	if len(lists) == 2 {
		a, b := lists[0].words[:last], lists[1].words[:last]
		for i := first + 1; i < last; i++ {
			n += bits.OnesCount64(a[i] & b[i])
		}
		return n
	}
	for i := first + 1; i < last; i++ {
		n += bits.OnesCount64(and(i))
	}
	return n
}

// intersect calls fn with every ordinal in [lo, hi) that every list holds,
// ascending. The shortest list drives: its ordinals are walked and probed
// in the others (bitmap lists by a bit test, sorted ones by a cursor that
// only moves forward).
func intersect(lists []List, lo, hi uint32, fn func(uint32)) {
	d := 0
	for i := range lists {
		if lists[i].count < lists[d].count {
			d = i
		}
	}
	var cur [8]int
	curs := cur[:0]
	if len(lists) > len(cur) {
		curs = make([]int, 0, len(lists))
	}
	for i := range lists {
		c := 0
		if lists[i].ords != nil {
			c, _ = slices.BinarySearch(lists[i].ords, lo)
		}
		curs = append(curs, c)
	}
	probe := func(o uint32) bool {
		for i := range lists {
			if i == d {
				continue
			}
			l := &lists[i]
			switch {
			case l.words != nil:
				if int(o/64) >= len(l.words) || l.words[o/64]&(1<<(o%64)) == 0 {
					return false
				}
			case l.bits != nil:
				if !l.Contains(o) {
					return false
				}
			default:
				c := curs[i]
				for c < len(l.ords) && l.ords[c] < o {
					c++
				}
				curs[i] = c
				if c == len(l.ords) || l.ords[c] != o {
					return false
				}
			}
		}
		return true
	}
	l := &lists[d]
	switch {
	case l.words != nil:
		for i := int(lo / 64); i < len(l.words) && uint32(i)*64 < hi; i++ {
			w := l.words[i]
			if w == 0 {
				continue
			}
			if uint32(i)*64 < lo || uint32(i)*64+64 > hi {
				w &= rangeMask(i, lo, hi)
			}
			for w != 0 {
				o := uint32(i)*64 + uint32(bits.TrailingZeros64(w))
				w &= w - 1
				if probe(o) {
					fn(o)
				}
			}
		}
	case l.bits != nil:
		for _, o := range l.AppendRange(nil, lo, hi) {
			if probe(o) {
				fn(o)
			}
		}
	default:
		for _, o := range l.ords[curs[d]:] {
			if o >= hi {
				break
			}
			if probe(o) {
				fn(o)
			}
		}
	}
}

// Cache holds decoded lists of sealed segments' postings (in their Dense
// form) for the next query, least recently used first out, within a byte
// budget. Safe for concurrent use.
type Cache struct {
	mu    sync.Mutex
	limit int
	size  int
	ll    list.List // of *cacheEntry, most recently used at the front
	m     map[cacheKey]*list.Element
	hits  uint64
	miss  uint64
}

type cacheKey struct {
	p     *Postings
	field byte
	value string
}

type cacheEntry struct {
	key  cacheKey
	list List
	fps  []uint16 // a hashed field's fingerprints, their first 16 bits (key value "")
	size int
}

// NewCache returns a cache that holds at most limit bytes of lists; 0 or
// less caches nothing.
func NewCache(limit int) *Cache {
	return &Cache{limit: limit, m: map[cacheKey]*list.Element{}}
}

func (c *Cache) get(k cacheKey) (*cacheEntry, bool) {
	if c == nil || c.limit <= 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		c.ll.MoveToFront(e)
		c.hits++
		return e.Value.(*cacheEntry), true
	}
	c.miss++
	return nil, false
}

func (c *Cache) put(k cacheKey, l List, fps []uint16) {
	if c == nil || c.limit <= 0 {
		return
	}
	sz := l.memSize() + 2*len(fps) + len(k.value)
	if sz > c.limit/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; ok {
		return
	}
	c.m[k] = c.ll.PushFront(&cacheEntry{key: k, list: l, fps: fps, size: sz})
	c.size += sz
	for c.size > c.limit {
		e := c.ll.Back()
		ce := e.Value.(*cacheEntry)
		c.ll.Remove(e)
		delete(c.m, ce.key)
		c.size -= ce.size
	}
}

// Forget drops every list of p, e.g. of a segment retention removed.
func (c *Cache) Forget(p *Postings) {
	if c == nil || p == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for e := c.ll.Front(); e != nil; {
		next := e.Next()
		if ce := e.Value.(*cacheEntry); ce.key.p == p {
			c.ll.Remove(e)
			delete(c.m, ce.key)
			c.size -= ce.size
		}
		e = next
	}
}

// Stats returns the bytes held and the lookups that found and missed.
func (c *Cache) Stats() (size int, hits, misses uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size, c.hits, c.miss
}

// LookupCached is Lookup through cache: an exact field's list is decoded
// into its Dense form once and kept in cache; of a hashed field, the
// fingerprints of every entry are kept (their first 16 bits, two bytes per
// record with a value, read once), so that a lookup reads the file only
// for the entries whose fingerprint matches: a value the segment lacks is
// then answered from memory in all but about one segment in 1,000 of
// postings version 2 (one in 16 to 32 of version 1).
func (p *Postings) LookupCached(read ReadAt, c *Cache, field byte, v string) (List, error) {
	switch {
	case c == nil || c.limit <= 0 || field < FieldTenant || field >= numFields:
		return p.Lookup(read, field, v)
	case field >= firstHashed:
		return p.lookupFingerprints(read, c, field, v)
	}
	k := cacheKey{p, field, v}
	if e, ok := c.get(k); ok {
		return e.list, nil
	}
	l, err := p.Lookup(read, field, v)
	if err != nil || l.count == 0 {
		return l, err
	}
	l = l.Dense(int(p.records))
	c.put(k, l, nil)
	return l, nil
}

// lookupFingerprints looks a hashed field's value up with its
// fingerprints in c (loaded on the first lookup): of each entry the cache
// keeps the first 16 bits of its fingerprint (all of an 8-bit one of
// version 1), and the file is read only for the entries those match.
func (p *Postings) lookupFingerprints(read ReadAt, c *Cache, field byte, v string) (List, error) {
	hr := &p.hashed[field-firstHashed]
	if hr.e == 0 {
		return List{candidates: true}, nil
	}
	ef := p.ef
	cut := ef.fb - min(ef.fb, 16) // the fingerprint bits the cache drops
	k := cacheKey{p, field, ""}
	var fps []uint16
	if e, ok := c.get(k); ok {
		fps = e.fps
	} else {
		b := make([]byte, int(hr.e)*ef.stride)
		if err := read(b, p.base+hr.entOff); err != nil {
			return List{}, err
		}
		fps = make([]uint16, hr.e)
		for i := range fps {
			fp, _ := ef.get(b[i*ef.stride:])
			fps[i] = uint16(fp >> cut)
		}
		c.put(k, List{}, fps)
	}
	h := HashValue(field, v)
	bk := bucketOf(h, hr.k)
	lo, hi := hr.dir[bk], hr.e
	if int(bk)+1 < len(hr.dir) {
		hi = hr.dir[bk+1]
	}
	fp := ef.fingerprint(h, hr.k)
	short := uint16(fp >> cut)
	var out []uint32
	var b [5]byte
	for j := lo; j < hi; j++ {
		if fps[j] != short {
			continue
		}
		if err := read(b[:ef.stride], p.base+hr.entOff+int64(j)*int64(ef.stride)); err != nil {
			return List{}, err
		}
		efp, o := ef.get(b[:])
		if efp>>cut != fp>>cut || o >= p.records || len(out) > 0 && o <= out[len(out)-1] {
			return List{}, postingsErr("hashed field %d bucket %d: entry %d changed, or its ordinal %d is out of range or order", field, bk, j, o)
		}
		if efp == fp {
			out = append(out, o)
		}
	}
	return List{ords: out, count: len(out), candidates: true}, nil
}
