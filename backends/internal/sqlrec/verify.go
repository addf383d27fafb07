package sqlrec

import (
	"fmt"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/backends"
	"github.com/vellumlog/vellum/chain"
)

// Verifier walks one writer's rows in seq order and checks the chain: no
// gap, each prev_mac equal to the MAC before it, and, for every row that
// holds the whole record (not a summary), the MAC recomputed with the key.
// It is not safe for concurrent use.
type Verifier struct {
	Backend string
	Writer  string
	Keys    *chain.Keyring
	// Genesis, when set, is the prev MAC the writer's seq 1 must carry.
	Genesis *vellum.MAC
	// Horizon is the first seq retention kept; rows may start there.
	Checked, Summaries int

	last    *Row
	hashers map[string]*chain.Hasher
	buf     []byte
}

func (v *Verifier) bad(seq uint64, format string, args ...any) error {
	return &backends.BadRowError{Backend: v.Backend, Writer: v.Writer, Seq: seq, Reason: fmt.Sprintf(format, args...)}
}

// Next checks row, the next of the writer's rows in seq order.
func (v *Verifier) Next(row *Row) error {
	if len(row.PrevMAC) != vellum.MACSize || len(row.MAC) != vellum.MACSize {
		return v.bad(row.Seq, "prev_mac or mac is not %d bytes", vellum.MACSize)
	}
	if v.last == nil {
		if row.Seq == 1 && v.Genesis != nil && string(row.PrevMAC) != string(v.Genesis[:]) {
			return v.bad(row.Seq, "prev_mac is not the writer's genesis value")
		}
	} else {
		if row.Seq != v.last.Seq+1 {
			return v.bad(v.last.Seq+1, "missing: the rows go from seq %d to %d", v.last.Seq, row.Seq)
		}
		if string(row.PrevMAC) != string(v.last.MAC) {
			return v.bad(row.Seq, "prev_mac does not equal the mac of seq %d (a row was changed, removed or inserted)", v.last.Seq)
		}
		if row.TimeNS < v.last.TimeNS {
			return v.bad(row.Seq, "time is before the time of seq %d", v.last.Seq)
		}
	}
	if row.Summary {
		v.Summaries++
	} else {
		if err := v.checkMAC(row); err != nil {
			return err
		}
		v.Checked++
	}
	r := *row
	v.last = &r
	return nil
}

func (v *Verifier) checkMAC(row *Row) error {
	h := v.hashers[row.KeyID]
	if h == nil {
		id, err := chain.ParseKeyID(row.KeyID)
		if err != nil {
			return v.bad(row.Seq, "key_id %q is not a key id", row.KeyID)
		}
		k, err := v.Keys.Lookup(id)
		if err != nil {
			return v.bad(row.Seq, "written with key id %s, which is not among the keys given", row.KeyID)
		}
		if v.hashers == nil {
			v.hashers = map[string]*chain.Hasher{}
		}
		h = k.NewHasher()
		v.hashers[row.KeyID] = h
	}
	rec, err := row.Stored()
	if err != nil {
		return v.bad(row.Seq, "%v", err)
	}
	if v.buf, err = rec.AppendBinary(v.buf[:0]); err != nil {
		return v.bad(row.Seq, "cannot encode: %v", err)
	}
	var prev, mac vellum.MAC
	copy(prev[:], row.PrevMAC)
	copy(mac[:], row.MAC)
	if _, err := h.Check(row.Seq, prev, v.buf, mac); err != nil {
		return v.bad(row.Seq, "mac does not match the row's contents (the row was changed)")
	}
	return nil
}

// Last returns the last row checked, or nil.
func (v *Verifier) Last() *Row { return v.last }
