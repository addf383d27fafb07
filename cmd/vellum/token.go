package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vellumlog/vellum/server"
)

// runToken manages the tokens stored in a data directory, offline: it
// reads and replaces DATA/tokens.json (hashes only) and never talks to a
// server. A running `vellum serve` notices the change within a few
// seconds.
func runToken(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fl := newFlags("token", stderr)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			fl.Usage()
			return 0
		}
		fmt.Fprintln(stderr, "vellum token: give an action: create, list or revoke (vellum token -h)")
		return 2
	}
	switch args[0] {
	case "create":
		return tokenCreate(args[1:], stdout, stderr)
	case "list":
		return tokenList(args[1:], stdout, stderr)
	case "revoke":
		return tokenRevoke(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "vellum token: unknown action %q: create, list or revoke\n", args[0])
	return 2
}

func tokenFail(stderr io.Writer, format string, a ...any) int {
	fmt.Fprintf(stderr, "vellum token: "+format+"\n", a...)
	return 2
}

// loadTokens reads the stored tokens of a data directory that must exist.
func loadTokens(dir string) ([]server.StoredToken, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	return server.LoadStoredTokens(dir)
}

func tokenCreate(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("token", stderr)
	dir := fl.String("data", "./vellum-data", "data directory of the store")
	name := fl.String("name", "", "principal name (required; recorded as the user of everything the token does)")
	role := fl.String("role", "", "admin, auditor or ingest (required)")
	tenants := fl.String("tenants", "", "comma-separated tenants an auditor or ingest token is limited to")
	if code, ok := parse(fl, args); !ok {
		return code
	}
	if *name == "" || *role == "" {
		return tokenFail(stderr, "create needs --name and --role (admin, auditor or ingest)")
	}
	ts, err := loadTokens(*dir)
	if err != nil {
		return tokenFail(stderr, "%v", err)
	}
	if i := slices.IndexFunc(ts, func(t server.StoredToken) bool { return t.Name == *name }); i >= 0 {
		return tokenFail(stderr, "a token named %q already exists in %s; revoke it first (vellum token revoke --data %s %s)", *name, *dir, *dir, *name)
	}
	tok, err := server.GenerateToken()
	if err != nil {
		return tokenFail(stderr, "%v", err)
	}
	st := server.StoredToken{Name: *name, Role: server.Role(*role), TokenSHA256: server.HashToken(tok), Created: time.Now().UTC().Truncate(time.Second)}
	if *tenants != "" {
		st.Tenants = strings.Split(*tenants, ",")
	}
	if err := server.SaveStoredTokens(*dir, append(ts, st)); err != nil {
		return tokenFail(stderr, "%v", err)
	}
	fmt.Fprintln(stdout, tok)
	fmt.Fprintf(stderr, "created token %q (role %s) in %s; it is shown only now (only its SHA-256 is kept). Use it as\n    Authorization: Bearer <token>\nA running vellum serve on this directory accepts it within a few seconds.\n", *name, *role, *dir)
	return 0
}

func tokenList(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("token", stderr)
	dir := fl.String("data", "./vellum-data", "data directory of the store")
	asJSON := fl.Bool("json", false, "print JSON lines instead of a table")
	if code, ok := parse(fl, args); !ok {
		return code
	}
	ts, err := loadTokens(*dir)
	if err != nil {
		return tokenFail(stderr, "%v", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, t := range ts {
			enc.Encode(struct {
				server.StoredToken
				Source string `json:"source"`
			}{t, tokenSource(t)})
		}
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tTENANTS\tCREATED\tSHA-256\tSOURCE")
	for _, t := range ts {
		created := "-"
		if !t.Created.IsZero() {
			created = t.Created.Format(time.RFC3339)
		}
		tenants := strings.Join(t.Tenants, ",")
		if tenants == "" {
			tenants = "(all)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s…\t%s\n", t.Name, t.Role, tenants, created, t.TokenSHA256[:12], tokenSource(t))
	}
	tw.Flush()
	if len(ts) == 0 {
		fmt.Fprintf(stderr, "no tokens stored in %s (tokens in the config file or the environment are not listed)\n", *dir)
	}
	return 0
}

func tokenSource(t server.StoredToken) string {
	if t.Legacy {
		return server.LegacyAdminTokenFile
	}
	return server.TokenFileName
}

func tokenRevoke(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("token", stderr)
	dir := fl.String("data", "./vellum-data", "data directory of the store")
	// The name may come before or after the flags.
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := fl.Parse(args); err != nil {
		if err.Error() == "flag: help requested" {
			return 0
		}
		return 2
	}
	if fl.NArg() > 1 || (fl.NArg() == 1 && name != "") {
		return tokenFail(stderr, "revoke takes one token name")
	}
	if fl.NArg() == 1 {
		name = fl.Arg(0)
	}
	if name == "" {
		return tokenFail(stderr, "revoke needs the name of the token (see vellum token list)")
	}
	ts, err := loadTokens(*dir)
	if err != nil {
		return tokenFail(stderr, "%v", err)
	}
	i := slices.IndexFunc(ts, func(t server.StoredToken) bool { return t.Name == name })
	if i < 0 {
		return tokenFail(stderr, "no token named %q in %s (see vellum token list --data %s)", name, *dir, *dir)
	}
	if ts[i].Legacy {
		if err := os.Remove(legacyPath(*dir)); err != nil {
			return tokenFail(stderr, "%v", err)
		}
	} else if err := server.SaveStoredTokens(*dir, slices.Delete(ts, i, i+1)); err != nil {
		return tokenFail(stderr, "%v", err)
	}
	fmt.Fprintf(stdout, "revoked token %q in %s; a running vellum serve on this directory refuses it within a few seconds\n", name, *dir)
	return 0
}

func legacyPath(dir string) string {
	return dir + string(os.PathSeparator) + server.LegacyAdminTokenFile
}
