package merkle

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
)

// SectionType is the segment footer section that carries a segment's part
// of the log-wide tree (segment/FORMAT.md, "Merkle trees"). Wire constant:
// do not change.
const SectionType = 3

// maxRange bounds the hashes of a compact range of a 64-bit tree.
const maxRange = 64

// Section is what a sealed segment's footer says about the log-wide tree:
// the tree's size at the segment's end, its compact range [0, Size), and
// every stored-level node (see StoredLevel) that became complete while the
// segment's records were appended, that is whose last leaf lies in the
// segment. With it, opening a store restores the log-wide tree without
// reading records, and proofs need at most 255 hashes per node.
type Section struct {
	Size   uint64
	Range  []Hash
	Levels []LevelNodes
}

// LevelNodes are consecutive stored nodes of one level.
type LevelNodes struct {
	Level  uint
	First  uint64 // index of the first node within its level
	Hashes []Hash
}

// Node returns stored node (level, index) if the section holds it.
func (s *Section) Node(level uint, index uint64) (Hash, bool) {
	for _, l := range s.Levels {
		if l.Level == level && index >= l.First && index-l.First < uint64(len(l.Hashes)) {
			return l.Hashes[index-l.First], true
		}
	}
	return Hash{}, false
}

// MarshalBinary encodes the section:
//
//	u64 size | u8 n | n × 32 range hashes | u8 levels |
//	levels × (u8 level | u64 first index | u32 count | count × 32 hashes)
func (s *Section) MarshalBinary() ([]byte, error) {
	le := binary.LittleEndian
	b := le.AppendUint64(nil, s.Size)
	b = append(b, byte(len(s.Range)))
	for _, h := range s.Range {
		b = append(b, h[:]...)
	}
	b = append(b, byte(len(s.Levels)))
	for _, l := range s.Levels {
		b = append(b, byte(l.Level))
		b = le.AppendUint64(b, l.First)
		b = le.AppendUint32(b, uint32(len(l.Hashes)))
		for _, h := range l.Hashes {
			b = append(b, h[:]...)
		}
	}
	return b, nil
}

// ParseSection decodes a section, checking its shape (not its hashes).
func ParseSection(b []byte) (*Section, error) {
	le := binary.LittleEndian
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrSection, fmt.Sprintf(format, args...))
	}
	if len(b) < 9 {
		return nil, bad("%d bytes is too short", len(b))
	}
	s := &Section{Size: le.Uint64(b)}
	n := int(b[8])
	b = b[9:]
	if n > maxRange || n != rangeSize(s.Size) {
		return nil, bad("%d range hashes for tree size %d, want %d", n, s.Size, rangeSize(s.Size))
	}
	if len(b) < n*HashSize+1 {
		return nil, bad("range hashes run past the section")
	}
	s.Range = make([]Hash, n)
	for i := range s.Range {
		copy(s.Range[i][:], b[i*HashSize:])
	}
	b = b[n*HashSize:]
	levels := int(b[0])
	b = b[1:]
	for i := 0; i < levels; i++ {
		if len(b) < 13 {
			return nil, bad("level %d header runs past the section", i)
		}
		l := LevelNodes{Level: uint(b[0]), First: le.Uint64(b[1:])}
		cnt := uint64(le.Uint32(b[9:]))
		b = b[13:]
		if !StoredLevel(l.Level) || (i > 0 && l.Level <= s.Levels[i-1].Level) {
			return nil, bad("level %d out of order or not a stored level", l.Level)
		}
		if cnt*HashSize > uint64(len(b)) {
			return nil, bad("level %d holds %d hashes, more than the section's bytes", l.Level, cnt)
		}
		if l.Level < 64 && (l.First+cnt) > s.Size>>l.Level {
			return nil, bad("level %d nodes %d..%d lie beyond tree size %d", l.Level, l.First, l.First+cnt, s.Size)
		}
		l.Hashes = make([]Hash, cnt)
		for j := range l.Hashes {
			copy(l.Hashes[j][:], b[j*HashSize:])
		}
		b = b[cnt*HashSize:]
		s.Levels = append(s.Levels, l)
	}
	if len(b) != 0 {
		return nil, bad("%d bytes after the last level", len(b))
	}
	return s, nil
}

// rangeSize is the number of hashes of the compact range [0, size).
func rangeSize(size uint64) int {
	n := 0
	for ; size != 0; size &= size - 1 {
		n++
	}
	return n
}

// NewSection builds the section of a segment that holds leaves [begin,
// end): global is the compact range [0, end), and nodes holds (at least)
// every stored-level node whose last leaf lies in [begin, end); others are
// ignored. It fails if a node the section should hold is missing.
func NewSection(begin uint64, global *Range, nodes []Node) (*Section, error) {
	end := global.End()
	if global.Begin() != 0 || begin > end {
		return nil, fmt.Errorf("merkle: section for [%d, %d) from range [%d, %d)", begin, end, global.Begin(), end)
	}
	s := &Section{Size: end, Range: global.Hashes()}
	byLevel := map[uint][]Node{}
	for _, n := range nodes {
		if !StoredLevel(n.Level) {
			continue
		}
		last := (n.Index+1)<<n.Level - 1
		if last >= begin && last < end {
			byLevel[n.Level] = append(byLevel[n.Level], n)
		}
	}
	for level := uint(Stride); level < 64; level += Stride {
		first, cnt := CompletedIn(level, begin, end)
		if cnt == 0 {
			continue
		}
		ns := byLevel[level]
		slices.SortFunc(ns, func(a, b Node) int { return cmp.Compare(a.Index, b.Index) })
		ns = slices.CompactFunc(ns, func(a, b Node) bool { return a.Index == b.Index })
		if uint64(len(ns)) != cnt || ns[0].Index != first {
			return nil, fmt.Errorf("merkle: section for [%d, %d) has %d level-%d nodes, want %d from index %d", begin, end, len(ns), level, cnt, first)
		}
		l := LevelNodes{Level: level, First: first, Hashes: make([]Hash, cnt)}
		for i, n := range ns {
			l.Hashes[i] = n.Hash
		}
		s.Levels = append(s.Levels, l)
	}
	return s, nil
}

// CompletedIn returns the level-level nodes whose last leaf lies in
// [begin, end): the first index and the count.
func CompletedIn(level uint, begin, end uint64) (first, count uint64) {
	// Node k's last leaf is (k+1)<<level - 1; it lies in [begin, end) when
	// begin < (k+1)<<level <= end.
	lo := begin>>level + 1 // smallest k+1 with (k+1)<<level > begin
	hi := end >> level     // largest k+1 with (k+1)<<level <= end
	if hi < lo {
		return 0, 0
	}
	return lo - 1, hi - lo + 1
}
