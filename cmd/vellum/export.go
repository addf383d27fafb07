package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/verify"
)

func runExport(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("export", stderr)
	dir := fl.String("data", "./vellum-data", "data directory (read only; no lock is taken)")
	from := fl.Uint64("from", 1, "first seq")
	to := fl.Uint64("to", 0, "last seq (0: the last record, or with --proof the last the checkpoint covers)")
	withProof := fl.Bool("proof", false, "write an evidence bundle: the signed checkpoint, then each record with its encoding and inclusion proof")
	pubFile := fl.String("pubkey", "", "with --proof: check the checkpoint's signature with this public key before exporting")
	cpFile := fl.String("checkpoint", "", "with --proof: prove against this signed checkpoint instead of the latest in the data directory")
	outFile := fl.String("out", "", "write to this file instead of stdout")
	if code, ok := parse(fl, args); !ok {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "vellum export: "+format+"\n", a...)
		return 2
	}
	if !*withProof && (*pubFile != "" || *cpFile != "") {
		return fail("--pubkey and --checkpoint apply to --proof only")
	}
	s, err := verify.OpenStore(nil, *dir)
	if err != nil {
		return fail("%v", err)
	}
	defer s.Close()
	out := stdout
	if *outFile != "" {
		f, err := os.OpenFile(*outFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fail("%v", err)
		}
		defer f.Close()
		out = f
	}
	bw := bufio.NewWriterSize(out, 256<<10)
	n := 0
	if !*withProof {
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		last := *to
		if last == 0 {
			last = s.LastSeq()
		}
		for r, err := range s.Records(*from, last) {
			if err != nil {
				return fail("%v", err)
			}
			enc.Encode(r.Record)
			n++
		}
	} else {
		var note []byte
		if *cpFile != "" {
			if note, err = os.ReadFile(*cpFile); err != nil {
				return fail("%v", err)
			}
		} else {
			entries, err := s.Checkpoints()
			if err != nil {
				return fail("%v", err)
			}
			if len(entries) == 0 {
				return fail("%s has no signed checkpoint; records cannot be proved (configure a signing key)", *dir)
			}
			note = entries[len(entries)-1].Note
		}
		var cp checkpoint.Signed
		if *pubFile != "" {
			v, verr := checkpoint.LoadVerifier(*pubFile)
			if verr != nil {
				return fail("%v", verr)
			}
			cp, err = checkpoint.Open(note, v) // a checkpoint the key does not sign is refused
		} else {
			cp, err = checkpoint.ParseNote(note)
		}
		if err != nil {
			return fail("checkpoint: %v", err)
		}
		if *to > cp.Size || (*to == 0 && s.LastSeq() > cp.Size) {
			fmt.Fprintf(stderr, "vellum export: records after seq %d are not covered by the checkpoint and are left out\n", cp.Size)
		}
		if n, err = verify.ExportBundle(s, bw, cp, *from, *to); err != nil {
			return fail("%v", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fail("%v", err)
	}
	fmt.Fprintf(stderr, "vellum export: %d records\n", n)
	return 0
}
