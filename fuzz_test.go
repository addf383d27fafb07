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
		var pf Fields
		peekErr := PeekFields(b, &pf) // must not panic either
		var r Record
		if err := r.UnmarshalBinary(b); err != nil {
			return
		}
		// What the decoder accepts, PeekFields reads the same, and
		// EncodedSize measures exactly.
		if peekErr != nil {
			t.Fatalf("PeekFields rejects a record UnmarshalBinary accepts: %v", peekErr)
		}
		for _, c := range [...]struct {
			got  []byte
			want string
		}{
			{pf.EventID, r.EventID}, {pf.TenantID, r.TenantID}, {pf.UserID, r.UserID}, {pf.Action, r.Action}, {pf.SessionID, r.SessionID},
			{pf.TraceID, r.TraceID}, {pf.Tool, r.Tool.Name}, {pf.Model, r.Model.Name}, {pf.Status, r.Outcome.Status},
		} {
			if string(c.got) != c.want {
				t.Fatalf("PeekFields read %q, UnmarshalBinary %q", c.got, c.want)
			}
		}
		if n := r.EncodedSize(); n != len(b) {
			t.Fatalf("EncodedSize = %d, encoding is %d bytes", n, len(b))
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
