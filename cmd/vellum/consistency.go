package main

import (
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/merkle"
	"github.com/vellumlog/vellum/verify"
)

// consistencyJSON is the proof as GET /v1/audit/consistency serves it and
// this command prints it.
type consistencyJSON struct {
	First  uint64   `json:"first"`
	Second uint64   `json:"second"`
	Hashes []string `json:"hashes"`
}

func runConsistency(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("consistency", stderr)
	srv, token := clientFlags(fl)
	dir := fl.String("data", "", "compute the proof offline from this data directory instead of asking a server")
	first := fl.Uint64("first", 0, "the smaller tree size")
	second := fl.Uint64("second", 0, "the larger tree size")
	pubFile := fl.String("pubkey", "", "with --old: the log's public key (signing.pub)")
	oldFile := fl.String("old", "", "check that this signed checkpoint (a file) is a prefix of --new")
	newFile := fl.String("new", "", "with --old: the later signed checkpoint (default: the latest, from the server or the data directory)")
	if code, ok := parse(fl, args); !ok {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "vellum consistency: "+format+"\n", a...)
		return 2
	}
	set := map[string]bool{}
	fl.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *dir != "" && set["server"] {
		return fail("give --server or --data, not both")
	}
	checking := *oldFile != ""
	if checking && (set["first"] || set["second"]) {
		return fail("--first/--second and --old are two modes: sizes come from the checkpoints with --old")
	}
	if !checking && (*pubFile != "" || *newFile != "") {
		return fail("--pubkey and --new apply with --old only")
	}
	if !checking && (!set["first"] || !set["second"]) {
		return fail("give --first and --second (tree sizes), or --old with a checkpoint to check")
	}

	// prove returns the proof between two sizes from the server or the
	// data directory.
	var prove func(a, b uint64) (*merkle.ConsistencyProof, error)
	var latest func() ([]byte, error)
	if *dir != "" {
		s, err := verify.OpenStore(nil, *dir)
		if err != nil {
			return fail("%v", err)
		}
		defer s.Close()
		prove = func(a, b uint64) (*merkle.ConsistencyProof, error) {
			if b > s.LastSeq() {
				return nil, fmt.Errorf("tree size %d is larger than the %d records in %s", b, s.LastSeq(), *dir)
			}
			return merkle.ProveConsistency(s.Source(), a, b)
		}
		latest = func() ([]byte, error) {
			es, err := s.Checkpoints()
			if err != nil {
				return nil, err
			}
			if len(es) == 0 {
				return nil, fmt.Errorf("%s has no signed checkpoint", *dir)
			}
			return es[len(es)-1].Note, nil
		}
	} else {
		c, err := newClient(*srv, *token)
		if err != nil {
			return fail("%v", err)
		}
		prove = func(a, b uint64) (*merkle.ConsistencyProof, error) {
			var cj consistencyJSON
			if err := c.callJSON("GET", fmt.Sprintf("/v1/audit/consistency?first=%d&second=%d", a, b), &cj); err != nil {
				return nil, err
			}
			p := &merkle.ConsistencyProof{Size1: cj.First, Size2: cj.Second}
			for _, h := range cj.Hashes {
				var x merkle.Hash
				if err := x.UnmarshalText([]byte(h)); err != nil {
					return nil, fmt.Errorf("bad proof from the server: %v", err)
				}
				p.Hashes = append(p.Hashes, x)
			}
			if p.Size1 != a || p.Size2 != b {
				return nil, fmt.Errorf("the server answered a proof for %d..%d, asked %d..%d", p.Size1, p.Size2, a, b)
			}
			return p, nil
		}
		latest = func() ([]byte, error) {
			// The latest checkpoint rides on every list response.
			var page struct {
				Checkpoint *checkpointResponse `json:"checkpoint"`
			}
			if err := c.callJSON("GET", "/v1/audit?limit=1", &page); err != nil {
				return nil, err
			}
			if page.Checkpoint == nil {
				return nil, fmt.Errorf("the server has signed no checkpoint yet")
			}
			return []byte(page.Checkpoint.Note), nil
		}
	}

	if !checking {
		p, err := prove(*first, *second)
		if err != nil {
			return fail("%v", err)
		}
		out := consistencyJSON{First: p.Size1, Second: p.Size2, Hashes: []string{}}
		for _, h := range p.Hashes {
			out.Hashes = append(out.Hashes, base64.StdEncoding.EncodeToString(h[:]))
		}
		enc := json.NewEncoder(stdout)
		enc.Encode(out)
		return 0
	}

	if *pubFile == "" {
		return fail("--old needs --pubkey: an unsigned checkpoint proves nothing")
	}
	v, err := checkpoint.LoadVerifier(*pubFile)
	if err != nil {
		return fail("%v", err)
	}
	oldNote, err := readNote(*oldFile)
	if err != nil {
		return fail("%v", err)
	}
	var newNote []byte
	if *newFile != "" {
		newNote, err = readNote(*newFile)
	} else {
		newNote, err = latest()
	}
	if err != nil {
		return fail("%v", err)
	}
	oldCP, err := checkpoint.Open(oldNote, v)
	if err != nil {
		fmt.Fprintf(stdout, "NOT VERIFIED: --old %s: %v\n", *oldFile, err)
		return 1
	}
	newCP, err := checkpoint.Open(newNote, v)
	if err != nil {
		fmt.Fprintf(stdout, "NOT VERIFIED: the newer checkpoint: %v\n", err)
		return 1
	}
	if err := checkpoint.CheckGrowth(oldCP.Checkpoint, newCP.Checkpoint); err != nil {
		fmt.Fprintf(stdout, "INCONSISTENT: %v\n", err)
		return 1
	}
	p, err := prove(oldCP.Size, newCP.Size)
	if err != nil {
		return fail("%v", err)
	}
	if err := checkpoint.CheckConsistency(oldCP.Checkpoint, newCP.Checkpoint, p); err != nil {
		fmt.Fprintf(stdout, "INCONSISTENT: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "CONSISTENT: the checkpoint of %d records is a prefix of the checkpoint of %d records (origin %s, key %s+%08x)\n",
		oldCP.Size, newCP.Size, newCP.Origin, v.Name(), v.KeyHash())
	return 0
}
