package collector

import (
	"errors"
	"testing"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/vfs"
)

func TestSpillRecovery(t *testing.T) {
	recs := []vellum.Record{{Action: "a.b", Outcome: vellum.Outcome{Status: "success"}, EventID: "1"},
		{Action: "a.c", Outcome: vellum.Outcome{Status: "failure"}, EventID: "2"}}
	tests := []struct {
		name    string
		corrupt func(b []byte) []byte
		pending int
		wantErr bool
	}{
		{"intact", func(b []byte) []byte { return b }, 2, false},
		{"torn tail", func(b []byte) []byte { return b[:len(b)-3] }, 1, false},
		{"torn header", func(b []byte) []byte { return append(b, 9, 0) }, 2, false},
		{"bad crc", func(b []byte) []byte { b[len(spillMagic)+frameHeader+2] ^= 1; return b }, 0, true},
		{"bad length", func(b []byte) []byte { b[len(spillMagic)+3] = 0xff; return b }, 0, true},
		{"bad magic", func(b []byte) []byte { b[0] = 'X'; return b }, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := vfs.NewMem()
			s, err := openSpill(fs, "/s/spill", 1<<20, 100)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.add(recs); err != nil {
				t.Fatal(err)
			}
			size := s.size
			b := make([]byte, size)
			s.f.ReadAt(b, 0)
			s.close()
			b = tt.corrupt(b)
			fs.Remove("/s/spill")
			f, _ := fs.Create("/s/spill")
			f.Write(b)
			f.Sync()
			f.Close()
			s, err = openSpill(fs, "/s/spill", 1<<20, 100)
			if tt.wantErr {
				if !errors.Is(err, ErrSpillCorrupt) {
					t.Fatalf("err %v, want ErrSpillCorrupt", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.close()
			if s.pending != tt.pending {
				t.Fatalf("pending %d, want %d", s.pending, tt.pending)
			}
			got, _, err := s.next(10)
			if err != nil || len(got) != tt.pending {
				t.Fatalf("next: %d records, %v", len(got), err)
			}
			for i := range got {
				if got[i].EventID != recs[i].EventID || got[i].Action != recs[i].Action {
					t.Fatalf("record %d: %+v", i, got[i])
				}
			}
			// The torn tail is gone: new frames follow the last whole one.
			if err := s.add(recs[:1]); err != nil {
				t.Fatal(err)
			}
			if got, _, _ := s.next(10); len(got) != tt.pending+1 {
				t.Fatalf("after add: %d records", len(got))
			}
		})
	}
}

func TestSpillBounds(t *testing.T) {
	s, err := openSpill(vfs.NewMem(), "/s", 200, 100)
	if err != nil {
		t.Fatal(err)
	}
	r := vellum.Record{Action: "a.b", Outcome: vellum.Outcome{Status: "success"}}
	if err := s.add([]vellum.Record{r}); err != nil {
		t.Fatal(err)
	}
	if err := s.add([]vellum.Record{r, r}); !errors.Is(err, errSpillFull) {
		t.Fatalf("err %v, want errSpillFull at 200 bytes", err)
	}
	if s.pending != 1 {
		t.Fatalf("a refused batch changed the spill: %d", s.pending)
	}
}

// FuzzDecodeFrames: the spill decoder never panics, never reads past its
// input, and a frame it accepts re-encodes to the same bytes.
func FuzzDecodeFrames(f *testing.F) {
	f.Add(appendFrame(nil, []byte(`{"action":"a"}`)))
	f.Add(appendFrame(appendFrame(nil, []byte("x")), []byte("yz"))[:12])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		payloads, n, err := decodeFrames(b, 8)
		if n < 0 || n > len(b) {
			t.Fatalf("consumed %d of %d bytes", n, len(b))
		}
		if err != nil && !errors.Is(err, ErrSpillCorrupt) {
			t.Fatalf("error %v is not ErrSpillCorrupt", err)
		}
		var re []byte
		for _, p := range payloads {
			re = appendFrame(re, p)
		}
		if string(re) != string(b[:n]) {
			t.Fatal("accepted frames do not re-encode to their bytes")
		}
	})
}
