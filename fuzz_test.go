package vellum

import (
	"bytes"
	"testing"
)

// FuzzUnmarshalBinary feeds arbitrary bytes to the record decoder: it must
// never panic, and whatever it accepts must re-encode to the same bytes
// (the encoding is canonical).
func FuzzUnmarshalBinary(f *testing.F) {
	for _, r := range []Record{fullRecord(), {Seq: 1, Action: "a", Outcome: Outcome{Status: "success"}}} {
		b, _ := r.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Record
		if err := r.UnmarshalBinary(b); err != nil {
			return
		}
		again, err := r.MarshalBinary()
		if err != nil {
			t.Fatalf("accepted record does not re-encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("non-canonical input accepted:\n in  %x\n out %x", b, again)
		}
	})
}
