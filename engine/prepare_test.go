package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/redact"
)

// redactableRecs returns records with personal data in the fields a
// redactor rewrites: attributes, outcome.reason, tool arguments, and a
// redaction list a client already sent.
func redactableRecs() []vellum.Record {
	recs := make([]vellum.Record, 3)
	for i := range recs {
		recs[i] = rec(i)
		recs[i].Attributes["contact"] = "jane.doe@example.com"
		recs[i].Outcome.Reason = "mailed bob@example.org"
		recs[i].Tool.Arguments = json.RawMessage(`{"to":"carol@example.net","n":1}`)
		recs[i].Redactions = []vellum.Redaction{{Field: "attributes.note", Rule: "CLIENT", Count: 1}}
	}
	return recs
}

// TestPrepareOwned: PrepareOwned encodes exactly what Prepare encodes with
// the same redactor, rewriting the records it was handed in place, while
// Prepare leaves the caller's records as they were.
func TestPrepareOwned(t *testing.T) {
	rd, err := redact.New(redact.Config{}, redact.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := testOpts(t)
	o.Redactor = rd
	e := open(t, t.TempDir(), o)
	defer e.Close()

	shared := redactableRecs()
	pristine := redactableRecs()
	p1, err := e.Prepare(shared...)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(shared, pristine) {
		t.Fatalf("Prepare changed the caller's records:\n%+v\nwant\n%+v", shared, pristine)
	}
	owned := redactableRecs()
	p2, err := e.PrepareOwned(owned)
	if err != nil {
		t.Fatal(err)
	}
	if p1.Len() != p2.Len() || p1.Bytes() != p2.Bytes() {
		t.Fatalf("Prepare %d records %d bytes, PrepareOwned %d records %d bytes", p1.Len(), p1.Bytes(), p2.Len(), p2.Bytes())
	}
	for i := range p1.items {
		if !bytes.Equal(p1.items[i].enc, p2.items[i].enc) {
			t.Fatalf("record %d encodes differently", i)
		}
		if bytes.Contains(p2.items[i].enc, []byte("@example.")) {
			t.Fatalf("record %d: an e-mail address left unredacted", i)
		}
		if owned[i].Attributes["contact"] == pristine[i].Attributes["contact"] || len(owned[i].Redactions) <= 1 {
			t.Fatalf("record %d was not redacted in place: %+v", i, owned[i])
		}
	}
	// Both append, and read back as the same records.
	s1, err := e.AppendPrepared(ctx, p1)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := e.AppendPrepared(ctx, p2)
	if err != nil {
		t.Fatal(err)
	}
	for i := range s1 {
		a, err := e.Get(ctx, s1[i])
		if err != nil {
			t.Fatal(err)
		}
		b, err := e.Get(ctx, s2[i])
		if err != nil {
			t.Fatal(err)
		}
		// What the store assigns differs; what the caller sent must not.
		a.Seq, a.Time, a.KeyID, a.PrevMAC, a.MAC = b.Seq, b.Time, b.KeyID, b.PrevMAC, b.MAC
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("record %d reads back differently:\n%+v\n%+v", i, a, b)
		}
	}
	// A record that fails validation is named, as by Prepare.
	bad := redactableRecs()
	bad[1].Outcome.Status = ""
	_, err = e.PrepareOwned(bad)
	var re *RecordError
	if !errors.As(err, &re) || re.Index != 1 {
		t.Fatalf("invalid record 1: %v", err)
	}
}

// TestPrepareOneRecord: a one-record call whose encoding fits
// oneRecordBytes is prepared in one allocation (its Prepared, seq and
// encoding together), one that does not in its own buffer; either way the
// encoding is the record's canonical one, and the record reads back as
// appended.
func TestPrepareOneRecord(t *testing.T) {
	e := open(t, t.TempDir(), testOpts(t))
	defer e.Close()
	small := benchRecs(1)[0]
	large := small
	large.Outcome.Reason = strings.Repeat("r", oneRecordBytes)
	for _, c := range []struct {
		name string
		r    vellum.Record
	}{{"small", small}, {"large", large}} {
		want, err := c.r.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		p, err := e.Prepare(c.r)
		if err != nil {
			t.Fatal(err)
		}
		if p.Len() != 1 || p.Size(0) != len(want) || p.Bytes() != len(want) || !bytes.Equal(p.items[0].enc, want) {
			t.Fatalf("%s: prepared %d records, %d bytes: %x\nwant 1 record %x", c.name, p.Len(), p.Bytes(), p.items[0].enc, want)
		}
		if cap(p.items[0].enc) != len(want) {
			t.Fatalf("%s: the encoding's capacity is %d, want %d (nothing may append into what follows)", c.name, cap(p.items[0].enc), len(want))
		}
		seqs, err := e.AppendPrepared(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.Get(ctx, seqs[0])
		if err != nil {
			t.Fatal(err)
		}
		if got.Outcome.Reason != c.r.Outcome.Reason || got.TraceID != c.r.TraceID {
			t.Fatalf("%s: read back %+v", c.name, got)
		}
	}
	recs := []vellum.Record{small}
	if n := testing.AllocsPerRun(100, func() { e.Prepare(recs...) }); n != 1 {
		t.Errorf("a one-record call of %d bytes allocates %v times, want once", len(mustEncode(t, small)), n)
	}
}

func mustEncode(t *testing.T, r vellum.Record) []byte {
	t.Helper()
	b, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPrepareRefusalOrder: a call is refused for its first record that
// cannot be stored, and for a record both invalid and too large, as
// invalid; the same with and without a Redactor (which Prepare applies
// record by record, so it measures each record after validating it).
func TestPrepareRefusalOrder(t *testing.T) {
	ok := benchRecs(1)[0]
	bad := ok
	bad.Action = "Tool.Call"
	big := ok
	big.Outcome.Reason = strings.Repeat("r", 2000)
	bigBad := big
	bigBad.Action = "Tool.Call"
	cases := []struct {
		recs  []vellum.Record
		index int
		want  error
	}{
		{[]vellum.Record{ok, ok, bad, big}, 2, vellum.ErrInvalid},
		{[]vellum.Record{ok, big, bad}, 1, ErrTooLarge},
		{[]vellum.Record{ok, bigBad, big}, 1, vellum.ErrInvalid},
		{[]vellum.Record{big, ok}, 0, ErrTooLarge},
		{[]vellum.Record{ok, ok, bad}, 2, vellum.ErrInvalid},
		{[]vellum.Record{bad, big}, 0, vellum.ErrInvalid},
	}
	rd, err := redact.New(redact.Config{}, redact.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, redactor := range []Redactor{nil, rd} {
		o := testOpts(t)
		o.MaxRecordSize = 1000
		o.Redactor = redactor
		e := open(t, t.TempDir(), o)
		for i, c := range cases {
			_, err := e.Prepare(c.recs...)
			var re *RecordError
			if !errors.As(err, &re) || re.Index != c.index || !errors.Is(err, c.want) {
				t.Errorf("redactor %v, case %d: %v, want record %d: %v", redactor != nil, i, err, c.index, c.want)
			}
		}
		e.Close()
	}
}
