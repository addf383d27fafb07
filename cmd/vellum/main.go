// Command vellum runs and inspects a Vellum audit store.
//
//	vellum serve       [--config FILE] [--data DIR] [--addr HOST:PORT]
//	vellum query       [--server URL] [--token T] [filters] [--all] [--json]
//	vellum inspect     --data DIR [--json]
//	vellum keygen      --out DIR [--name NAME]
//	vellum token       create|list|revoke --data DIR ...
//	vellum checkpoint  [--server URL] [--token T] [--out FILE]
//	vellum consistency --first N --second M (--server URL | --data DIR)
//	vellum verify      --data DIR [--key FILE] [--pubkey FILE] [--checkpoint FILE] [--json]
//	vellum verify      --bundle FILE --pubkey FILE [--json]
//	vellum export      --data DIR [--from N] [--to N] [filters] [--format jsonl|csv] [--proof ...] [--out FILE]
//	vellum report      --data DIR [--since T] [--until T] [--tenant ID] --out FILE.html
//	vellum version     [--json]
//	vellum witness     --data DIR --addr HOST:PORT --log ORIGIN=KEY [--name NAME]
//	vellum purge       --data DIR (--config FILE | --max-age D) [--dry-run] [--json]
//	vellum holds       list|set|release --data DIR [--tenant T --since T --until T --reason R | --id ID]
//
// Every command's -h prints its description, flags, environment variables
// and examples (help.go).
//
// Exit status: 0 on success, 1 when a check fails, 2 on usage or I/O errors.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// command is one subcommand.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{
	"serve":       {"run the HTTP server (ingest and queries) on a data directory", runServe},
	"query":       {"query a running server's audit log (table or JSON lines)", runQuery},
	"inspect":     {"show the segments in a data directory", runInspect},
	"keygen":      {"create the HMAC key (and signing keys) for a store", runKeygen},
	"verify":      {"verify a data directory or an evidence bundle offline", runVerify},
	"export":      {"export records as JSON lines or CSV, or with --proof as an evidence bundle", runExport},
	"token":       {"create, list or revoke API tokens in a data directory (offline; hashes only)", runToken},
	"checkpoint":  {"ask a running server to sign a checkpoint now, and print it", runCheckpoint},
	"consistency": {"get (and check) a consistency proof between two tree sizes", runConsistency},
	"report":      {"write the compliance report (one self-contained HTML page)", runReport},
	"version":     {"print the version, commit, Go version and FIPS 140-3 mode", runVersion},
	"witness":     {"run a witness that cosigns a store's checkpoints and refuses rollbacks and forks", runWitness},
	"purge":       {"purge expired segments of a stopped store (retention), or list them with --dry-run", runPurge},
	"holds":       {"list, set or release legal holds on a stopped store", runHolds},
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "vellum: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	return c.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: vellum <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-11s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'vellum <command> -h' for a command's flags.")
}

// newFlags makes a FlagSet that reports errors on stderr and never exits;
// its -h prints the command's help (help.go).
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("vellum "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { printHelp(fs.Output(), name, fs) }
	return fs
}

// parse parses flags, returning an exit code when the command should stop.
func parse(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), strings.Join(fs.Args(), " "))
		return 2, false
	}
	return 0, true
}
