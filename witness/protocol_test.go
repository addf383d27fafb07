package witness

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// specExample is the request body of the example in C2SP tlog-witness.
const specExample = "old 20852014\n" +
	"PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n" +
	"jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n" +
	"5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n" +
	"/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n" +
	"\n" +
	"example.com/behind-the-sofa\n" +
	"20852163\n" +
	"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n" +
	"\n" +
	"— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n" +
	"— example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=\n"

func TestParseAddRequest(t *testing.T) {
	r, err := ParseAddRequest([]byte(specExample))
	if err != nil {
		t.Fatal(err)
	}
	if r.OldSize != 20852014 || len(r.Proof) != 4 || !strings.HasPrefix(string(r.Checkpoint), "example.com/behind-the-sofa\n20852163\n") {
		t.Fatalf("%+v", r)
	}
	if string(r.Marshal()) != specExample {
		t.Fatal("the spec's example does not re-marshal to itself")
	}
	hash := "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n"
	cp := "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— o AAAAAA==\n"
	tests := []struct {
		name, body string
		ok         bool
	}{
		{"no proof", "old 0\n\n" + cp, true},
		{"63 proof lines", "old 5\n" + strings.Repeat(hash, 63) + "\n" + cp, true},
		{"64 proof lines", "old 5\n" + strings.Repeat(hash, 64) + "\n" + cp, false},
		{"leading zero", "old 05\n\n" + cp, false},
		{"plus sign", "old +5\n\n" + cp, false},
		{"no number", "old \n\n" + cp, false},
		{"too big", "old 18446744073709551616\n\n" + cp, false},
		{"not old", "new 5\n\n" + cp, false},
		{"two spaces", "old  5\n\n" + cp, false},
		{"CRLF", "old 5\r\n\r\n" + cp, false},
		{"short hash", "old 5\nAAAA\n\n" + cp, false},
		{"hash with bad padding bits", "old 5\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkax=\n\n" + cp, false},
		{"no empty line", "old 5\n" + hash, false},
		{"no checkpoint", "old 5\n\n", false},
		{"empty", "", false},
		{"too large", "old 5\n\n" + strings.Repeat("x", MaxRequestBytes), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseAddRequest([]byte(tt.body))
			if tt.ok != (err == nil) {
				t.Fatalf("err = %v", err)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("err %v is not ErrMalformed", err)
			}
			if err == nil && string(r.Marshal()) != tt.body {
				t.Fatalf("re-marshals to %q", r.Marshal())
			}
		})
	}
}

// FuzzParseAddRequest feeds arbitrary bytes to the request decoder: it
// must never panic, an accepted request re-marshals to the same bytes, and
// the witness refuses it with a status from the spec (never a panic,
// never a cosignature of something the log did not sign).
func FuzzParseAddRequest(f *testing.F) {
	lg := newTestLog(f, 7)
	lg.grow(40, 'a')
	f.Add([]byte(specExample))
	f.Add(lg.request(0, 10).Marshal())
	f.Add(lg.request(10, 40).Marshal())
	f.Add([]byte("old 0\n\n"))
	w, err := Open(f.TempDir(), &Options{Logs: []Log{{Origin: lg.origin, Key: lg.key}}})
	if err != nil {
		f.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Add(lg.request(0, 10)); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseAddRequest(b)
		if err != nil {
			return
		}
		if !bytes.Equal(r.Marshal(), b) {
			t.Fatalf("%q re-marshals to %q", b, r.Marshal())
		}
		if len(r.Proof) > MaxProofLines {
			t.Fatalf("%d proof lines", len(r.Proof))
		}
		_, err = w.Add(r)
		var re *RefusedError
		if err != nil && (!errors.As(err, &re) || re.Status < 400 || re.Status > 499) {
			t.Fatalf("Add: %v", err)
		}
	})
}
