package query

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"

	"github.com/vellumlog/vellum/chain"
)

// CursorKeyLabel is the label to derive the cursor key with:
// key.Derive(CursorKeyLabel), so the chain key never tags cursors itself.
const CursorKeyLabel = "vellum query cursor"

// Cursor wire format, version 2. Wire constants: do not change; a new
// layout gets a new version.
//
//	offset size field
//	     0    1 version (2)
//	     1    1 flags: bit 0 set = descending order; other bits zero
//	     2    8 position time, Unix nanoseconds, int64 little-endian
//	    10    8 position seq, uint64 little-endian
//	    18    8 high-water seq (Query.MaxSeq), uint64 little-endian, >= 1
//	          and >= the position seq
//	    26   32 tag = HMAC-SHA256(key, cursorDomain || bytes 0..25 || Fingerprint)
//
// The 58 bytes are encoded as unpadded base64url (78 characters).
//
// The high-water seq is the last seq the store held when the query's first
// page was answered. Every later page is bounded by it, so paging ends:
// records appended after the first page (among them the audit.query
// records the pages themselves append) are never returned.
//
// Version 1 (50 bytes, 67 characters: the same layout without the
// high-water seq, tagged under "vellum cursor v1\x00") did not bound
// paging. DecodeCursor refuses it with its own reason ("version 1 ...
// start again without a cursor") rather than accept a cursor that could
// page forever.
const (
	cursorVersion   = 2
	cursorFlagDesc  = 1 << 0
	cursorHeadLen   = 26
	cursorLen       = cursorHeadLen + 32
	cursorDomain    = "vellum cursor v2\x00"
	cursorV1Version = 1
	cursorV1Len     = 50
)

var cursorEncoding = base64.RawURLEncoding.Strict()

// Cursor is what a decoded cursor carries: the position the next page
// starts strictly after, and the high-water seq that bounds every page.
type Cursor struct {
	After  Position
	MaxSeq uint64
}

// Apply sets q.After and q.MaxSeq from c, so q continues where the page
// that made c ended, over the log as it stood at the first page.
func (c Cursor) Apply(q *Query) {
	after := c.After
	q.After = &after
	q.MaxSeq = c.MaxSeq
}

// EncodeCursor returns the opaque cursor that continues q after pos. It
// pins q.MaxSeq, which the caller must have set to the log's last seq when
// the first page was answered (at least pos.Seq). key must not be nil; see
// CursorKeyLabel.
func EncodeCursor(key *chain.Key, q *Query, pos Position) string {
	b := make([]byte, cursorHeadLen, cursorLen)
	b[0] = cursorVersion
	if q.Desc {
		b[1] = cursorFlagDesc
	}
	binary.LittleEndian.PutUint64(b[2:], uint64(pos.Time))
	binary.LittleEndian.PutUint64(b[10:], pos.Seq)
	binary.LittleEndian.PutUint64(b[18:], q.MaxSeq)
	tag := cursorTag(key, q, b)
	b = append(b, tag[:]...)
	return cursorEncoding.EncodeToString(b)
}

// DecodeCursor checks cursor s against q and returns what it carries.
// Every failure wraps ErrBadCursor and says whether the cursor is
// malformed, of a retired or unknown version, made for the other order, or
// does not verify (forged, altered, or made for other filters). key must
// not be nil. q.After and q.MaxSeq play no part; set them with
// Cursor.Apply.
func DecodeCursor(key *chain.Key, q *Query, s string) (Cursor, error) {
	want := cursorEncoding.EncodedLen(cursorLen)
	if len(s) == cursorEncoding.EncodedLen(cursorV1Len) {
		if b, err := cursorEncoding.DecodeString(s); err == nil && b[0] == cursorV1Version {
			return Cursor{}, fmt.Errorf("%w: version 1, made by an older server whose cursors did not bound paging; start again without a cursor", ErrBadCursor)
		}
	}
	if len(s) != want {
		return Cursor{}, fmt.Errorf("%w: malformed (want %d characters, got %d)", ErrBadCursor, want, len(s))
	}
	b, err := cursorEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, fmt.Errorf("%w: malformed (not base64url)", ErrBadCursor)
	}
	if b[0] != cursorVersion {
		return Cursor{}, fmt.Errorf("%w: unknown version %d", ErrBadCursor, b[0])
	}
	if b[1]&^cursorFlagDesc != 0 {
		return Cursor{}, fmt.Errorf("%w: malformed (unknown flags %#x)", ErrBadCursor, b[1])
	}
	// The order is in the clear and covered by the tag, so saying it
	// differs before checking the tag reveals nothing.
	if desc := b[1]&cursorFlagDesc != 0; desc != q.Desc {
		return Cursor{}, fmt.Errorf("%w: made for order=%s, but this query has order=%s", ErrBadCursor, orderName(desc), orderName(q.Desc))
	}
	tag := cursorTag(key, q, b[:cursorHeadLen])
	if !chain.Equal(tag[:], b[cursorHeadLen:]) {
		return Cursor{}, fmt.Errorf("%w: does not verify (forged, altered, or made for other filters or by another server key)", ErrBadCursor)
	}
	c := Cursor{
		After: Position{
			Time: int64(binary.LittleEndian.Uint64(b[2:])),
			Seq:  binary.LittleEndian.Uint64(b[10:]),
		},
		MaxSeq: binary.LittleEndian.Uint64(b[18:]),
	}
	if c.MaxSeq == 0 || c.After.Seq > c.MaxSeq {
		return Cursor{}, fmt.Errorf("%w: malformed (high-water seq %d, position seq %d)", ErrBadCursor, c.MaxSeq, c.After.Seq)
	}
	return c, nil
}

func cursorTag(key *chain.Key, q *Query, head []byte) [32]byte {
	fp := q.Fingerprint()
	return key.Sum([]byte(cursorDomain), head[:cursorHeadLen], fp[:])
}

func orderName(desc bool) string {
	if desc {
		return "desc"
	}
	return "asc"
}
