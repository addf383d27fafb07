package checkpoint

import (
	"bytes"
	"testing"
)

// FuzzOpen feeds arbitrary bytes to the signed-note and checkpoint parsers:
// they must never panic, a note the test key did not sign must never open,
// and an accepted body must re-marshal to the same text.
func FuzzOpen(f *testing.F) {
	s, v, _ := fixedKey(f, "vellum-test", 7)
	good, _ := Sign(sample(), s)
	f.Add(good.Note)
	f.Add([]byte(body(good.Note)))
	f.Add([]byte("o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— k AAAAAA==\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		if c, err := Parse(msg); err == nil && !bytes.Equal(c.Marshal(), msg) {
			t.Fatalf("body %q re-marshals to %q", msg, c.Marshal())
		}
		if sn, err := ParseNote(msg); err == nil {
			if !bytes.HasPrefix(msg, sn.Marshal()) {
				t.Fatalf("note body is not the checkpoint's text")
			}
		}
		if sn, err := Open(msg, v); err == nil {
			// Only notes whose body and signature are exactly right open:
			// re-signing the parsed body must give the same note when it
			// carries only our signature.
			again, _ := Sign(sn.Checkpoint, s)
			if bytes.Count(msg, []byte("\n— ")) == 1 && !bytes.Equal(again.Note, msg) {
				t.Fatalf("opened a note that is not the one we sign:\n%q\n%q", msg, again.Note)
			}
		}
	})
}

// FuzzParseLog feeds arbitrary bytes to the checkpoint log reader: it must
// never panic, and the entries it returns lie inside the input.
func FuzzParseLog(f *testing.F) {
	s, _, _ := fixedKey(f, "vellum-test", 7)
	good, _ := Sign(sample(), s)
	one := frame(good.Note)
	f.Add(one)
	f.Add(append(bytes.Clone(one), one[:9]...))
	f.Add([]byte("VCKP\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := ParseLog("fuzz", b)
		if err != nil {
			return
		}
		if res.Size > int64(len(b)) || (res.TornAt >= 0 && res.TornAt != res.Size) {
			t.Fatalf("bad result %+v for %d bytes", res, len(b))
		}
		var rebuilt []byte
		for _, e := range res.Entries {
			rebuilt = append(rebuilt, frame(e.Note)...)
		}
		if !bytes.Equal(rebuilt, b[:res.Size]) {
			t.Fatal("entries do not re-frame to the valid prefix")
		}
	})
}

// FuzzSalvageLog: the damage-tolerant log reader never panics, returns
// entries that re-frame to the bytes where they lie, and accounts for
// every byte as an entry or as damage, in order.
func FuzzSalvageLog(f *testing.F) {
	s, _, _ := fixedKey(f, "vellum-test", 7)
	good, _ := Sign(sample(), s)
	one := frame(good.Note)
	two := append(bytes.Clone(one), one...)
	bad := bytes.Clone(two)
	bad[20] ^= 1
	f.Add(two)
	f.Add(bad)
	f.Add(append(bytes.Clone(one), one[:9]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, damage := SalvageLog(b)
		off := int64(0)
		for len(entries) > 0 || len(damage) > 0 {
			switch {
			case len(entries) > 0 && entries[0].Offset == off:
				fr := frame(entries[0].Note)
				if !bytes.Equal(fr, b[off:off+int64(len(fr))]) {
					t.Fatalf("entry at %d does not re-frame to its bytes", off)
				}
				off += int64(len(fr))
				entries = entries[1:]
			case len(damage) > 0 && damage[0].Offset == off && damage[0].Length > 0:
				off += damage[0].Length
				damage = damage[1:]
			default:
				t.Fatalf("offset %d is neither an entry nor damage", off)
			}
		}
		if off != int64(len(b)) {
			t.Fatalf("%d of %d bytes accounted for", off, len(b))
		}
	})
}
