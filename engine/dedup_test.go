package engine

import (
	"fmt"
	"testing"
)

// TestDedupWindowEvicts: the window remembers exactly its last n keys,
// through several wraps of its ring, each with the seq it was put with.
func TestDedupWindowEvicts(t *testing.T) {
	const n = 7
	d := newDedupWindow(n)
	key := func(i int) string { return dedupKey("t", fmt.Sprintf("ev-%d", i)) }
	for i := 0; i < 5*n+3; i++ {
		k := key(i)
		if _, ok := d.get(k, dedupHash(k)); ok {
			t.Fatalf("key %d found before it was put", i)
		}
		d.put(k, dedupHash(k), uint64(1000+i))
		for j := 0; j <= i; j++ {
			kj := key(j)
			seq, ok := d.get(kj, dedupHash(kj))
			if in := j > i-n; ok != in || (ok && seq != uint64(1000+j)) {
				t.Fatalf("after %d puts: key %d found %v seq %d, want found %v seq %d", i+1, j, ok, seq, in, 1000+j)
			}
		}
		if len(d.m) != min(i+1, n) {
			t.Fatalf("after %d puts the map holds %d keys, want %d", i+1, len(d.m), min(i+1, n))
		}
	}
}

// TestDedupWindowHashCollision: two keys of one hash are never taken for
// each other; the newer replaces the older in the map, and the older's
// eviction from the ring does not remove the newer.
func TestDedupWindowHashCollision(t *testing.T) {
	d := newDedupWindow(3)
	const h = 42
	d.put("a", h, 1)
	if _, ok := d.get("b", h); ok {
		t.Fatal("b found under a's hash")
	}
	d.put("b", h, 2)
	if seq, ok := d.get("b", h); !ok || seq != 2 {
		t.Fatalf("b: %d %v", seq, ok)
	}
	if _, ok := d.get("a", h); ok {
		t.Fatal("a still found after b replaced it in the map")
	}
	d.put("c", 7, 3)
	d.put("d", 8, 4) // evicts a's slot: b must stay
	if seq, ok := d.get("b", h); !ok || seq != 2 {
		t.Fatalf("b after a's eviction: %d %v", seq, ok)
	}
	d.put("e", 9, 5) // evicts b's slot
	if _, ok := d.get("b", h); ok {
		t.Fatal("b found after its eviction")
	}
}

// BenchmarkDedupWindow is the committer's work for one new event id under
// its lock: a lookup that misses and a put that evicts the oldest key, in
// a full window of the default size.
func BenchmarkDedupWindow(b *testing.B) {
	const n = 100_000
	d := newDedupWindow(n)
	keys := make([]string, 1<<18)
	hashes := make([]uint64, len(keys))
	for i := range keys {
		keys[i] = dedupKey("tenant-07", fmt.Sprintf("evt-%016x", uint64(i)*0x9e3779b97f4a7c15))
		hashes[i] = dedupHash(keys[i])
	}
	for i := 0; i < n; i++ {
		d.put(keys[i], hashes[i], uint64(i))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := (n + i) % len(keys)
		if _, ok := d.get(keys[j], hashes[j]); !ok {
			d.put(keys[j], hashes[j], uint64(i))
		}
	}
}
