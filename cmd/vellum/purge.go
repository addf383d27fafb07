package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/server"
)

// openStopped opens the store of a stopped server for retention work
// (purge, holds): the config's keys and retention policy, the directory's
// lock (a running server holds it), no background purge.
func openStopped(dir, cfgPath string, maxAge string, stderr io.Writer) (*engine.Engine, error) {
	cfg := server.DefaultConfig()
	if cfgPath != "" {
		var err error
		if cfg, err = server.LoadConfig(cfgPath); err != nil {
			return nil, err
		}
	}
	cfg.DataDir = dir
	if maxAge != "" {
		d, err := server.ParseDuration(maxAge)
		if err != nil {
			return nil, fmt.Errorf("--max-age: %v", err)
		}
		cfg.Audit.Retention.MaxAge = d
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Audit.Store != server.StoreSegment {
		return nil, fmt.Errorf("audit.store is %s: this command works on the segment store; a SQL store is purged by the server (docs/retention.md)", cfg.Audit.Store)
	}
	if nums, err := layout.ListSegments(nil, dir); err != nil || len(nums) == 0 {
		return nil, fmt.Errorf("%s holds no store (no segments)", dir)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	keys, err := loadHMACKey(cfg, log)
	if err != nil {
		return nil, err
	}
	var signer note.Signer
	path := cfg.Audit.SigningKeyFile
	if path == "" {
		path = filepath.Join(dir, checkpoint.PrivateKeyFile)
	}
	if _, err := os.Stat(path); err == nil {
		if signer, err = checkpoint.LoadSigner(path); err != nil {
			return nil, err
		}
	}
	ret := cfg.Audit.Retention.EngineRetention()
	ret.PurgeEvery = 0
	codec, _ := cfg.Audit.CompressionCodec()
	e, err := engine.Open(dir, &engine.Options{Keys: keys, Signer: signer, Logger: log, Retention: ret, Codec: codec,
		SegmentSize: int64(cfg.Audit.SegmentMaxSize), MaxRecordSize: int(cfg.Audit.MaxRecordSize)})
	if errors.Is(err, engine.ErrLocked) {
		return nil, fmt.Errorf("%w: stop the server first, or use its admin API (POST /v1/audit/purge, /v1/audit/holds)", err)
	}
	return e, err
}

func runPurge(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("purge", stderr)
	dir := fl.String("data", "./vellum-data", "data directory of a stopped server (the command takes its lock)")
	cfgPath := fl.String("config", "", "the server's config file: audit.retention (max_age, tenants, floor, legal_holds) and its keys")
	maxAge := fl.String("max-age", "", "retention period instead of audit.retention.max_age (e.g. 365d); the floor still applies")
	dry := fl.Bool("dry-run", false, "only list what would be purged and why")
	by := fl.String("by", "", "who runs the purge, recorded in the anchor record (default: the OS user)")
	asJSON := fl.Bool("json", false, "print the result as JSON")
	if code, ok := parse(fl, args); !ok {
		return code
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "vellum purge: %v\n", err)
		return 2
	}
	if *cfgPath == "" && *maxAge == "" {
		return fail(errors.New("no retention period: give --config (its audit.retention) or --max-age"))
	}
	e, err := openStopped(*dir, *cfgPath, *maxAge, stderr)
	if err != nil {
		return fail(err)
	}
	defer e.Close()
	who := *by
	if who == "" {
		who = "vellum purge (" + os.Getenv("USER") + ")"
	}
	res, err := e.Retention().Purge(context.Background(), engine.PurgeOptions{DryRun: *dry, By: who})
	if err != nil {
		return fail(err)
	}
	if err := e.Close(); err != nil {
		return fail(err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
		return 0
	}
	writePurge(stdout, res)
	return 0
}

func writePurge(w io.Writer, res *engine.PurgeResult) {
	verb := "purged"
	if res.DryRun {
		verb = "would purge"
	}
	if len(res.Segments) == 0 {
		fmt.Fprintf(w, "nothing to purge\n")
	}
	for _, s := range res.Segments {
		fmt.Fprintf(w, "%s segment %d: seq %d..%d, %s to %s, %d bytes", verb, s.Segment, s.FirstSeq, s.LastSeq,
			s.FirstTime.Format(time.RFC3339Nano), s.LastTime.Format(time.RFC3339Nano), s.Bytes)
		if len(s.Tenants) > 0 {
			fmt.Fprintf(w, ", tenants with their own period: %s", strings.Join(s.Tenants, ", "))
		}
		fmt.Fprintf(w, "; rule %s (expired %s)\n", s.Rule, s.ExpiredAt.Format(time.RFC3339Nano))
	}
	if k := res.Kept; k != nil {
		fmt.Fprintf(w, "kept from segment %d on: %s\n", k.Segment, k.Reason)
	}
	if res.AnchorSeq > 0 {
		fmt.Fprintf(w, "anchor record: seq %d (retention.purge); %d bytes reclaimed\n", res.AnchorSeq, res.Bytes)
	}
}

func runHolds(args []string, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "vellum holds: %v\n", err)
		return 2
	}
	sub := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	fl := newFlags("holds", stderr)
	dir := fl.String("data", "./vellum-data", "data directory of a stopped server (the command takes its lock)")
	cfgPath := fl.String("config", "", "the server's config file (its keys)")
	tenant := fl.String("tenant", "", "set: the tenant held (default: every tenant)")
	since := fl.String("since", "", "set: start of the receipt-time range held, RFC 3339 (default: unbounded)")
	until := fl.String("until", "", "set: end of the range held, exclusive (default: unbounded)")
	reason := fl.String("reason", "", "set: why (required)")
	id := fl.String("id", "", "release: the hold's id")
	by := fl.String("by", "", "who sets or releases it, recorded in its audit record (default: the OS user)")
	if code, ok := parse(fl, args); !ok {
		return code
	}
	if sub != "list" && sub != "set" && sub != "release" {
		return fail(errors.New("usage: vellum holds list|set|release --data DIR ... (see vellum holds -h)"))
	}
	e, err := openStopped(*dir, *cfgPath, "", stderr)
	if err != nil {
		return fail(err)
	}
	defer e.Close()
	who := *by
	if who == "" {
		who = "vellum holds (" + os.Getenv("USER") + ")"
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	ctx := context.Background()
	switch sub {
	case "list":
		hs := e.Retention().Holds()
		if hs == nil {
			hs = []layout.Hold{}
		}
		enc.Encode(hs)
	case "set":
		h := layout.Hold{TenantID: *tenant, Reason: *reason}
		for _, t := range []struct {
			flag, v string
			p       *time.Time
		}{{"--since", *since, &h.Since}, {"--until", *until, &h.Until}} {
			if t.v == "" {
				continue
			}
			if *t.p, err = time.Parse(time.RFC3339Nano, t.v); err != nil {
				return fail(fmt.Errorf("%s %q is not an RFC 3339 time", t.flag, t.v))
			}
		}
		if h, err = e.Retention().SetHold(ctx, h, who); err != nil {
			return fail(err)
		}
		enc.Encode(h)
	case "release":
		if *id == "" {
			return fail(errors.New("release needs --id"))
		}
		h, err := e.Retention().ReleaseHold(ctx, *id, who)
		if err != nil {
			return fail(err)
		}
		enc.Encode(h)
	}
	if err := e.Close(); err != nil {
		return fail(err)
	}
	return 0
}
