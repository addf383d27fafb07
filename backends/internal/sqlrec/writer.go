package sqlrec

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/backends"
	"github.com/vellumlog/vellum/chain"
)

// Redactor rewrites personal data in a record before it is stored (the
// engine's Redactor; redact.Redactor implements it).
type Redactor interface {
	Redact(r *vellum.Record)
}

// DefaultMaxRecordSize bounds one record's canonical encoding, as in the
// engine.
const DefaultMaxRecordSize = 1 << 20

// Item is one record prepared on its caller's goroutine: validated,
// redacted and size-checked.
type Item struct {
	Rec vellum.Record
	// Dedup is true when the record has an event id to deduplicate on.
	Dedup bool
}

// Prepare validates, redacts and size-checks recs, without modifying the
// caller's records. Errors wrap backends.ErrInvalid or ErrTooLarge and name
// the record when there are several. noNUL refuses text a database cannot
// store (PostgreSQL), naming the backend.
func Prepare(recs []vellum.Record, red Redactor, maxSize int, noNUL string) ([]Item, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxRecordSize
	}
	wrap := func(i int, err error) error {
		if len(recs) > 1 {
			return fmt.Errorf("record %d: %w", i, err)
		}
		return err
	}
	items := make([]Item, len(recs))
	for i := range recs {
		if err := recs[i].Validate(); err != nil {
			return nil, wrap(i, err)
		}
		r := recs[i]
		r.Seq, r.KeyID, r.PrevMAC, r.MAC = 0, "", vellum.MAC{}, vellum.MAC{}
		r.Time = timeZero
		if red != nil {
			r.Attributes = maps.Clone(r.Attributes)
			r.Redactions = slices.Clone(r.Redactions)
			red.Redact(&r)
		}
		if n := r.EncodedSize(); n > maxSize {
			return nil, wrap(i, fmt.Errorf("%w: %d bytes encoded, limit %d", backends.ErrTooLarge, n, maxSize))
		}
		if noNUL != "" {
			if f, ok := HasNUL(&r); ok {
				return nil, wrap(i, fmt.Errorf("%w: %s holds a NUL character, which %s text cannot store", vellum.ErrInvalid, f, noNUL))
			}
		}
		items[i] = Item{Rec: r, Dedup: r.EventID != ""}
	}
	return items, nil
}

// DedupKey is the key a (tenant, event_id) pair is deduplicated on within
// one group.
func DedupKey(r *vellum.Record) string {
	return strconv.Itoa(len(r.TenantID)) + ":" + r.TenantID + r.EventID
}

// Chain is a writer's end of its HMAC chain: the next seq, the last MAC and
// the last receipt time. It is not safe for concurrent use; the group
// commit goroutine owns it.
type Chain struct {
	Keys     *chain.Keyring
	Next     uint64
	Prev     vellum.MAC
	LastTime int64

	hasher *chain.Hasher
	keyID  string
	buf    []byte
}

// Stamp assigns r the next seq, a receipt time from now (strictly after
// the last), the active key id, and its place in the chain.
func (c *Chain) Stamp(r *vellum.Record, now int64) error {
	if c.hasher == nil {
		k := c.Keys.Active()
		c.hasher, c.keyID = k.NewHasher(), k.ID().String()
	}
	if now <= c.LastTime {
		now = c.LastTime + 1
	}
	r.Seq = c.Next
	r.Time = unixTime(now)
	var err error
	if c.buf, err = r.AppendBinary(c.buf[:0]); err != nil {
		return err
	}
	r.KeyID = c.keyID
	r.PrevMAC = c.Prev
	r.MAC = c.hasher.Next(c.Prev, c.buf)
	c.Prev, c.Next, c.LastTime = r.MAC, c.Next+1, now
	return nil
}

// Genesis is the chain value before a SQL writer's first record:
// chain.Genesis of an id derived from the database's store id and the
// writer id (empty for SQLite's single writer).
func Genesis(storeID [16]byte, writer string, keyID chain.KeyID) vellum.MAC {
	if writer == "" {
		return chain.Genesis(storeID, keyID)
	}
	h := sha256.New()
	h.Write([]byte("vellum sql writer v1\x00"))
	h.Write(storeID[:])
	h.Write([]byte(writer))
	var id [16]byte
	copy(id[:], h.Sum(nil))
	return chain.Genesis(id, keyID)
}
