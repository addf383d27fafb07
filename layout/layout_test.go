package layout

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/segment"
	"github.com/vellumlog/vellum/vfs"
)

func TestSegmentNames(t *testing.T) {
	for _, n := range []uint64{1, 2, 99, 1<<64 - 1} {
		name := SegmentName(n)
		if len(name) != len("seg-")+20+len(".vseg") {
			t.Fatalf("%q is not 20 digits", name)
		}
		if got, ok := ParseSegmentName(name); !ok || got != n {
			t.Fatalf("ParseSegmentName(%q) = %d, %v", name, got, ok)
		}
	}
	for _, name := range []string{
		"seg-00000000000000000000.vseg", // 0 is not a segment number
		"seg-0000000000000000001.vseg",  // 19 digits
		"seg-00000000000000000001.vseg" + BrokenMarker + "123",
		"seg-00000000000000000001.vseg.tmp",
		"seg-0000000000000000000x.vseg",
		"STORE",
	} {
		if n, ok := ParseSegmentName(name); ok {
			t.Fatalf("ParseSegmentName(%q) = %d, want no segment", name, n)
		}
	}
	if SegmentName(3) >= SegmentName(20) {
		t.Fatal("names do not sort in log order")
	}
}

func TestListSegmentsAndGaps(t *testing.T) {
	m := vfs.NewMem()
	m.MkdirAll(SegmentsPath("/d"), 0o750)
	for _, name := range []string{SegmentName(3), SegmentName(1), SegmentName(2), SegmentName(5), SegmentName(2) + BrokenMarker + "7", "junk"} {
		f, err := m.Create(filepath.Join(SegmentsPath("/d"), name))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	nums, err := ListSegments(m, "/d")
	if err != nil || !slices.Equal(nums, []uint64{1, 2, 3, 5}) {
		t.Fatalf("ListSegments = %v, %v", nums, err)
	}
	if i := FirstGap(nums); i != 3 {
		t.Fatalf("FirstGap = %d, want 3 (segment 4 missing)", i)
	}
	if i := FirstGap([]uint64{4, 5, 6}); i != -1 {
		t.Fatalf("FirstGap of a run after expiry = %d", i)
	}
	if _, err := ListSegments(m, "/nowhere"); err == nil {
		t.Fatal("listing a missing directory succeeded")
	}
}

func TestStoreFile(t *testing.T) {
	m := vfs.NewMem()
	m.MkdirAll("/d", 0o750)
	if _, err := ReadStoreID(m, "/d"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ReadStoreID of a new directory: %v", err)
	}
	if _, err := LoadOrCreateStore(m, "/d", true, time.Now()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("segments without STORE: %v, want ErrCorrupt", err)
	}
	id, err := LoadOrCreateStore(m, "/d", false, time.Now())
	if err != nil || id == [16]byte{} {
		t.Fatalf("create: %x, %v", id, err)
	}
	again, err := LoadOrCreateStore(m, "/d", true, time.Now())
	if err != nil || again != id {
		t.Fatalf("reload: %x, %v; want %x", again, err, id)
	}
	if got, err := ReadStoreID(m.Crash(nil), "/d"); err != nil || got != id {
		t.Fatalf("after a crash: %x, %v", got, err)
	}
	for _, bad := range []string{`{`, `{"format":2,"store_id":"00000000000000000000000000000000"}`, `{"format":1,"store_id":"abc"}`} {
		if err := vfs.WriteFileAtomic(m, "/d", "/d/STORE", []byte(bad)); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadStoreID(m, "/d"); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("STORE %s: %v, want ErrCorrupt", bad, err)
		}
	}
}

func TestCheckLink(t *testing.T) {
	store := [16]byte{1, 2, 3}
	k, err := chain.NewKey(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	first := segment.Header{Number: 1, StoreID: store, FirstSeq: 1, KeyID: k.ID(), PrevMAC: chain.Genesis(store, k.ID())}
	end := End{Number: 1, LastSeq: 10, LastMAC: vellum.MAC{9}}
	next := segment.Header{Number: 2, StoreID: store, FirstSeq: 11, KeyID: k.ID(), PrevMAC: vellum.MAC{9}}
	tests := []struct {
		name   string
		num    uint64
		h      segment.Header
		prev   *End
		fields []string
		offs   []int64
	}{
		{name: "first segment", num: 1, h: first},
		{name: "next segment", num: 2, h: next, prev: &end},
		{name: "after expired segments", num: 7, h: segment.Header{Number: 7, StoreID: store, FirstSeq: 500, PrevMAC: vellum.MAC{5}}},
		{name: "renamed", num: 3, h: next, prev: &end, fields: []string{FieldNumber}, offs: []int64{segment.HeaderNumberOffset}},
		{name: "another store", num: 2, h: func() segment.Header { h := next; h.StoreID[0] = 9; return h }(), prev: &end,
			fields: []string{FieldStoreID}, offs: []int64{segment.HeaderStoreIDOffset}},
		{name: "records removed", num: 2, h: func() segment.Header { h := next; h.FirstSeq = 12; return h }(), prev: &end,
			fields: []string{FieldFirstSeq}, offs: []int64{segment.HeaderFirstSeqOffset}},
		{name: "chain broken", num: 2, h: func() segment.Header { h := next; h.PrevMAC[0] = 1; return h }(), prev: &end,
			fields: []string{FieldPrevMAC}, offs: []int64{segment.HeaderPrevMACOffset}},
		{name: "first segment not from genesis", num: 1, h: func() segment.Header { h := first; h.PrevMAC = vellum.MAC{}; return h }(),
			fields: []string{FieldPrevMAC}, offs: []int64{segment.HeaderPrevMACOffset}},
		{name: "first segment not at seq 1", num: 1, h: func() segment.Header { h := first; h.FirstSeq = 2; return h }(),
			fields: []string{FieldFirstSeq}, offs: []int64{segment.HeaderFirstSeqOffset}},
		{name: "everything wrong", num: 2, h: segment.Header{Number: 5, FirstSeq: 3}, prev: &end,
			fields: []string{FieldNumber, FieldStoreID, FieldFirstSeq, FieldPrevMAC}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := CheckLink(tt.num, store, &tt.h, tt.prev)
			var fields []string
			for i, le := range errs {
				fields = append(fields, le.Field)
				if !errors.Is(le, ErrCorrupt) || le.Segment != tt.num || le.Expected == le.Found || le.Reason == "" {
					t.Fatalf("malformed LinkError %+v", le)
				}
				if tt.offs != nil && le.Offset != tt.offs[i] {
					t.Fatalf("%s at offset %d, want %d", le.Field, le.Offset, tt.offs[i])
				}
			}
			if !slices.Equal(fields, tt.fields) {
				t.Fatalf("fields %v, want %v", fields, tt.fields)
			}
		})
	}
}

// TestHeaderOffsets: the offsets a LinkError reports are where the header
// holds those fields.
func TestHeaderOffsets(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, SegmentName(7))
	h := segment.Header{Number: 7, StoreID: [16]byte{0xAA}, FirstSeq: 0x0102030405, PrevMAC: vellum.MAC{0xBB}, KeyID: chain.KeyID{0xCC}}
	w, err := segment.Create(vfs.Default, path, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		off  int
		want byte
	}{{segment.HeaderNumberOffset, 7}, {segment.HeaderStoreIDOffset, 0xAA}, {segment.HeaderFirstSeqOffset, 0x05},
		{segment.HeaderKeyIDOffset, 0xCC}, {segment.HeaderPrevMACOffset, 0xBB}} {
		if b[c.off] != c.want {
			t.Fatalf("byte %d = %#x, want %#x", c.off, b[c.off], c.want)
		}
	}
}
