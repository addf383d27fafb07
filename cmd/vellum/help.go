package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// helpText is what `vellum <command> -h` prints besides the flags. Every
// command has one (TestEveryCommandHasHelp).
type helpText struct {
	usage       string   // synopsis lines, without "vellum "
	description string   // what it does, in a few sentences
	env         []string // environment variables it reads, "NAME  meaning"; none: it reads none
	examples    string   // shell lines, with comments
}

var helps = map[string]helpText{
	"purge": {
		usage: "purge --data DIR (--config FILE | --max-age D) [--dry-run] [--json] [--by NAME]",
		description: `Purges the sealed segments at the front of a stopped store whose records
are all past their retention period (audit.retention in the config, or
--max-age), up to the first segment that is not or that a legal hold
touches (docs/retention.md). It first appends a retention.purge anchor
record naming what goes and signs a checkpoint covering it, then writes the
retention manifest (DATA/purged), then deletes the files. --dry-run lists
each segment that would go (seq and time range, tenants with their own
period, the rule) and the first one kept and why, and changes nothing. It
takes the store's lock: on a running server use POST /v1/audit/purge.`,
		examples: `vellum purge --data /var/lib/vellum --config /etc/vellum/vellum.yaml --dry-run
vellum purge --data /var/lib/vellum --config /etc/vellum/vellum.yaml`,
	},
	"holds": {
		usage: "holds list|set|release --data DIR [--config FILE] [--tenant T] [--since T] [--until T] [--reason R] [--id ID] [--by NAME]",
		description: `Lists, sets or releases legal holds on a stopped store (on a running
server: GET, POST /v1/audit/holds and DELETE /v1/audit/holds/{id}). A hold
by tenant, receipt-time range or both keeps every segment it touches from
being purged; setting and releasing one are audit records
(retention.hold.set, retention.hold.release). Prints JSON.`,
		examples: `vellum holds set --data /var/lib/vellum --tenant acme --reason "case 2026-17" --by counsel
vellum holds list --data /var/lib/vellum
vellum holds release --data /var/lib/vellum --id hold-0123456789abcdef --by counsel`,
	},
	"serve": {
		usage: "serve [--config FILE] [--data DIR] [--addr HOST:PORT] [--cpuprofile FILE] [--memprofile FILE]",
		description: `Runs the HTTP API (docs/api.md) on a data directory. Without a config it
needs no setup: it creates the data directory, the HMAC key, the checkpoint
signing key pair (signing.pub is for auditors) and the pseudonym key, and
on a store with no token configured prints an admin token once, after it
is listening. The whole config is checked before anything is written to
disk. Tokens in DATA/tokens.json (vellum token) are picked up while it
runs. SIGTERM or SIGINT stops it after the requests in flight; SIGHUP
reloads the TLS certificate and key (tls.cert_file, tls.key_file). It
serves Prometheus metrics at /metrics (docs/metrics.md) and refuses ingest
with 507 while free disk space is below audit.disk.min_free.`,
		env: []string{
			"VELLUM_ADMIN_TOKEN   adds a principal quickstart-admin (role admin) with this token",
			"VELLUM_INGEST_TOKEN  adds a principal quickstart-ingest (role ingest) with this token",
			"${VAR} in the config any variable the config file substitutes, token_env and hmac_key_env",
		},
		examples: `vellum serve                                   # ./vellum-data on 127.0.0.1:8080
vellum serve --config vellum.yaml               # see vellum.example.yaml
vellum serve --data /var/lib/vellum --addr 0.0.0.0:8080`,
	},
	"query": {
		usage: "query [--server URL] [--token T] [--since T --until T --event_since T --tenant_id ID --action A. ...] [--all | --count] [--json]",
		description: `Queries a running server's log (GET /v1/audit) and prints a table or
JSON lines. The read is authorized by the token and recorded as an
audit.query record like any other. --all follows the pages through the
log as it stood at the first page; --count prints only how many records
match (GET /v1/audit/count, audited too). since/until filter the receipt
time, event_since/event_until the producer's event time.`,
		env: clientEnvHelp,
		examples: `vellum query --tenant_id acme --action approval. --order desc --limit 20
vellum query --event_since 2026-11-27T00:00:00Z --event_until 2026-11-28T00:00:00Z --all --json > day.jsonl
vellum query --tenant_id acme --outcome denied --since 2026-11-24T00:00:00Z --count`,
	},
	"inspect": {
		usage:       "inspect --data DIR [--json]",
		description: "Lists the segments of a data directory: state, record counts, seq and time ranges, sizes, key ids. Read only; it takes no lock.",
		examples:    "vellum inspect --data ./vellum-data\nvellum inspect --data ./vellum-data --json | jq .records",
	},
	"keygen": {
		usage: "keygen --out DIR [--name NAME]",
		description: `Creates a new HMAC chain key (hmac.key, mode 0600) and an Ed25519
checkpoint signing key pair (signing.key 0600, signing.pub for auditors) in
DIR, for stores whose keys live outside the data directory
(audit.hmac_key_file, audit.signing_key_file). The key name appears in every
signature line. C2SP tlog-checkpoint recommends naming it after the log's
origin, vellum/<store id> (the STORE file's store_id; vellum serve logs the
origin at startup and warns when the key's name differs). The key vellum
serve generates in a data directory is named so. It never overwrites a
key: an existing key file is an error.`,
		examples: "vellum keygen --out /etc/vellum/keys --name vellum/0123456789abcdef0123456789abcdef",
	},
	"token": {
		usage: `token create --data DIR --name NAME --role admin|auditor|ingest [--tenants a,b]
       token list   --data DIR [--json]
       token revoke --data DIR NAME`,
		description: `Manages API tokens offline, in DATA/tokens.json, which keeps only their
SHA-256. create prints the new token once on stdout; list shows names,
roles, scopes and hash prefixes; revoke removes one. A running vellum serve
on the directory picks the change up within a few seconds. This is also how
to recover a lost admin token: create a new one, then revoke the old
("admin" is the first-run token).`,
		examples: `vellum token create --data ./vellum-data --name admin2 --role admin
vellum token create --data ./vellum-data --name acme-auditor --role auditor --tenants acme
vellum token list --data ./vellum-data
vellum token revoke --data ./vellum-data admin`,
	},
	"checkpoint": {
		usage: "checkpoint [--server URL] [--token T] [--out FILE]",
		description: `Asks a running server to sign a checkpoint of every record acknowledged
so far (POST /v1/audit/checkpoints; an admin token) and prints the signed
note, or writes it to FILE. Keep it: vellum verify --checkpoint and
vellum consistency check the log against it later, and vellum export
--proof --checkpoint proves records against it.`,
		env:      clientEnvHelp,
		examples: "vellum checkpoint --out cp-$(date +%F).txt\nvellum export --data ./vellum-data --proof --checkpoint cp-2026-11-27.txt --out evidence.jsonl",
	},
	"consistency": {
		usage: `consistency --first N --second M (--server URL [--token T] | --data DIR)
       consistency --pubkey FILE --old FILE [--new FILE] (--server URL [--token T] | --data DIR)`,
		description: `Gets the RFC 6962 consistency proof that the log's tree of N records is
a prefix of its tree of M records, from a running server
(GET /v1/audit/consistency) or offline from a data directory, and prints
it as JSON. With --old (and --new, default: the latest checkpoint) it
checks instead: both signed notes against the public key, and the proof
between their sizes against their roots. Exit 0 consistent, 1 not, 2 on
usage or I/O errors.`,
		env: clientEnvHelp,
		examples: `vellum consistency --first 600 --second 650 --server http://127.0.0.1:8080
vellum consistency --pubkey signing.pub --old cp-2026-10-01.txt --data ./copy-of-vellum-data`,
	},
	"verify": {
		usage: `verify --data DIR [--pubkey FILE] [--key FILE] [--checkpoint FILE] [--json]
       verify --bundle FILE --pubkey FILE [--json]`,
		description: `Verifies a data directory (a copy is best; it is never written) or an
evidence bundle offline: framing and CRCs, links between segments, Merkle
roots, checkpoint signatures and roots, the HMAC chain with --key, and the
data against a checkpoint you kept with --checkpoint (a note saved with
trailing newlines, as jq -r writes it, is accepted). Exit 0 intact, 1 not
intact, 2 on usage or I/O errors. See docs/auditors.md.`,
		examples: `vellum verify --data ./copy --pubkey signing.pub
vellum verify --data ./copy --pubkey signing.pub --checkpoint cp-2026-10-01.txt --key hmac.key
vellum verify --bundle evidence.jsonl --pubkey signing.pub`,
	},
	"export": {
		usage: `export --data DIR [--from N] [--to N] [filters] [--format jsonl|csv] [--out FILE]
       export --data DIR --proof [--pubkey FILE] [--checkpoint FILE | --server URL] [--from N] [--to N] [filters] --out FILE`,
		description: `Exports records of a data directory (read only; no lock) as JSON lines or
CSV, or with --proof as an evidence bundle: a signed checkpoint, then each
record with its canonical encoding and inclusion proof, verifiable with
vellum verify --bundle and the public key alone. The query filters select
records (since/until: receipt time; event_since/event_until: event time).
It says on stderr what the export covers. A bundle can only hold records a
checkpoint covers: --server URL (an admin token) has the running server
sign one now so the bundle covers everything up to this moment; otherwise
the latest checkpoint in DIR (or --checkpoint FILE) is used and newer
records are reported as left out. --out is written to a temporary file
and renamed on success: a failed export leaves no file.`,
		env: clientEnvHelp,
		examples: `vellum export --data ./vellum-data --tenant_id acme --format csv --out acme.csv
vellum export --data ./vellum-data --from 1200 --to 1350 --out records.jsonl
vellum export --data ./vellum-data --proof --pubkey signing.pub --server http://127.0.0.1:8080 \
    --action approval. --since 2026-03-01T00:00:00Z --until 2026-04-01T00:00:00Z --out evidence.jsonl`,
	},
}

// printHelp prints a command's help: usage, description, flags,
// environment and examples.
func printHelp(w io.Writer, name string, fs *flag.FlagSet) {
	h, ok := helps[name]
	if !ok {
		fmt.Fprintf(w, "usage: vellum %s [flags]\n\nFlags:\n", name)
		fs.PrintDefaults()
		return
	}
	fmt.Fprintf(w, "usage: vellum %s\n\n%s\n\nFlags:\n", h.usage, h.description)
	fs.PrintDefaults()
	fmt.Fprintln(w, "\nEnvironment:")
	if len(h.env) == 0 {
		fmt.Fprintln(w, "  none: this command reads no environment variables")
	}
	for _, e := range h.env {
		fmt.Fprintf(w, "  %s\n", e)
	}
	fmt.Fprintln(w, "\nExamples:")
	for _, l := range strings.Split(h.examples, "\n") {
		fmt.Fprintf(w, "  %s\n", l)
	}
}
