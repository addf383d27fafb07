// Package layout knows a Vellum data directory: the names of its files
// (LOCK, STORE, segments/seg-<20 digits>.vseg), the STORE file that holds
// the store's identity, and the rules that link one segment to its store
// and to the segment before it. The engine opens and recovers a directory
// with it; the offline verifier (package verify) and the command-line tools
// read a copy with it, so both apply the same rules.
//
//	nums, err := layout.ListSegments(fs, dir)     // segment numbers, in order
//	id, err := layout.ReadStoreID(fs, dir)        // the STORE file's store id
//	path := layout.SegmentPath(dir, nums[0])
//	for _, le := range layout.CheckLink(n, id, &hdr, &prevEnd) { ... }
//
// Everything here is a pure function of its arguments or of the files it
// reads, and safe for concurrent use. The layout is specified in
// segment/FORMAT.md, "Directory layout" and "Durability and recovery".
package layout
