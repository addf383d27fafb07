package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math/bits"
	"slices"
	"sort"
	"strings"

	"github.com/vellumlog/vellum"
)

// SectionPostings is the segment footer section that holds a segment's
// postings (segment/FORMAT.md, "Postings"). Wire constant: do not change.
const SectionPostings = 4

// PostingsVersion is the version of section 4 this package writes; it
// reads versions 1 and 2 (they differ only in the hashed fields' entries:
// an 8-bit fingerprint in version 1, as many bits as the ordinal leaves
// in version 2). Wire constant.
const PostingsVersion = 2

// VersionOf returns the postings version section sec claims when this
// package can write it (1 or 2), or PostingsVersion: a reader that rebuilds
// a section to compare (vellum verify) rebuilds it in the version it found.
func VersionOf(sec []byte) byte {
	if len(sec) > 0 && (sec[0] == 1 || sec[0] == 2) {
		return sec[0]
	}
	return PostingsVersion
}

// entryFmt is the layout of a section's hashed entries: each is stride
// (1 + w) bytes, a little-endian integer holding an ordinal of ob bits and
// a fingerprint of fb bits. Version 1: the fingerprint is the low byte and
// the ordinal the w bytes above it. Version 2: the ordinal is the low ob =
// max(1, bits.Len(records − 1)) bits, and the fingerprint the fb = 8·(1 + w)
// − ob bits above (14 bits for the 217,000 records of a 64 MiB segment of
// benchmark records).
type entryFmt struct {
	v2     bool
	stride int
	ob, fb uint
}

func newEntryFmt(version byte, w int, records uint32) entryFmt {
	f := entryFmt{v2: version >= 2, stride: 1 + w}
	if !f.v2 {
		f.ob, f.fb = uint(8*w), 8
		return f
	}
	f.ob = 1
	if records > 1 {
		f.ob = uint(bits.Len32(records - 1))
	}
	f.fb = uint(8*f.stride) - f.ob
	return f
}

// fingerprint returns the fingerprint of hash h in a table of k bucket
// bits: the fb bits after the bucket's.
func (f entryFmt) fingerprint(h uint64, k int) uint64 {
	return h >> (64 - uint(k) - f.fb) & (1<<f.fb - 1)
}

// get returns the fingerprint and ordinal of the entry at the start of b.
func (f entryFmt) get(b []byte) (fp uint64, ord uint32) {
	var x uint64
	for i := range f.stride {
		x |= uint64(b[i]) << (8 * i)
	}
	if !f.v2 {
		return x & 0xff, uint32(x >> 8)
	}
	return x >> f.ob, uint32(x & (1<<f.ob - 1))
}

// put writes an entry at the start of b.
func (f entryFmt) put(b []byte, fp uint64, ord uint32) {
	x := fp | uint64(ord)<<8
	if f.v2 {
		x = uint64(ord) | fp<<f.ob
	}
	for i := range f.stride {
		b[i] = byte(x >> (8 * i))
	}
}

// Postings field ids. Wire constants: do not change. Fields 1 to 7 are
// exact (stored with their values), 8 and 9 hashed.
const (
	FieldTenant       = 1
	FieldUser         = 2
	FieldAction       = 3
	FieldActionPrefix = 4
	FieldTool         = 5
	FieldModel        = 6
	FieldOutcome      = 7
	FieldSession      = 8
	FieldTrace        = 9

	firstHashed = FieldSession
	numFields   = 10 // ids 1..9
)

// Encoding limits. Wire constants.
const (
	listDeltas       = 0
	listBitmap       = 1
	maxBucketBits    = 24
	bucketTarget     = 16 // entries per bucket the writer aims at
	maxPostingsValue = 4096
)

// ErrPostingsCorrupt reports a postings section (or one of its lists) that
// does not parse or contradicts itself.
var ErrPostingsCorrupt = errors.New("index: corrupt postings section")

func postingsErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrPostingsCorrupt, fmt.Sprintf(format, args...))
}

// Values are the postings values of one record, as strings that share the
// record's memory, with their hashes: the engine computes them on the
// appending goroutine (ValuesOfKeys, which takes the exact fields' hashes
// from the record's summary keys), so that adding a record to the active
// segment's postings is a few table probes.
type Values struct {
	Tenant, User, Action, Tool, Model, Outcome, Session, Trace string

	hashed bool
	// status is the outcome's vellum.StatusBit (0: not a known status).
	status uint8
	// h holds the key hashes (hashKey, as summary keys) of the exact
	// fields tenant, user, action, tool and model by field id. The
	// action's prefixes and the outcome are not looked up by hash: a
	// builder finds them from the action's key and the status bit, and
	// hashes them only the first time it meets them.
	h      [FieldModel + 1]uint64
	hs, ht uint64 // HashValue of session and trace
}

// ValuesOf returns r's postings values.
func ValuesOf(r *vellum.Record) Values {
	v := valuesOf(r)
	v.hash()
	return v
}

func valuesOf(r *vellum.Record) Values {
	return Values{Tenant: r.TenantID, User: r.UserID, Action: r.Action, Tool: r.Tool.Name, Model: r.Model.Name,
		Outcome: r.Outcome.Status, Session: r.SessionID, Trace: r.TraceID}
}

// ValuesOfKeys returns r's postings values, reusing the hashes of k, r's
// summary keys (KeysOf), which hash the same exact fields the same way.
func ValuesOfKeys(r *vellum.Record, k *Keys) Values {
	var v Values
	v.SetKeys(r, k)
	return v
}

// SetKeys sets v to r's postings values as ValuesOfKeys does, in place: a
// Values holds strings, and copying one into a heap object costs write
// barriers while the garbage collector runs.
func (v *Values) SetKeys(r *vellum.Record, k *Keys) {
	v.Tenant, v.User, v.Action, v.Tool, v.Model = r.TenantID, r.UserID, r.Action, r.Tool.Name, r.Model.Name
	v.Outcome, v.Session, v.Trace = r.Outcome.Status, r.SessionID, r.TraceID
	v.hs, v.ht = 0, 0
	if k.overflow {
		v.hash()
		return
	}
	v.h = [FieldModel + 1]uint64{}
	i := 0
	next := func(s string) uint64 {
		if s == "" || i >= int(k.n) {
			return 0
		}
		i++
		return k.h[i-1]
	}
	v.h[FieldTenant] = next(v.Tenant)
	v.h[FieldUser] = next(v.User)
	v.h[FieldAction] = next(v.Action)
	for j := 0; j < len(v.Action)-1; j++ {
		if v.Action[j] == '.' {
			i++ // the prefix's key, which a builder finds from the action's
		}
	}
	v.h[FieldTool] = next(v.Tool)
	v.h[FieldModel] = next(v.Model)
	v.status = k.outcome
	v.hashRest()
}

func (v *Values) hash() {
	v.h = [FieldModel + 1]uint64{}
	for f, s := range [...]string{FieldTenant: v.Tenant, FieldUser: v.User, FieldAction: v.Action, FieldTool: v.Tool, FieldModel: v.Model} {
		if f > 0 && s != "" {
			v.h[f] = keyHash(byte(f), s)
		}
	}
	v.status = vellum.StatusBit(v.Outcome)
	v.hashRest()
}

func (v *Values) hashRest() {
	// Both chains at once (hashKey2).
	hs, ht := hashKey2(FieldSession, v.Session, FieldTrace, v.Trace)
	v.hs, v.ht = 0, 0
	if v.Session != "" {
		v.hs = fmix64(hs)
	}
	if v.Trace != "" {
		v.ht = fmix64(ht)
	}
	v.hashed = true
}

// keyHash is the in-memory hash of an exact key: the summary key's hash
// (hashKey, FNV-1a over the field id and the value), so that the
// appending goroutine computes it once for both. It never reaches a file
// (section 4 stores exact values, sorted).
func keyHash[S string | []byte](field byte, v S) uint64 { return hashKey(field, v, len(v)) }

// tabSeed is mixed into a key hash before it picks a table slot, so that
// values chosen to share low hash bits do not share a probe sequence.
var tabSeed = maphash.Comparable(maphash.MakeSeed(), 0) | 1

// HashValue is the hash of a hashed field's value (FORMAT.md): fmix64 of
// FNV-1a-64 over the field id byte and the value.
func HashValue[S string | []byte](field byte, v S) uint64 {
	return fmix64(hashKey(field, v, len(v)))
}

// fmix64 is MurmurHash3's 64-bit finalizer.
func fmix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// PostingsBuilder accumulates the postings of one segment's records in
// seq order and encodes section 4. The engine keeps the active segment's
// postings in one; its lists may be read (Lookup) by one goroutine while
// another adds, provided the caller orders the two with a lock. Not safe
// for concurrent use otherwise.
type PostingsBuilder struct {
	n uint32
	// Exact keys, found through an open-addressing table of indexes
	// (plus one; 0 is empty) by their keyHash: a Go map costs several
	// times more per probe, and every record probes seven or more times.
	// One table per field, so that the few keys of the small fields
	// (tenant, action, tool, model, outcome) stay in the nearest cache
	// whatever the large ones (users) hold.
	keys []bkey
	tabs [firstHashed]table
	// The outcome's key by status (index of its vellum.StatusBit) plus
	// one, and each action key's prefix keys (bkey.pre), so that Add
	// finds them without a table probe.
	status   [8]int32
	prefixes [][]int32
	// Hashed fields: the ordinals of records with a value and its hash.
	hOrds [2][]uint32
	hHash [2][]uint64
}

// table is one field's open-addressing table: 2^bits slots, at most half
// full, holding n keys.
type table struct {
	slots []slot
	bits  uint8
	n     int
}

// slot is a table entry: a key's hash and its index in keys plus one (0:
// empty), so that a probe compares hashes without touching the key.
type slot struct {
	h uint64
	k int32
}

type bkey struct {
	h     uint64
	field byte
	// pre is, for an action key, the index in prefixes of its prefixes'
	// keys plus one, or 0 until the builder first meets it.
	pre   int32
	value string
	ords  []uint32
}

// NewPostingsBuilder returns an empty builder with room for about records
// records' hashed entries.
func NewPostingsBuilder(records int) *PostingsBuilder {
	b := &PostingsBuilder{}
	for i := range b.hOrds {
		b.hOrds[i], b.hHash[i] = make([]uint32, 0, records), make([]uint64, 0, records)
	}
	return b
}

// Next returns an empty builder for the segment after b's, with room for
// as many records of each value as b holds (and an eighth more), so that
// its lists rarely grow by copying. Keys b saw fewer than twice are not
// carried over. b is not changed.
func (b *PostingsBuilder) Next() *PostingsBuilder {
	nb := &PostingsBuilder{}
	if b == nil {
		return nb
	}
	for i := range b.keys {
		k := &b.keys[i]
		if n := len(k.ords); n >= 2 {
			nb.keys = append(nb.keys, bkey{h: k.h, field: k.field, value: k.value, ords: make([]uint32, 0, n+n/8)})
		}
	}
	for j := range nb.keys {
		nb.tabs[nb.keys[j].field].n++
	}
	for f := range nb.tabs {
		if n := nb.tabs[f].n; n > 0 {
			nb.rehash(byte(f), max(16, 1<<bits.Len(uint(n*2))))
		}
	}
	for i := range nb.hOrds {
		n := len(b.hOrds[i])
		nb.hOrds[i], nb.hHash[i] = make([]uint32, 0, n+n/8), make([]uint64, 0, n+n/8)
	}
	return nb
}

// Len returns how many records were added.
func (b *PostingsBuilder) Len() int { return int(b.n) }

// Add adds the next record (ordinal Len()).
func (b *PostingsBuilder) Add(v *Values) {
	if !v.hashed {
		v.hash()
	}
	o := b.n
	b.n++
	if v.Tenant != "" {
		addExact(b, FieldTenant, v.Tenant, v.h[FieldTenant], o)
	}
	if v.User != "" {
		addExact(b, FieldUser, v.User, v.h[FieldUser], o)
	}
	if a := v.Action; a != "" {
		addAction(b, a, v.h[FieldAction], o)
	}
	if v.Tool != "" {
		addExact(b, FieldTool, v.Tool, v.h[FieldTool], o)
	}
	if v.Model != "" {
		addExact(b, FieldModel, v.Model, v.h[FieldModel], o)
	}
	if v.Outcome != "" {
		addOutcome(b, v.Outcome, v.status, o)
	}
	if v.Session != "" {
		b.addHashed(0, v.hs, o)
	}
	if v.Trace != "" {
		b.addHashed(1, v.ht, o)
	}
}

// addAction adds ordinal o to action a's list, whose key hash is h, and to
// its dotted prefixes' lists. The prefixes' keys are found through the
// action's key, once they are known.
func addAction[S string | []byte](b *PostingsBuilder, a S, h uint64, o uint32) {
	k := addExact(b, FieldAction, a, h, o)
	if k >= 0 {
		if p := b.keys[k].pre; p > 0 {
			for _, j := range b.prefixes[p-1] {
				b.keys[j].ords = append(b.keys[j].ords, o)
			}
			return
		}
	}
	var pre []int32
	for i := 0; i < len(a)-1; i++ {
		if a[i] == '.' {
			if j := addExact(b, FieldActionPrefix, a[:i+1], keyHash(FieldActionPrefix, a[:i+1]), o); j >= 0 {
				pre = append(pre, int32(j))
			}
		}
	}
	if k >= 0 {
		b.prefixes = append(b.prefixes, pre)
		b.keys[k].pre = int32(len(b.prefixes))
	}
}

// addOutcome adds ordinal o to outcome s's list; bit is s's
// vellum.StatusBit.
func addOutcome[S string | []byte](b *PostingsBuilder, s S, bit uint8, o uint32) {
	if bit == 0 {
		addExact(b, FieldOutcome, s, keyHash(FieldOutcome, s), o)
		return
	}
	i := bits.TrailingZeros8(bit)
	if k := b.status[i]; k > 0 {
		b.keys[k-1].ords = append(b.keys[k-1].ords, o)
		return
	}
	if k := addExact(b, FieldOutcome, s, keyHash(FieldOutcome, s), o); k >= 0 {
		b.status[i] = int32(k + 1)
	}
}

// AddKeyed adds the next record from fields read with vellum.PeekFields
// from its encoding, with k, its summary keys (KeysOf of the same fields),
// whose hashes serve the exact fields: what the engine adds, so that
// Prepare copies no values for the postings and hashes none twice.
func (b *PostingsBuilder) AddKeyed(f *vellum.Fields, k *Keys) {
	if k == nil || k.overflow {
		b.AddFields(f)
		return
	}
	o := b.n
	b.n++
	i := 0
	// hash returns the next key's hash, or hashes s if the keys run out
	// (keys not of these fields: a bug, which costs only the hashing).
	hash := func(field byte, s []byte) uint64 {
		if i < int(k.n) {
			i++
			return k.h[i-1]
		}
		return keyHash(field, s)
	}
	if len(f.TenantID) > 0 {
		addExact(b, FieldTenant, f.TenantID, hash(FieldTenant, f.TenantID), o)
	}
	if len(f.UserID) > 0 {
		addExact(b, FieldUser, f.UserID, hash(FieldUser, f.UserID), o)
	}
	if a := f.Action; len(a) > 0 {
		h := hash(FieldAction, a)
		for j := 0; j < len(a)-1; j++ {
			if a[j] == '.' {
				i++ // the prefix's key: addAction finds it from the action's
			}
		}
		addAction(b, a, h, o)
	}
	if len(f.Tool) > 0 {
		addExact(b, FieldTool, f.Tool, hash(FieldTool, f.Tool), o)
	}
	if len(f.Model) > 0 {
		addExact(b, FieldModel, f.Model, hash(FieldModel, f.Model), o)
	}
	if len(f.Status) > 0 {
		addOutcome(b, f.Status, k.outcome, o)
	}
	hs, ht := hashKey2(FieldSession, f.SessionID, FieldTrace, f.TraceID)
	if len(f.SessionID) > 0 {
		b.addHashed(0, fmix64(hs), o)
	}
	if len(f.TraceID) > 0 {
		b.addHashed(1, fmix64(ht), o)
	}
}

// AddFields adds the next record from fields read with vellum.PeekFields.
func (b *PostingsBuilder) AddFields(f *vellum.Fields) {
	o := b.n
	b.n++
	for id, s := range [...][]byte{FieldTenant: f.TenantID, FieldUser: f.UserID, FieldAction: f.Action, FieldTool: f.Tool, FieldModel: f.Model, FieldOutcome: f.Status} {
		if id > 0 && len(s) > 0 {
			addExact(b, byte(id), s, keyHash(byte(id), s), o)
		}
	}
	for i := 0; i < len(f.Action)-1; i++ {
		if f.Action[i] == '.' {
			p := f.Action[:i+1]
			addExact(b, FieldActionPrefix, p, keyHash(FieldActionPrefix, p), o)
		}
	}
	if len(f.SessionID) > 0 {
		b.addHashed(0, HashValue(FieldSession, f.SessionID), o)
	}
	if len(f.TraceID) > 0 {
		b.addHashed(1, HashValue(FieldTrace, f.TraceID), o)
	}
}

func (b *PostingsBuilder) addHashed(i int, h uint64, o uint32) {
	b.hOrds[i] = append(b.hOrds[i], o)
	b.hHash[i] = append(b.hHash[i], h)
}

// slotOf returns the first slot of a key with hash h in t.
func (t *table) slotOf(h uint64) int {
	return int(((h ^ tabSeed) * 0x9e3779b97f4a7c15) >> (64 - t.bits))
}

// find returns the index of exact key (field, v) with hash h in keys,
// or -1, and the slot of its field's table where it is or would go.
func find[S string | []byte](b *PostingsBuilder, field byte, v S, h uint64) (int, int) {
	t := &b.tabs[field]
	if len(t.slots) == 0 {
		return -1, -1
	}
	mask := len(t.slots) - 1
	for i := t.slotOf(h); ; i = (i + 1) & mask {
		sl := t.slots[i]
		if sl.k == 0 {
			return -1, i
		}
		if sl.h == h {
			if e := &b.keys[sl.k-1]; equalValue(e.value, v) {
				return int(sl.k - 1), i
			}
		}
	}
}

// equalValue reports whether a and v hold the same bytes. Values of 8 to
// 16 bytes, most tenants, users, actions, tools, models and outcomes, are
// compared as two words each (overlapping), without a call.
func equalValue[S string | []byte](a string, v S) bool {
	n := len(a)
	if n != len(v) {
		return false
	}
	if n >= 8 && n <= 16 {
		return le64(a, 0) == le64(v, 0) && le64(a, n-8) == le64(v, n-8)
	}
	return a == string(v)
}

// le64 returns the little-endian word at s[i:i+8].
func le64[S string | []byte](s S, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// addExact adds ordinal o to the list of exact key (field, v), whose hash
// is h, and returns the key's index in keys (-1: a value too long to
// index).
func addExact[S string | []byte](b *PostingsBuilder, field byte, v S, h uint64, o uint32) int {
	if len(v) > maxPostingsValue {
		return -1 // validation bounds every indexed value far below this
	}
	k, at := find(b, field, v, h)
	if k >= 0 {
		b.keys[k].ords = append(b.keys[k].ords, o)
		return k
	}
	b.keys = append(b.keys, bkey{h: h, field: field, value: string(v), ords: []uint32{o}})
	k = len(b.keys) - 1
	t := &b.tabs[field]
	t.n++
	if t.n*2 <= len(t.slots) {
		t.slots[at] = slot{h, int32(k + 1)}
		return k
	}
	// Grow the table to keep it at most half full, and place its keys.
	b.rehash(field, max(16, len(t.slots)*2))
	return k
}

// rehash places every key of field in a new table of n slots (a power of
// two).
func (b *PostingsBuilder) rehash(field byte, n int) {
	t := &b.tabs[field]
	t.slots = make([]slot, n)
	t.bits = uint8(bits.Len(uint(n)) - 1)
	for j := range b.keys {
		if b.keys[j].field != field {
			continue
		}
		for i := t.slotOf(b.keys[j].h); ; i = (i + 1) & (n - 1) {
			if t.slots[i].k == 0 {
				t.slots[i] = slot{b.keys[j].h, int32(j + 1)}
				break
			}
		}
	}
}

// HashedView is a hashed field's postings as a PostingsBuilder held them at
// one moment: later Adds do not change it, so it may be searched without
// the lock that orders the builder's readers and writer.
type HashedView struct {
	field byte
	ords  []uint32
	hs    []uint64
}

// Hashed returns the view of hashed field (FieldSession or FieldTrace).
func (b *PostingsBuilder) Hashed(field byte) HashedView {
	if field < firstHashed || field >= numFields {
		return HashedView{}
	}
	i := field - firstHashed
	n := len(b.hOrds[i])
	return HashedView{field: field, ords: b.hOrds[i][:n:n], hs: b.hHash[i][:n:n]}
}

// Lookup returns the candidates for value v: the records whose value has
// its hash.
func (hv HashedView) Lookup(v string) List {
	h := HashValue(hv.field, v)
	var out []uint32
	for j, x := range hv.hs {
		if x == h {
			out = append(out, hv.ords[j])
		}
	}
	return List{ords: out, count: len(out), candidates: true}
}

// Lookup returns the list of value v of field (the ordinals of the records
// holding it, ascending). The list aliases the builder's memory and stays
// valid (it never changes) after later Adds.
func (b *PostingsBuilder) Lookup(field byte, v string) List {
	switch {
	case field >= firstHashed && field < numFields:
		return b.Hashed(field).Lookup(v)
	case field >= FieldTenant && field < firstHashed:
		if k, _ := find(b, field, v, keyHash(field, v)); k >= 0 {
			l := b.keys[k].ords
			return List{ords: l[:len(l):len(l)], count: len(l)}
		}
	}
	return List{}
}

// Marshal encodes the postings of the records added so far as section 4
// (version PostingsVersion). It sizes every list first, so that the
// section is written once into a buffer of its exact size.
func (b *PostingsBuilder) Marshal() []byte { return b.MarshalVersion(PostingsVersion) }

// MarshalVersion is Marshal in version 1 or 2 (any other: 2), so that a
// section of an older version can be rebuilt and compared.
func (b *PostingsBuilder) MarshalVersion(version byte) []byte {
	if version != 1 {
		version = 2
	}
	keys := make([]*bkey, 0, len(b.keys))
	for i := range b.keys {
		if len(b.keys[i].ords) > 0 { // a key carried over by Next, not seen since
			keys = append(keys, &b.keys[i])
		}
	}
	slices.SortFunc(keys, func(a, b *bkey) int {
		if a.field != b.field {
			return int(a.field) - int(b.field)
		}
		return strings.Compare(a.value, b.value)
	})
	w := byte(3)
	if b.n > 1<<24 {
		w = 4
	}
	// Sizes: each list's encoding and length, then the hashed fields'
	// directories and entries after the lists.
	type plan struct {
		enc byte
		n   int
	}
	plans := make([]plan, len(keys))
	headLen, dataLen := 4+4+4+1+2*14, 0
	for i, k := range keys {
		// A list takes the smaller encoding, deltas on a tie. Deltas
		// take a byte an ordinal at least, so a bitmap smaller than the
		// list's length wins without sizing its deltas: that spares a
		// pass over the long lists of the few values of tenant, action,
		// tool, model and outcome.
		p := plan{listBitmap, bitmapSize(k.ords)}
		if p.n >= len(k.ords) {
			if d := deltasSize(k.ords); d <= p.n {
				p = plan{listDeltas, d}
			}
		}
		plans[i] = p
		headLen += 1 + uvarintLen(uint64(len(k.value))) + len(k.value) + uvarintLen(uint64(len(k.ords))) + 1 + uvarintLen(uint64(dataLen)) + uvarintLen(uint64(p.n))
		dataLen += p.n
	}
	var bk [2]int
	for i := range 2 {
		e := len(b.hOrds[i])
		for bk[i] < maxBucketBits && (1<<bk[i])*bucketTarget < e {
			bk[i]++
		}
		dataLen += 4<<bk[i] + e*(1+int(w))
	}
	le := binary.LittleEndian
	out := make([]byte, 0, headLen+dataLen)
	out = append(out, version, w, 0, 0)
	ef := newEntryFmt(version, int(w), b.n)
	out = le.AppendUint32(out, b.n)
	out = le.AppendUint32(out, uint32(len(keys)))
	off := 0
	for i, k := range keys {
		out = append(out, k.field)
		out = binary.AppendUvarint(out, uint64(len(k.value)))
		out = append(out, k.value...)
		out = binary.AppendUvarint(out, uint64(len(k.ords)))
		out = append(out, plans[i].enc)
		out = binary.AppendUvarint(out, uint64(off))
		out = binary.AppendUvarint(out, uint64(plans[i].n))
		off += plans[i].n
	}
	out = append(out, 2)
	hashedAt := len(out)
	out = append(out, make([]byte, 2*14)...)
	data := len(out)
	for i, k := range keys {
		if plans[i].enc == listBitmap {
			out = appendBitmap(out, k.ords)
		} else {
			out = appendDeltas(out, k.ords)
		}
	}
	for i := range 2 {
		ords, hs, k := b.hOrds[i], b.hHash[i], bk[i]
		e, nb := len(ords), 1<<k
		dirOff := len(out) - data
		out = append(out, make([]byte, 4*nb)...)
		dir := out[data+dirOff:]
		for _, h := range hs {
			j := 4 * bucketOf(h, k)
			le.PutUint32(dir[j:], le.Uint32(dir[j:])+1)
		}
		// Counts to starts: the directory holds each bucket's first
		// entry; pos walks each bucket's next free entry.
		pos := make([]uint32, nb)
		sum := uint32(0)
		for j := range nb {
			c := le.Uint32(dir[4*j:])
			le.PutUint32(dir[4*j:], sum)
			pos[j] = sum
			sum += c
		}
		entOff := len(out) - data
		stride := 1 + int(w)
		out = append(out, make([]byte, e*stride)...)
		ent := out[data+entOff:]
		for j, h := range hs {
			bkt := bucketOf(h, k)
			p := int(pos[bkt]) * stride
			pos[bkt]++
			ef.put(ent[p:], ef.fingerprint(h, k), ords[j])
		}
		hd := out[hashedAt+14*i:]
		hd[0], hd[1] = byte(FieldSession+i), byte(k)
		le.PutUint32(hd[2:], uint32(e))
		le.PutUint32(hd[6:], uint32(dirOff))
		le.PutUint32(hd[10:], uint32(entOff))
	}
	return out
}

func uvarintLen(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

func deltasSize(ords []uint32) int {
	n, prev := 0, uint32(0)
	for i, o := range ords {
		d := o
		if i > 0 {
			d = o - prev
		}
		n += uvarintLen(uint64(d))
		prev = o
	}
	return n
}

func bucketOf(h uint64, k int) uint32 {
	if k == 0 {
		return 0
	}
	return uint32(h >> (64 - k))
}

func appendDeltas(b []byte, ords []uint32) []byte {
	prev := uint32(0)
	for i, o := range ords {
		if i == 0 {
			b = binary.AppendUvarint(b, uint64(o))
		} else {
			b = binary.AppendUvarint(b, uint64(o-prev))
		}
		prev = o
	}
	return b
}

func bitmapSize(ords []uint32) int {
	base := ords[0]
	var tmp [binary.MaxVarintLen32]byte
	return binary.PutUvarint(tmp[:], uint64(base)) + int(ords[len(ords)-1]-base)/8 + 1
}

func appendBitmap(b []byte, ords []uint32) []byte {
	base := ords[0]
	b = binary.AppendUvarint(b, uint64(base))
	start := len(b)
	b = append(b, make([]byte, int(ords[len(ords)-1]-base)/8+1)...)
	for _, o := range ords {
		d := o - base
		b[start+int(d/8)] |= 1 << (d % 8)
	}
	return b
}

// List is one posting list: record ordinals of a segment, ascending.
// Candidates is set for hashed fields: the list may hold records whose
// value differs (a hash collision), so a reader confirms on the records.
// The zero List is empty.
type List struct {
	ords       []uint32 // deltas, or a builder's list
	bits       []byte   // bitmap lists: bit i stands for base+i
	words      []uint64 // Dense bitmaps: bit o%64 of word o/64 stands for o
	base       uint32
	count      int
	candidates bool
}

// Len returns how many ordinals the list holds.
func (l *List) Len() int { return l.count }

// Candidates reports whether the list may hold records that do not match.
func (l *List) Candidates() bool { return l.candidates }

// Contains reports whether ordinal o is in the list.
func (l *List) Contains(o uint32) bool {
	if l.words != nil {
		return int(o/64) < len(l.words) && l.words[o/64]&(1<<(o%64)) != 0
	}
	if l.bits != nil {
		if o < l.base {
			return false
		}
		d := o - l.base
		return int(d/8) < len(l.bits) && l.bits[d/8]&(1<<(d%8)) != 0
	}
	_, ok := slices.BinarySearch(l.ords, o)
	return ok
}

// AppendRange appends the list's ordinals in [lo, hi) to dst.
func (l *List) AppendRange(dst []uint32, lo, hi uint32) []uint32 {
	if l.words != nil {
		for i := int(lo / 64); i < len(l.words) && uint32(i)*64 < hi; i++ {
			w := l.words[i] & rangeMask(i, lo, hi)
			for w != 0 {
				dst = append(dst, uint32(i)*64+uint32(bits.TrailingZeros64(w)))
				w &= w - 1
			}
		}
		return dst
	}
	if l.bits != nil {
		i0 := 0
		if lo > l.base {
			i0 = min(int((lo-l.base)/8), len(l.bits))
		}
		for i, by := range l.bits[i0:] {
			i += i0
			for by != 0 {
				j := bits.TrailingZeros8(by)
				by &= by - 1
				o := l.base + uint32(i)*8 + uint32(j)
				if o >= hi {
					return dst
				}
				if o >= lo {
					dst = append(dst, o)
				}
			}
		}
		return dst
	}
	i, _ := slices.BinarySearch(l.ords, lo)
	for ; i < len(l.ords) && l.ords[i] < hi; i++ {
		dst = append(dst, l.ords[i])
	}
	return dst
}

// Union returns the ordinals in any of lists, as one list.
func Union(lists []List) List {
	var all []uint32
	cand := false
	for i := range lists {
		all = lists[i].AppendRange(all, 0, ^uint32(0))
		cand = cand || lists[i].candidates
	}
	slices.Sort(all)
	all = slices.Compact(all)
	return List{ords: all, count: len(all), candidates: cand}
}

// Intersect returns the ordinals in [lo, hi) that every list holds,
// ascending. The shortest list drives; the others are probed. No lists
// means no constraint is not allowed: it returns nil.
func Intersect(lists []List, lo, hi uint32) []uint32 { return IntersectAppend(nil, lists, lo, hi) }

// IntersectAppend is Intersect appending to dst, so that a caller that
// intersects a range at a time reuses one buffer.
func IntersectAppend(dst []uint32, lists []List, lo, hi uint32) []uint32 {
	if len(lists) == 0 || lo >= hi {
		return dst
	}
	if len(lists) == 1 {
		return lists[0].AppendRange(dst, lo, hi)
	}
	intersect(lists, lo, hi, func(o uint32) { dst = append(dst, o) })
	return dst
}

// ReadAt reads len(b) bytes at off of the file a Postings was parsed from,
// or fails.
type ReadAt func(b []byte, off int64) error

// Postings is a parsed section 4: its key table and where its lists and
// buckets lie. Lists are read from the file on demand (Lookup), so that a
// store keeps only the key tables in memory. Safe for concurrent use.
type Postings struct {
	records uint32
	w       int
	ef      entryFmt
	// The exact fields' key table, sorted by field then value as stored:
	// keys holds the values back to back, ents their ends and lists in
	// the same order, and field f's keys are ents[fields[f]:fields[f+1]],
	// found by binary search. About 20 bytes per key plus its value, where
	// a map per field cost about 110 (PERFORMANCE.md, "Soak with
	// preallocated segments"): a store keeps one table per sealed segment.
	keys   string
	ents   []keyEnt
	fields [firstHashed + 1]int32
	hashed [2]hashedRef
	// Data is where the data area starts, relative to the section; the
	// caller adds the section's file offset (SetBase).
	data    int64
	dataLen int64
	base    int64
}

type listRef struct {
	off, n int64
	count  int
	enc    byte
}

// keyEnt is one key of the table: where its value ends in Postings.keys
// and where its list lies in the data area (which ParsePostings bounds
// below 4 GiB).
type keyEnt struct {
	end, off, n, count uint32
	enc                byte
}

// find returns the list of value v of exact field f.
func (p *Postings) find(f byte, v string) (listRef, bool) {
	lo, hi := int(p.fields[f]), int(p.fields[f+1])
	i := lo + sort.Search(hi-lo, func(j int) bool { return p.keyAt(lo+j) >= v })
	if i == hi || p.keyAt(i) != v {
		return listRef{}, false
	}
	e := &p.ents[i]
	return listRef{off: int64(e.off), n: int64(e.n), count: int(e.count), enc: e.enc}, true
}

// keyAt returns the value of key i.
func (p *Postings) keyAt(i int) string {
	start := uint32(0)
	if i > 0 {
		start = p.ents[i-1].end
	}
	return p.keys[start:p.ents[i].end]
}

type hashedRef struct {
	k              int
	e              uint32
	dirOff, entOff int64
	dir            []uint32 // the bucket directory, kept in memory (4 bytes per ~16 records)
}

// ParsePostings parses section 4 of a segment of records records. It
// checks the key table and every offset; lists are checked when read. The
// result does not alias b.
func ParsePostings(b []byte, records uint64) (*Postings, error) {
	le := binary.LittleEndian
	if len(b) < 12 {
		return nil, postingsErr("%d bytes, shorter than its header", len(b))
	}
	if b[0] != 1 && b[0] != 2 {
		return nil, postingsErr("version %d, this build reads 1 and 2", b[0])
	}
	w := int(b[1])
	if w != 3 && w != 4 || b[2] != 0 || b[3] != 0 {
		return nil, postingsErr("ordinal width %d or reserved bytes %d %d", w, b[2], b[3])
	}
	p := &Postings{records: le.Uint32(b[4:]), w: w}
	if uint64(p.records) != records {
		return nil, postingsErr("section says %d records, the segment holds %d", p.records, records)
	}
	if w == 3 && p.records > 1<<24 {
		return nil, postingsErr("3-byte ordinals for %d records", p.records)
	}
	p.ef = newEntryFmt(b[0], w, p.records)
	nk := le.Uint32(b[8:])
	pos := 12
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(b[pos:])
		if n <= 0 {
			return 0, false
		}
		pos += n
		return v, true
	}
	refs := make([]pendingKey, 0, min(int(nk), len(b)/6))
	for i := uint32(0); i < nk; i++ {
		if pos >= len(b) {
			return nil, postingsErr("key %d of %d truncated", i, nk)
		}
		f := b[pos]
		pos++
		if f < FieldTenant || f >= firstHashed {
			return nil, postingsErr("key %d has field %d, not an exact field", i, f)
		}
		n, ok := uv()
		if !ok || n == 0 || n > maxPostingsValue || n > uint64(len(b)-pos) {
			return nil, postingsErr("key %d value length bad", i)
		}
		v := string(b[pos : pos+int(n)])
		pos += int(n)
		cnt, ok1 := uv()
		if !ok1 || pos >= len(b) {
			return nil, postingsErr("key %d truncated", i)
		}
		enc := b[pos]
		pos++
		off, ok2 := uv()
		ln, ok3 := uv()
		if !ok2 || !ok3 || cnt == 0 || cnt > uint64(p.records) || enc > listBitmap || ln == 0 || off > 1<<40 || ln > 1<<40 {
			return nil, postingsErr("key %d (field %d) has a bad count, encoding or extent", i, f)
		}
		if len(refs) > 0 {
			pr := refs[len(refs)-1]
			if pr.field > f || pr.field == f && pr.value >= v {
				return nil, postingsErr("key %d is out of order", i)
			}
		}
		refs = append(refs, pendingKey{f, v, listRef{off: int64(off), n: int64(ln), count: int(cnt), enc: enc}})
	}
	if pos >= len(b) || b[pos] != 2 {
		return nil, postingsErr("hashed field count missing or not 2")
	}
	pos++
	for i := range 2 {
		if len(b)-pos < 14 {
			return nil, postingsErr("hashed field %d truncated", i)
		}
		if b[pos] != byte(FieldSession+i) || b[pos+1] > maxBucketBits {
			return nil, postingsErr("hashed field %d: field %d, %d bucket bits", i, b[pos], b[pos+1])
		}
		h := hashedRef{k: int(b[pos+1]), e: le.Uint32(b[pos+2:]), dirOff: int64(le.Uint32(b[pos+6:])), entOff: int64(le.Uint32(b[pos+10:]))}
		if h.e > p.records {
			return nil, postingsErr("hashed field %d has %d entries for %d records", FieldSession+i, h.e, p.records)
		}
		p.hashed[i] = h
		pos += 14
	}
	p.data = int64(pos)
	p.dataLen = int64(len(b) - pos)
	if p.dataLen >= 1<<32 {
		return nil, postingsErr("data area of %d bytes, at most 4 GiB", p.dataLen)
	}
	if err := p.setKeys(refs); err != nil {
		return nil, err
	}
	for i := range p.hashed {
		h := &p.hashed[i]
		if h.dirOff+4<<h.k > p.dataLen || h.entOff+int64(h.e)*int64(1+w) > p.dataLen {
			return nil, postingsErr("hashed field %d lies outside the section", FieldSession+i)
		}
		d := b[p.data+h.dirOff:]
		h.dir = make([]uint32, 1<<h.k)
		for j := range h.dir {
			h.dir[j] = le.Uint32(d[4*j:])
			if h.dir[j] > h.e || j > 0 && h.dir[j] < h.dir[j-1] {
				return nil, postingsErr("hashed field %d: bucket %d starts at entry %d", FieldSession+i, j, h.dir[j])
			}
		}
	}
	return p, nil
}

// pendingKey is a key of the table as ParsePostings reads it.
type pendingKey struct {
	field byte
	value string
	ref   listRef
}

// setKeys builds the key table from refs, sorted by field then value,
// each list inside the data area.
func (p *Postings) setKeys(refs []pendingKey) error {
	total := 0
	for _, r := range refs {
		total += len(r.value)
	}
	if total >= 1<<32 {
		return postingsErr("%d bytes of key values, at most 4 GiB", total)
	}
	var keys strings.Builder
	keys.Grow(total)
	p.ents = make([]keyEnt, len(refs))
	f := byte(FieldTenant)
	for i, r := range refs {
		if r.ref.off+r.ref.n > p.dataLen {
			return postingsErr("list of field %d value %q lies outside the section", r.field, r.value)
		}
		for ; f < r.field; f++ {
			p.fields[f+1] = int32(i)
		}
		keys.WriteString(r.value)
		p.ents[i] = keyEnt{end: uint32(keys.Len()), off: uint32(r.ref.off), n: uint32(r.ref.n), count: uint32(r.ref.count), enc: r.ref.enc}
	}
	for ; f < firstHashed; f++ {
		p.fields[f+1] = int32(len(refs))
	}
	p.keys = keys.String()
	return nil
}

// SetBase sets the file offset of the section, so that Lookup reads at the
// right place.
func (p *Postings) SetBase(sectionOffset int64) { p.base = sectionOffset + p.data }

// Records returns the record count the section covers.
func (p *Postings) Records() int { return int(p.records) }

// Has reports whether an exact field has value v, without reading.
func (p *Postings) Has(field byte, v string) bool {
	if field < FieldTenant || field >= firstHashed {
		return true
	}
	_, ok := p.find(field, v)
	return ok
}

// Count returns the length of an exact field's list without reading it.
func (p *Postings) Count(field byte, v string) int {
	if field < FieldTenant || field >= firstHashed {
		return -1
	}
	r, _ := p.find(field, v)
	return r.count
}

// Lookup reads and checks the list of value v of field. An absent value
// gives the empty list.
func (p *Postings) Lookup(read ReadAt, field byte, v string) (List, error) {
	switch {
	case field >= firstHashed && field < numFields:
		return p.lookupHashed(read, field, v)
	case field < FieldTenant || field >= firstHashed:
		return List{}, nil
	}
	r, ok := p.find(field, v)
	if !ok {
		return List{}, nil
	}
	b := make([]byte, r.n)
	if err := read(b, p.base+r.off); err != nil {
		return List{}, err
	}
	l, err := decodeList(b, r.enc, r.count, p.records)
	if err != nil {
		return List{}, fmt.Errorf("%w (field %d value %q)", err, field, v)
	}
	return l, nil
}

func decodeList(b []byte, enc byte, count int, records uint32) (List, error) {
	if enc == listBitmap {
		base, n := binary.Uvarint(b)
		if n <= 0 || base >= uint64(records) || n == len(b) {
			return List{}, postingsErr("bitmap list header bad")
		}
		bm := b[n:]
		if bm[0]&1 == 0 || bm[len(bm)-1] == 0 || base+uint64(len(bm))*8 > uint64(records)+7 {
			return List{}, postingsErr("bitmap list does not start at its base or runs past the records")
		}
		ones := 0
		for _, by := range bm {
			ones += bits.OnesCount8(by)
		}
		last := base + uint64(len(bm)-1)*8 + uint64(7-bits.LeadingZeros8(bm[len(bm)-1]))
		if ones != count || last >= uint64(records) {
			return List{}, postingsErr("bitmap list holds %d ordinals (last %d), its key says %d of %d records", ones, last, count, records)
		}
		return List{bits: bm, base: uint32(base), count: count}, nil
	}
	ords := make([]uint32, 0, count)
	var prev uint64
	for p := 0; p < len(b); {
		v, n := binary.Uvarint(b[p:])
		if n <= 0 {
			return List{}, postingsErr("bad varint in list")
		}
		p += n
		if len(ords) > 0 {
			if v == 0 {
				return List{}, postingsErr("list does not increase")
			}
			v += prev
		}
		if v >= uint64(records) || len(ords) == count {
			return List{}, postingsErr("list ordinal %d out of range or more than %d ordinals", v, count)
		}
		ords = append(ords, uint32(v))
		prev = v
	}
	if len(ords) != count {
		return List{}, postingsErr("list holds %d ordinals, its key says %d", len(ords), count)
	}
	return List{ords: ords, count: count}, nil
}

func (p *Postings) lookupHashed(read ReadAt, field byte, v string) (List, error) {
	hr := p.hashed[field-firstHashed]
	if hr.e == 0 {
		return List{candidates: true}, nil
	}
	h := HashValue(field, v)
	bk := bucketOf(h, hr.k)
	lo, hi := hr.dir[bk], hr.e
	if int(bk)+1 < len(hr.dir) {
		hi = hr.dir[bk+1]
	}
	if lo == hi {
		return List{candidates: true}, nil
	}
	stride := p.ef.stride
	b := make([]byte, int(hi-lo)*stride)
	if err := read(b, p.base+hr.entOff+int64(lo)*int64(stride)); err != nil {
		return List{}, err
	}
	fp := p.ef.fingerprint(h, hr.k)
	var out []uint32
	prev := uint32(0)
	for i := 0; i < len(b); i += stride {
		efp, o := p.ef.get(b[i:])
		if o >= p.records || i > 0 && o <= prev {
			return List{}, postingsErr("hashed field %d bucket %d: ordinal %d out of range or order", field, bk, o)
		}
		prev = o
		if efp == fp {
			out = append(out, o)
		}
	}
	return List{ords: out, count: len(out), candidates: true}, nil
}
