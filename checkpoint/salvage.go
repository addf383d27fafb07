package checkpoint

import "fmt"

// LogDamage is a stretch of a checkpoint log whose framing does not verify.
type LogDamage struct {
	Offset, Length int64
	Reason         string
}

// SalvageLog reads every entry of a checkpoint log that still verifies,
// for a verifier that must say which checkpoints it could check: unlike
// ParseLog it does not stop at damage, but skips to the next entry whose
// framing verifies, and lists what it skipped. Damage at the end that no
// valid entry follows is reported as such too (whether it is an
// incomplete write is the caller's call). Entries' notes are not parsed
// or verified here.
func SalvageLog(b []byte) ([]Entry, []LogDamage) {
	var entries []Entry
	var damage []LogDamage
	for off := 0; off < len(b); {
		n, reason := entryAt(b, off)
		if reason == "" {
			entries = append(entries, Entry{Offset: int64(off), Note: b[off+entryHead : off+n-entryTail]})
			off += n
			continue
		}
		q := off + 1
		for ; q < len(b); q++ {
			if q+entryHead+entryTail <= len(b) && string(b[q:q+4]) == entryMagic {
				if _, r := entryAt(b, q); r == "" {
					break
				}
			}
		}
		damage = append(damage, LogDamage{Offset: int64(off), Length: int64(q - off), Reason: fmt.Sprintf("%s (%d bytes skipped)", reason, q-off)})
		off = q
	}
	return entries, damage
}
