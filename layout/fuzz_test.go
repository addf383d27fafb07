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
