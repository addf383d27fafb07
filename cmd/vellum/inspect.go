package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/segment"
	"github.com/vellumlog/vellum/vfs"
)

// segmentInfo is one line of `vellum inspect`.
type segmentInfo struct {
	Number    uint64    `json:"number"`
	File      string    `json:"file"`
	State     string    `json:"state"` // sealed, active, torn, corrupt
	Records   uint64    `json:"records"`
	FirstSeq  uint64    `json:"first_seq,omitempty"`
	LastSeq   uint64    `json:"last_seq,omitempty"`
	FirstTime time.Time `json:"first_time,omitzero"`
	LastTime  time.Time `json:"last_time,omitzero"`
	Bytes     int64     `json:"bytes"`
	KeyID     string    `json:"key_id,omitempty"`
	Codec     string    `json:"codec,omitempty"`
	Merkle    bool      `json:"merkle_root"`
	Problem   string    `json:"problem,omitempty"`
}

func runInspect(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("inspect", stderr)
	dir := fl.String("data", "./vellum-data", "data directory")
	asJSON := fl.Bool("json", false, "print JSON lines instead of a table")
	if code, ok := parse(fl, args); !ok {
		return code
	}
	infos, err := inspect(vfs.Default, *dir)
	if err != nil {
		fmt.Fprintf(stderr, "vellum inspect: %v\n", err)
		return 2
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, in := range infos {
			enc.Encode(in)
		}
	} else {
		printInspect(stdout, *dir, infos)
	}
	for _, in := range infos {
		if in.State == "corrupt" {
			return 1
		}
	}
	return 0
}

// inspect describes every segment without changing anything: sealed
// segments from their footers, the active one by scanning it.
func inspect(fs vfs.FS, dir string) ([]segmentInfo, error) {
	nums, err := layout.ListSegments(fs, dir)
	if err != nil {
		return nil, err
	}
	infos := make([]segmentInfo, 0, len(nums))
	for _, n := range nums {
		path := layout.SegmentPath(dir, n)
		in := segmentInfo{Number: n, File: layout.SegmentName(n)}
		if fi, err := fs.Stat(path); err == nil {
			in.Bytes = fi.Size()
		}
		r, err := segment.Open(fs, path, nil)
		if err != nil {
			in.State, in.Problem = "corrupt", err.Error()
			infos = append(infos, in)
			continue
		}
		h := r.Header()
		in.KeyID, in.Codec = h.KeyID.String(), h.Codec.String()
		if ft := r.Footer(); ft != nil {
			in.State, in.Records, in.Merkle = "sealed", ft.Count, ft.HasRoot
			if ft.Count > 0 {
				in.FirstSeq, in.LastSeq = ft.FirstSeq, ft.LastSeq
				in.FirstTime, in.LastTime = time.Unix(0, ft.FirstTime).UTC(), time.Unix(0, ft.LastTime).UTC()
			}
			r.Close()
			infos = append(infos, in)
			continue
		}
		r.Close()
		sr, err := segment.Scan(fs, path, nil, nil)
		if err != nil {
			in.State, in.Problem = "corrupt", err.Error()
			infos = append(infos, in)
			continue
		}
		in.State = "active"
		if sr.TornAt >= 0 {
			in.State = "torn"
			in.Problem = fmt.Sprintf("%d bytes after offset %d are an incomplete final batch (cut on next open): %s", sr.FileSize-sr.TornAt, sr.TornAt, sr.TornReason)
		}
		in.Records = sr.State.Count
		if sr.State.Count > 0 {
			in.FirstSeq, in.LastSeq = sr.State.FirstSeq, sr.State.LastSeq
			in.FirstTime, in.LastTime = time.Unix(0, sr.State.FirstTime).UTC(), time.Unix(0, sr.State.LastTime).UTC()
		}
		infos = append(infos, in)
	}
	return infos, nil
}

func printInspect(w io.Writer, dir string, infos []segmentInfo) {
	var total uint64
	var bytes int64
	for _, in := range infos {
		total += in.Records
		bytes += in.Bytes
	}
	id, err := layout.ReadStoreID(vfs.Default, dir)
	store := "unknown (" + fmt.Sprint(err) + ")"
	if err == nil {
		store = hex.EncodeToString(id[:])
	}
	fmt.Fprintf(w, "store %s in %s: %d segments, %d records, %s\n\n", store, dir, len(infos), total, humanBytes(bytes))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEGMENT\tSTATE\tRECORDS\tSEQ\tTIME (UTC)\tSIZE\tKEY ID\tCODEC")
	for _, in := range infos {
		seqs, times := "-", "-"
		if in.Records > 0 {
			seqs = fmt.Sprintf("%d..%d", in.FirstSeq, in.LastSeq)
			times = in.FirstTime.Format("2006-01-02T15:04:05.000") + " .. " + in.LastTime.Format("2006-01-02T15:04:05.000")
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", in.Number, in.State, in.Records, seqs, times, humanBytes(in.Bytes), in.KeyID, in.Codec)
	}
	tw.Flush()
	for _, in := range infos {
		if in.Problem != "" {
			fmt.Fprintf(w, "\nsegment %d: %s\n", in.Number, in.Problem)
		}
	}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
