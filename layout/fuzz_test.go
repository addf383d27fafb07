package layout

import (
	"errors"
	"testing"
)

// FuzzLayoutNames feeds arbitrary file names and STORE contents to the
// parsers: they never panic, a name that parses is the one SegmentName
// gives, and a STORE that does not parse is ErrCorrupt.
func FuzzLayoutNames(f *testing.F) {
	f.Add("seg-00000000000000000001.vseg", []byte(`{"format":1,"store_id":"000102030405060708090a0b0c0d0e0f"}`))
	f.Add("seg-18446744073709551615.vseg", []byte(`{"format":1}`))
	f.Add("seg-00000000000000000001.vseg.broken-1", []byte(`[]`))
	f.Fuzz(func(t *testing.T, name string, store []byte) {
		if n, ok := ParseSegmentName(name); ok && SegmentName(n) != name {
			t.Fatalf("%q parses as %d, which is named %q", name, n, SegmentName(n))
		}
		if _, err := parseStore("STORE", store); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("STORE error %v is not ErrCorrupt", err)
		}
	})
}

// FuzzRetentionFiles feeds arbitrary bytes to the retention manifest and
// holds parsers: they never panic, refuse with ErrCorrupt, and what parses
// writes back to something that parses the same.
func FuzzRetentionFiles(f *testing.F) {
	f.Add([]byte(`{"format":1,"through_segment":1,"last_seq":2,"last_mac":"0000000000000000000000000000000000000000000000000000000000000000","range":["0000000000000000000000000000000000000000000000000000000000000000"],"purges":[{"anchor_seq":5,"segments":[{"segment":1,"first_seq":1,"last_seq":2,"last_mac":"0000000000000000000000000000000000000000000000000000000000000000","merkle_root":"0000000000000000000000000000000000000000000000000000000000000000","rule":"x"}]}]}`))
	f.Add([]byte(`{"format":1,"holds":[{"id":"h1","tenant_id":"acme","reason":"litigation","set_by":"admin","set_at":"2026-01-01T00:00:00Z","seq":3}]}`))
	f.Add([]byte(`{"format":1,"holds":[{"id":"h1","since":"2026-01-02T00:00:00Z","until":"2026-01-01T00:00:00Z","reason":"r"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := ParsePurged(b); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("manifest error %v is not ErrCorrupt", err)
			}
		} else if p.Through == 0 || len(p.Segments()) != int(p.Through) {
			t.Fatalf("manifest through %d lists %d segments", p.Through, len(p.Segments()))
		}
		if hs, err := ParseHolds(b); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("holds error %v is not ErrCorrupt", err)
			}
		} else {
			for _, h := range hs {
				if h.Check() != nil {
					t.Fatalf("hold %+v parsed but does not check", h)
				}
			}
		}
	})
}
