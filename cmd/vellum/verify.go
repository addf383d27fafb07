package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

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
	dsn := fl.String("dsn", "", "PostgreSQL database to verify instead (every writer's chain; needs --key)")
	sqlitePath := fl.String("sqlite", "", "SQLite database to verify instead (needs --key)")
	var wkeys, wurls stringList
	fl.Var(&wkeys, "witness", "a witness's public key, or a file holding it (repeatable; needs --pubkey): require a checkpoint cosigned by the witnesses and check the data against it")
	quorum := fl.Int("quorum", 0, "with --witness: how many of the witnesses must cosign (default: all)")
	fl.Var(&wurls, "witness-url", "with --witness: fetch the latest cosigned checkpoint of this store from the witness at this URL (repeatable); catches a store rolled back with its own files")
	if code, ok := parse(fl, args); !ok {
		return code
	}
	if *dsn != "" || *sqlitePath != "" { // SQL stores (verify_sql.go)
		return runVerifySQL(*dsn, *sqlitePath, *keyFile, *asJSON, *dir != "" || *bundle != "" || *pubFile != "" || *cpFile != "" || len(wkeys) > 0 || len(wurls) > 0 || *quorum != 0, stdout, stderr)
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
	witnesses, err := witnessKeys(wkeys)
	if err != nil {
		return fail("%v", err)
	}
	if len(witnesses) > 0 && opts.Verifier == nil {
		return fail("--witness needs --pubkey: a cosigned checkpoint is first the store's own signed checkpoint")
	}
	if len(witnesses) == 0 && (*quorum != 0 || len(wurls) > 0) {
		return fail("--quorum and --witness-url need --witness")
	}
	if *quorum < 0 || *quorum > len(witnesses) {
		return fail("--quorum %d is not between 1 and the %d witnesses given", *quorum, len(witnesses))
	}
	var rep *verify.Report
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
		if len(wurls) > 0 {
			f.Close()
			return fail("--witness-url applies to --data only")
		}
		if len(witnesses) > 0 {
			rep, err = verify.BundleWitnessed(f, *bundle, opts.Verifier, witnesses, *quorum)
		} else {
			rep, err = verify.Bundle(f, *bundle, opts.Verifier)
		}
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
			if len(witnesses) > 0 {
				opts.Cosigned = append(opts.Cosigned, verify.CosignedNote{Source: *cpFile, Note: b})
			}
		}
		if len(witnesses) > 0 {
			fetched, ferr := fetchCosigned(*dir, wurls)
			if ferr != nil {
				return fail("%v", ferr)
			}
			opts.Witnesses, opts.Quorum = witnesses, *quorum
			opts.Cosigned = append(opts.Cosigned, fetched...)
		}
		bar := newProgress(stderr, "verifying", true)
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

func printReport(w io.Writer, rep *verify.Report, bundle bool) {
	rep.WriteText(w, bundle)
	if rep.Witnessed != nil {
		fmt.Fprintf(w, "  witnessed: %s\n", rep.Witnessed)
	}
}
