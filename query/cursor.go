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

// Cursor wire format, version 1. Wire constants: do not change; a new
// layout gets a new version.
//
//	offset size field
//	     0    1 version (1)
//	     1    1 flags: bit 0 set = descending order; other bits zero
//	     2    8 position time, Unix nanoseconds, int64 little-endian
//	    10    8 position seq, uint64 little-endian
//	    18   32 tag = HMAC-SHA256(key, cursorDomain || bytes 0..17 || Fingerprint)
//
// The 50 bytes are encoded as unpadded base64url (67 characters).
const (
	cursorVersion  = 1
	cursorFlagDesc = 1 << 0
	cursorHeadLen  = 18
	cursorLen      = cursorHeadLen + 32
	cursorDomain   = "vellum cursor v1\x00"
)

var cursorEncoding = base64.RawURLEncoding.Strict()

// EncodeCursor returns the opaque cursor that continues q after pos. key
// must not be nil; see CursorKeyLabel.
func EncodeCursor(key *chain.Key, q *Query, pos Position) string {
	b := make([]byte, cursorHeadLen, cursorLen)
	b[0] = cursorVersion
	if q.Desc {
		b[1] = cursorFlagDesc
	}
	binary.LittleEndian.PutUint64(b[2:], uint64(pos.Time))
	binary.LittleEndian.PutUint64(b[10:], pos.Seq)
	tag := cursorTag(key, q, b)
	b = append(b, tag[:]...)
	return cursorEncoding.EncodeToString(b)
}

// DecodeCursor checks cursor s against q and returns the position it
// continues after. Every failure wraps ErrBadCursor and says whether the
// cursor is malformed, of another version, made for the other order, or
// does not verify (forged, altered, or made for other filters). key must
// not be nil.
func DecodeCursor(key *chain.Key, q *Query, s string) (Position, error) {
	if len(s) != cursorEncoding.EncodedLen(cursorLen) {
		return Position{}, fmt.Errorf("%w: malformed (want %d characters, got %d)", ErrBadCursor, cursorEncoding.EncodedLen(cursorLen), len(s))
	}
	b, err := cursorEncoding.DecodeString(s)
	if err != nil {
		return Position{}, fmt.Errorf("%w: malformed (not base64url)", ErrBadCursor)
	}
	if b[0] != cursorVersion {
		return Position{}, fmt.Errorf("%w: unknown version %d", ErrBadCursor, b[0])
	}
	if b[1]&^cursorFlagDesc != 0 {
		return Position{}, fmt.Errorf("%w: malformed (unknown flags %#x)", ErrBadCursor, b[1])
	}
	// The order is in the clear and covered by the tag, so saying it
	// differs before checking the tag reveals nothing.
	if desc := b[1]&cursorFlagDesc != 0; desc != q.Desc {
		return Position{}, fmt.Errorf("%w: made for order=%s, but this query has order=%s", ErrBadCursor, orderName(desc), orderName(q.Desc))
	}
	tag := cursorTag(key, q, b[:cursorHeadLen])
	if !chain.Equal(tag[:], b[cursorHeadLen:]) {
		return Position{}, fmt.Errorf("%w: does not verify (forged, altered, or made for other filters or by another server key)", ErrBadCursor)
	}
	return Position{
		Time: int64(binary.LittleEndian.Uint64(b[2:])),
		Seq:  binary.LittleEndian.Uint64(b[10:]),
	}, nil
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
