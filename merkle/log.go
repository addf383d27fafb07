package merkle

// Log is the log-wide tree as a writer grows it, together with the tree of
// the segment being written: it appends each leaf to both, keeps the
// stored-level nodes completed since the segment began (for the footer and
// for proofs before the footer exists), and seals a segment into its root
// and footer section. Not safe for concurrent use.
type Log struct {
	global   *Range
	seg      RootBuilder
	segBegin uint64
	nodes    levels // stored-level nodes completed since segBegin
	prev     levels // the same for the segment sealed last
	visit    func(Node)
}

// NewLog continues the log-wide tree global (which must begin at 0) with a
// new segment starting at its end.
func NewLog(global *Range) *Log {
	l := &Log{global: global, segBegin: global.End(), nodes: levels{}}
	l.visit = func(n Node) {
		if StoredLevel(n.Level) {
			l.nodes.add(n)
		}
	}
	return l
}

// Append adds the next record's leaf hash.
func (l *Log) Append(leaf Hash) {
	l.global.AppendStored(leaf, l.visit)
	l.seg.Append(leaf)
}

// Size returns the number of leaves of the log-wide tree.
func (l *Log) Size() uint64 { return l.global.End() }

// Root returns the root of the log-wide tree.
func (l *Log) Root() Hash { return l.global.Root() }

// Range returns a copy of the log-wide compact range.
func (l *Log) Range() *Range { return l.global.Clone() }

// SegmentBegin returns the leaf index at which the current segment begins.
func (l *Log) SegmentBegin() uint64 { return l.segBegin }

// SegmentRoot returns the root of the current segment's own tree.
func (l *Log) SegmentRoot() Hash { return l.seg.Root() }

// Seal ends the current segment: it returns the segment's root and footer
// section, and starts the next segment at the current size.
func (l *Log) Seal() (Hash, *Section, error) {
	sec, err := NewSection(l.segBegin, l.global, l.nodes.all())
	if err != nil {
		return Hash{}, nil, err
	}
	root := l.seg.Root()
	l.prev, l.nodes = l.nodes, levels{}
	l.seg = RootBuilder{}
	l.segBegin = l.global.End()
	return root, sec, nil
}

// Node returns a stored-level node completed during the current segment
// or the one sealed last, if it is one of them.
func (l *Log) Node(level uint, index uint64) (Hash, bool) {
	if h, ok := l.nodes.get(level, index); ok {
		return h, true
	}
	return l.prev.get(level, index)
}

// levels holds stored-level nodes by level; within a level they complete in
// index order without gaps.
type levels map[uint]*LevelNodes

func (ls levels) add(n Node) {
	l := ls[n.Level]
	if l == nil {
		l = &LevelNodes{Level: n.Level, First: n.Index}
		ls[n.Level] = l
	}
	if n.Index != l.First+uint64(len(l.Hashes)) {
		// Cannot happen with appends in order; start over so lookups
		// stay correct.
		*l = LevelNodes{Level: n.Level, First: n.Index}
	}
	l.Hashes = append(l.Hashes, n.Hash)
}

func (ls levels) get(level uint, index uint64) (Hash, bool) {
	l := ls[level]
	if l == nil || index < l.First || index-l.First >= uint64(len(l.Hashes)) {
		return Hash{}, false
	}
	return l.Hashes[index-l.First], true
}

func (ls levels) all() []Node {
	var out []Node
	for _, l := range ls {
		for i, h := range l.Hashes {
			out = append(out, Node{Level: l.Level, Index: l.First + uint64(i), Hash: h})
		}
	}
	return out
}
