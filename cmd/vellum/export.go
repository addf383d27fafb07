package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/cosign"
	"github.com/vellumlog/vellum/export"
	"github.com/vellumlog/vellum/query"
	"github.com/vellumlog/vellum/verify"
)

func runExport(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("export", stderr)
	dir := fl.String("data", "./vellum-data", "data directory (read only; no lock is taken)")
	from := fl.Uint64("from", 1, "first seq (from 1)")
	to := fl.Uint64("to", 0, "last seq (0: the last record, or with --proof the last the checkpoint covers)")
	format := fl.String("format", "jsonl", "jsonl or csv (not with --proof: a bundle has its own format)")
	withProof := fl.Bool("proof", false, "write an evidence bundle: the signed checkpoint, then each record with its encoding and inclusion proof")
	pubFile := fl.String("pubkey", "", "with --proof: check the checkpoint's signature with this public key before exporting")
	cpFile := fl.String("checkpoint", "", "with --proof: prove against this signed checkpoint instead of the one witnesses cosigned (cosigned-checkpoint) or else the latest in the data directory")
	srv, token := clientFlags(fl)
	outFile := fl.String("out", "", "write to this new file (written whole or not at all) instead of stdout")
	filters := map[string]*string{}
	for _, name := range query.FilterParams {
		filters[name] = fl.String(name, "", queryParamHelp[name])
	}
	if code, ok := parse(fl, args); !ok {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "vellum export: "+format+"\n", a...)
		return 2
	}
	set := map[string]bool{}
	fl.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !*withProof && (*pubFile != "" || *cpFile != "" || set["server"]) {
		return fail("--pubkey, --checkpoint and --server apply to --proof only")
	}
	if *withProof && set["format"] {
		return fail("--format does not apply to --proof: an evidence bundle has its own format")
	}
	if *cpFile != "" && set["server"] {
		return fail("give --checkpoint or --server, not both")
	}
	f, err := export.ParseFormat(*format)
	if err != nil {
		return fail("--format: %q is not jsonl or csv", *format)
	}
	if *from == 0 {
		return fail("--from 0: seqs start at 1")
	}
	if *to != 0 && *to < *from {
		return fail("--from %d --to %d: the range is empty (--to is before --from)", *from, *to)
	}
	vals := url.Values{}
	for name, p := range filters {
		if *p != "" {
			vals.Set(name, *p)
		}
	}
	q, err := query.ParseFilterValues(vals)
	if err != nil {
		return fail("--%s", strings.TrimPrefix(err.Error(), "query: parameter "))
	}

	s, err := verify.OpenStore(nil, *dir)
	if err != nil {
		return fail("%v", err)
	}
	defer s.Close()
	last := s.LastSeq()
	switch {
	case last == 0:
		return fail("%s holds no records (is it the data directory?)", *dir)
	case *from > last:
		return fail("--from %d is past the last record of %s (seq %d)", *from, *dir, last)
	case *to > last:
		return fail("--to %d is past the last record of %s (seq %d)", *to, *dir, last)
	}
	hi := *to
	if hi == 0 {
		hi = last
	}
	var notes []string
	if first := s.FirstSeq(); *from < first {
		notes = append(notes, fmt.Sprintf("records before seq %d have expired (retention) and are not in the store", first))
	}

	// The checkpoint of a bundle, found and checked before any output
	// exists.
	var cp checkpoint.Signed
	if *withProof {
		var note []byte
		switch {
		case *cpFile != "":
			if note, err = readNote(*cpFile); err != nil {
				return fail("%v", err)
			}
		case set["server"]:
			c, err := newClient(*srv, *token)
			if err != nil {
				return fail("%v", err)
			}
			var cr checkpointResponse
			if err := c.callJSON("POST", "/v1/audit/checkpoints", &cr); err != nil {
				return fail("signing a checkpoint now: %v", err)
			}
			note = []byte(cr.Note)
			if cr.TreeSize > last {
				// The server acknowledged records after this reader
				// opened the directory: look again.
				s.Close()
				if s, err = verify.OpenStore(nil, *dir); err != nil {
					return fail("%v", err)
				}
				last = s.LastSeq()
				if *to == 0 {
					hi = last
				}
			}
		default:
			if cosigned, ok := cosignedNote(*dir); ok {
				// Evidence is best proved against what the witnesses cosigned.
				note = cosigned
				notes = append(notes, fmt.Sprintf("proved against the checkpoint the witnesses cosigned (%s)", cosign.CheckpointFile))
				break
			}
			entries, err := s.Checkpoints()
			if err != nil {
				return fail("%v", err)
			}
			if len(entries) == 0 {
				return fail("%s has no signed checkpoint; records cannot be proved (sign one now with --server URL, or vellum checkpoint)", *dir)
			}
			note = entries[len(entries)-1].Note
		}
		if *pubFile != "" {
			v, err := checkpoint.LoadVerifier(*pubFile)
			if err != nil {
				return fail("%v", err)
			}
			if cp, err = checkpoint.Open(note, v); err != nil {
				return fail("the checkpoint does not verify with %s: %v", *pubFile, err)
			}
		} else if cp, err = checkpoint.ParseNote(note); err != nil {
			return fail("checkpoint: %v", err)
		}
		switch {
		case *from > cp.Size:
			return fail("--from %d is past the checkpoint, which covers seq 1..%d: no record of the range can be proved; sign one now with --server URL (or vellum checkpoint) and pass it", *from, cp.Size)
		case *to > cp.Size:
			return fail("--to %d is past the checkpoint, which covers seq 1..%d: records after it cannot be proved; sign one now with --server URL (or vellum checkpoint) and pass it", *to, cp.Size)
		case hi > cp.Size:
			notes = append(notes, fmt.Sprintf("records %d..%d are newer than the checkpoint and are NOT in this bundle; to include them, export again with --server URL, which signs a checkpoint now", cp.Size+1, hi))
			hi = cp.Size
		}
	}

	var out io.Writer = stdout
	var af *atomicFile
	if *outFile != "" {
		if af, err = newAtomicFile(*outFile, 0o600); err != nil {
			return fail("%v", err)
		}
		out = af
	}
	abort := func(format string, a ...any) int {
		if af != nil {
			af.Abort()
		}
		return fail(format, a...)
	}
	// A bar on a terminal, nothing when piped (progress.go); every record
	// of the range passes through match once.
	bar := newProgress(stderr, "exporting", false)
	defer bar.done()
	total, seen := int64(hi)-int64(*from)+1, int64(0)
	match := func(r *vellum.Record) bool {
		if seen++; seen%1024 == 0 {
			bar.update(seen, total)
		}
		return q.Match(r)
	}
	n := 0
	if *withProof {
		bw := bufio.NewWriterSize(out, 256<<10)
		if n, err = verify.ExportBundleFunc(s, bw, cp, *from, hi, match); err != nil {
			return abort("%v", err)
		}
		if err := bw.Flush(); err != nil {
			return abort("%v", err)
		}
	} else {
		w, _ := export.NewWriter(out, f)
		for r, err := range s.Records(*from, hi) {
			if err != nil {
				return abort("%v", err)
			}
			if !match(&r.Record) {
				continue
			}
			if err := w.Write(&r.Record); err != nil {
				return abort("%v", err)
			}
		}
		if err := w.Flush(); err != nil {
			return abort("%v", err)
		}
		n = w.Count()
	}
	if af != nil {
		if err := af.Commit(); err != nil {
			return fail("%v", err)
		}
	}
	what := fmt.Sprintf("%d records of seq %d..%d", n, *from, hi)
	if len(vals) > 0 {
		var fs []string
		for k := range vals {
			fs = append(fs, k+"="+vals.Get(k))
		}
		sort.Strings(fs)
		what += " matching " + strings.Join(fs, " ")
	}
	if *withProof {
		what += fmt.Sprintf(", each with its inclusion proof against the checkpoint of %d records (origin %s)", cp.Size, cp.Origin)
	} else {
		what += " as " + string(f)
	}
	if *outFile != "" {
		what += " to " + *outFile
	}
	fmt.Fprintf(stderr, "vellum export: %s\n", what)
	for _, n := range notes {
		fmt.Fprintf(stderr, "vellum export: note: %s\n", n)
	}
	return 0
}
