package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/term"

	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/verify"
)

func runVerify(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("verify", stderr)
	dir := fl.String("data", "", "data directory to verify (a copy is best; it is never written)")
	bundle := fl.String("bundle", "", "evidence bundle to verify instead of a directory (needs --pubkey)")
	keyFile := fl.String("key", "", "HMAC key file: also check every record's MAC")
	pubFile := fl.String("pubkey", "", "checkpoint public key file (from vellum keygen): check checkpoint signatures")
	cpFile := fl.String("checkpoint", "", "a signed checkpoint you trust (needs --pubkey): the data must still hold what it describes")
	asJSON := fl.Bool("json", false, "print the report as JSON")
	workers := fl.Int("workers", 0, "segments checked at once (default: all cores)")
	if code, ok := parse(fl, args); !ok {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "vellum verify: "+format+"\n", a...)
		return 2
	}
	if (*dir == "") == (*bundle == "") {
		return fail("give exactly one of --data DIR or --bundle FILE")
	}
	opts := &verify.Options{Workers: *workers}
	if *pubFile != "" {
		v, err := checkpoint.LoadVerifier(*pubFile)
		if err != nil {
			return fail("%v", err)
		}
		opts.Verifier = v
	}
	var rep *verify.Report
	var err error
	if *bundle != "" {
		if opts.Verifier == nil {
			return fail("--bundle needs --pubkey: a bundle is only as good as its checkpoint's signature")
		}
		if *keyFile != "" || *cpFile != "" {
			return fail("--key and --checkpoint apply to --data only")
		}
		f, ferr := os.Open(*bundle)
		if ferr != nil {
			return fail("%v", ferr)
		}
		rep, err = verify.Bundle(f, *bundle, opts.Verifier)
		f.Close()
	} else {
		if *keyFile != "" {
			k, kerr := chain.LoadKeyFile(*keyFile)
			if kerr != nil {
				return fail("%v", kerr)
			}
			opts.Keys = chain.NewKeyring(k)
		}
		if *cpFile != "" {
			if opts.Verifier == nil {
				return fail("--checkpoint needs --pubkey to check its signature")
			}
			b, rerr := readNote(*cpFile)
			if rerr != nil {
				return fail("%v", rerr)
			}
			opts.Trusted = b
		}
		bar := newProgress(stderr)
		opts.Progress = bar.update
		rep, err = verify.Dir(*dir, opts)
		bar.done()
	}
	if err != nil {
		return fail("%v", err)
	}
	if *asJSON {
		out := struct {
			Intact bool `json:"intact"`
			*verify.Report
		}{rep.OK(), rep}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(out)
	} else {
		printReport(stdout, rep, *bundle != "")
	}
	if !rep.OK() {
		return 1
	}
	return 0
}

func printReport(w io.Writer, rep *verify.Report, bundle bool) { rep.WriteText(w, bundle) }

// progress draws a bar on stderr when stderr is a terminal.
type progress struct {
	mu  sync.Mutex
	w   io.Writer
	on  bool
	out bool
}

func newProgress(w io.Writer) *progress {
	f, ok := w.(*os.File)
	return &progress{w: w, on: ok && term.IsTerminal(int(f.Fd()))}
}

func (p *progress) update(done, total int64) {
	if !p.on || total == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	const width = 30
	n := int(done * width / total)
	fmt.Fprintf(p.w, "\rverifying [%s%s] %3d%% %s of %s ", strings.Repeat("#", n), strings.Repeat(".", width-n), done*100/total, humanBytes(done), humanBytes(total))
	p.out = true
}

func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.out {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", 78))
	}
}
