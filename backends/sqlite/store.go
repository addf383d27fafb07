package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	_ "github.com/mattn/go-sqlite3" // the database/sql driver "sqlite3"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/backends"
	"github.com/vellumlog/vellum/backends/internal/group"
	"github.com/vellumlog/vellum/backends/internal/sqlrec"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/query"
)

// Options configure a Store. Only Keys is required.
type Options struct {
	// Keys holds the active HMAC key, which chains new rows, and retired
	// keys older rows were written under.
	Keys *chain.Keyring
	// Redactor, when set, rewrites every record before it is stored.
	Redactor sqlrec.Redactor
	// MaxRecordSize bounds one record's canonical encoding; default 1 MiB.
	MaxRecordSize int
	// MaxGroup bounds the records one transaction gathers; default 10,000.
	MaxGroup int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger receives structured events (never record contents or keys).
	Logger *slog.Logger
	// MaxPages, when positive, limits the file to this many pages
	// (PRAGMA max_page_count): a test hook that makes a full disk.
	MaxPages int
}

// Store is an AuditStore in one SQLite file.
type Store struct {
	*reader
	opts    Options
	log     *slog.Logger
	storeID [16]byte
	w       *sql.DB // one connection: the group commit's
	commit  *group.Committer[sqlrec.Item]
	ch      sqlrec.Chain // owned by the commit goroutine
	stale   bool         // reload ch from the database before the next group
	closed  atomic.Bool
	last    atomic.Uint64 // the last durable seq, for LastSeq
}

var _ backends.Store = (*Store)(nil)

// reader answers Get and Query; Store and Replica share it.
type reader struct {
	path string
	r    *sql.DB
}

// dsn returns the driver's name for path with the pragmas every connection
// gets: WAL, synchronous=FULL (a commit is fsync'd), a busy timeout, and
// immediate transactions (a writer takes the lock at BEGIN).
func dsn(path string, readOnly bool) string {
	v := url.Values{}
	v.Set("_journal_mode", "WAL")
	v.Set("_synchronous", "FULL")
	v.Set("_busy_timeout", "10000")
	if readOnly {
		v.Set("mode", "ro")
	} else {
		v.Set("_txlock", "immediate")
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + v.Encode()
}

func openDBs(path string, o *Options) (w, r *sql.DB, err error) {
	if path == "" {
		return nil, nil, fmt.Errorf("%w: sqlite: no database path (set audit.sqlite.path)", backends.ErrUnavailable)
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	w, err = sql.Open("sqlite3", dsn(path, false))
	if err != nil {
		return nil, nil, classify(err, path, "open")
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	ctx := context.Background()
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, nil, classify(err, path, "open")
	}
	var mode string
	if err := w.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		w.Close()
		return nil, nil, classify(fmt.Errorf("journal_mode is %q, not wal (%v)", mode, err), path, "open")
	}
	if o != nil && o.MaxPages > 0 {
		if _, err := w.ExecContext(ctx, fmt.Sprintf(`PRAGMA max_page_count = %d`, o.MaxPages)); err != nil {
			w.Close()
			return nil, nil, classify(err, path, "set max_page_count")
		}
	}
	if err := migrate(ctx, w, path); err != nil {
		w.Close()
		return nil, nil, err
	}
	r, err = sql.Open("sqlite3", dsn(path, true))
	if err != nil {
		w.Close()
		return nil, nil, classify(err, path, "open for reading")
	}
	r.SetMaxOpenConns(4)
	return w, r, nil
}

// Open opens (creating it if needed) the SQLite store at path as a primary
// store, applying schema migrations. It refuses a file that holds
// replicated summaries, or a schema newer than this build.
func Open(path string, opts *Options) (*Store, error) {
	if opts == nil || opts.Keys == nil || opts.Keys.Active() == nil {
		return nil, errors.New("sqlite: Options.Keys is required (the HMAC key that chains records)")
	}
	o := *opts
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxGroup <= 0 {
		o.MaxGroup = 10_000
	}
	w, r, err := openDBs(path, &o)
	if err != nil {
		return nil, err
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	s := &Store{reader: &reader{path: path, r: r}, opts: o, w: w,
		log: o.Logger.With(slog.String("component", "sqlite"), slog.String("path", path))}
	s.ch.Keys = o.Keys
	if err := s.load(context.Background()); err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	s.commit = group.New(o.MaxGroup, s.commitGroup)
	s.log.Info("sqlite store open", slog.Uint64("last_seq", s.ch.Next-1), slog.Int("schema_version", SchemaVersion))
	return s, nil
}

// storeID returns the database's store id, creating it on first use.
func loadStoreID(ctx context.Context, db *sql.DB, path string) ([16]byte, error) {
	var id [16]byte
	var h string
	err := db.QueryRowContext(ctx, `SELECT value FROM audit_meta WHERE key = 'store_id'`).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		rand.Read(id[:])
		if _, err := db.ExecContext(ctx, `INSERT INTO audit_meta VALUES ('store_id', ?)`, hex.EncodeToString(id[:])); err != nil {
			return id, classify(err, path, "create the store id")
		}
		return id, nil
	}
	if err != nil {
		return id, classify(err, path, "read the store id")
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 16 {
		return id, fmt.Errorf("%w: sqlite: %s: audit_meta store_id %q is not 16 bytes of hex", backends.ErrSchema, path, h)
	}
	copy(id[:], b)
	return id, nil
}

// load reads the chain's end: the writer head, checked against the last
// row.
func (s *Store) load(ctx context.Context) error {
	id, err := loadStoreID(ctx, s.w, s.path)
	if err != nil {
		return err
	}
	s.storeID = id
	var kind string
	err = s.w.QueryRowContext(ctx, `SELECT kind FROM audit_writers WHERE writer_id = ''`).Scan(&kind)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := s.w.ExecContext(ctx, `INSERT INTO audit_writers (writer_id, kind) VALUES ('', 'primary')`); err != nil {
			return classify(err, s.path, "register the writer")
		}
	case err != nil:
		return classify(err, s.path, "read the writer")
	case kind != "primary":
		return fmt.Errorf("%w: sqlite: %s holds records replicated from an engine, not a primary store; use another file for audit.store: sqlite", backends.ErrSchema, s.path)
	}
	return s.reload(ctx)
}

func (s *Store) reload(ctx context.Context) error {
	var seq, t int64
	var mac []byte
	err := s.w.QueryRowContext(ctx, `SELECT seq, time, mac FROM audit_records ORDER BY seq DESC LIMIT 1`).Scan(&seq, &t, &mac)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		s.ch.Next, s.ch.LastTime = 1, 0
		s.ch.Prev = sqlrec.Genesis(s.storeID, "", s.opts.Keys.Active().ID())
		var hseq int64
		var hmac []byte
		if err := s.w.QueryRowContext(ctx, `SELECT last_seq, last_mac FROM audit_writers WHERE writer_id = ''`).Scan(&hseq, &hmac); err == nil && hseq > 0 {
			// Retention removed every row: continue after the head.
			s.ch.Next = uint64(hseq) + 1
			copy(s.ch.Prev[:], hmac)
		}
	case err != nil:
		return classify(err, s.path, "read the last record")
	default:
		if len(mac) != vellum.MACSize {
			return fmt.Errorf("%w: sqlite: %s: the mac of seq %d is %d bytes", backends.ErrTampered, s.path, seq, len(mac))
		}
		s.ch.Next, s.ch.LastTime = uint64(seq)+1, t
		copy(s.ch.Prev[:], mac)
	}
	s.stale = false
	s.last.Store(s.ch.Next - 1)
	return nil
}

// Append stores records durably; see backends.Store.
func (s *Store) Append(ctx context.Context, recs ...vellum.Record) ([]uint64, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("%w: sqlite: %s", backends.ErrClosed, s.path)
	}
	if len(recs) == 0 {
		return nil, nil
	}
	items, err := sqlrec.Prepare(recs, s.opts.Redactor, s.opts.MaxRecordSize, "")
	if err != nil {
		return nil, err
	}
	seqs, err := s.commit.Do(ctx, items)
	if errors.Is(err, group.ErrClosed) {
		return nil, fmt.Errorf("%w: sqlite: %s", backends.ErrClosed, s.path)
	}
	return seqs, err
}

const insertSQL = `INSERT INTO audit_records (seq, time, ` // + sqlrec.ColumnList

// commitGroup writes one group in one transaction.
func (s *Store) commitGroup(calls [][]sqlrec.Item) ([][]uint64, error) {
	ctx := context.Background()
	if s.stale {
		if err := s.reload(ctx); err != nil {
			return nil, err
		}
	}
	saved := s.ch
	out, err := s.writeGroup(ctx, calls)
	if err != nil {
		s.ch = saved
		s.stale = true // a failed COMMIT may or may not have landed
		return nil, err
	}
	s.last.Store(s.ch.Next - 1)
	return out, nil
}

// LastSeq returns the seq of the last durable record (0 when empty): the
// high-water mark a query's first page pins in its cursor.
func (s *Store) LastSeq() uint64 { return s.last.Load() }

func (s *Store) writeGroup(ctx context.Context, calls [][]sqlrec.Item) ([][]uint64, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, classify(err, s.path, "begin")
	}
	defer tx.Rollback()
	ins, err := tx.PrepareContext(ctx, insertSQL+sqlrec.ColumnList+`) VALUES (?, ?`+strings.Repeat(", ?", len(sqlrec.Columns))+`)`)
	if err != nil {
		return nil, classify(err, s.path, "prepare")
	}
	defer ins.Close()
	dup, err := tx.PrepareContext(ctx, `SELECT seq FROM audit_records WHERE tenant_id = ? AND event_id = ? AND event_id <> '' ORDER BY seq LIMIT 1`)
	if err != nil {
		return nil, classify(err, s.path, "prepare")
	}
	defer dup.Close()
	now := s.opts.Now().UnixNano()
	seen := map[string]uint64{}
	out := make([][]uint64, len(calls))
	args := make([]any, 0, 2+len(sqlrec.Columns))
	for ci, items := range calls {
		seqs := make([]uint64, len(items))
		for i := range items {
			it := &items[i]
			if it.Dedup {
				k := sqlrec.DedupKey(&it.Rec)
				if seq, ok := seen[k]; ok {
					seqs[i] = seq
					continue
				}
				var seq int64
				err := dup.QueryRowContext(ctx, it.Rec.TenantID, it.Rec.EventID).Scan(&seq)
				if err == nil {
					seqs[i], seen[k] = uint64(seq), uint64(seq)
					continue
				}
				if !errors.Is(err, sql.ErrNoRows) {
					return nil, classify(err, s.path, "look up event_id")
				}
				seen[k] = s.ch.Next
			}
			r := it.Rec
			if err := s.ch.Stamp(&r, now); err != nil {
				return nil, err
			}
			row, err := sqlrec.FromRecord(&r, 0, sqlrec.Options{})
			if err != nil {
				return nil, err
			}
			args = append(args[:0], int64(row.Seq), row.TimeNS)
			args = append(args, row.Values()...)
			if _, err := ins.ExecContext(ctx, args...); err != nil {
				return nil, classify(err, s.path, fmt.Sprintf("insert seq %d", row.Seq))
			}
			seqs[i] = r.Seq
		}
		out[ci] = seqs
	}
	if _, err := tx.ExecContext(ctx, `UPDATE audit_writers SET last_seq = ?, last_mac = ?, last_time = ?, updated = ? WHERE writer_id = ''`,
		int64(s.ch.Next-1), s.ch.Prev[:], s.ch.LastTime, now); err != nil {
		return nil, classify(err, s.path, "update the writer head")
	}
	if err := tx.Commit(); err != nil {
		return nil, classify(err, s.path, "commit")
	}
	return out, nil
}

// Get returns the record with seq; see backends.Store.
func (d *reader) Get(ctx context.Context, seq uint64) (vellum.Record, error) {
	if seq == 0 || seq > 1<<63-1 {
		return vellum.Record{}, fmt.Errorf("%w: sqlite: seq %d", backends.ErrNotFound, seq)
	}
	var sc sqlrec.Scanner
	var t int64
	var s int64
	dest := append([]any{&s, &t}, sc.Dest()...)
	err := d.r.QueryRowContext(ctx, `SELECT seq, time, `+sqlrec.ColumnList+` FROM audit_records WHERE seq = ?`, int64(seq)).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return vellum.Record{}, fmt.Errorf("%w: sqlite: seq %d", backends.ErrNotFound, seq)
	}
	if err != nil {
		return vellum.Record{}, classify(err, d.path, "get")
	}
	row := sc.Row(uint64(s), t)
	return row.Record("")
}

var dialect = sqlrec.Dialect{
	Placeholder: func(int) string { return "?" },
	TimeCol:     "time",
	PosCol:      "seq",
	AnyOf: func(col string, vals []string, _ int) (string, []any) {
		args := make([]any, len(vals))
		for i, v := range vals {
			args[i] = v
		}
		return col + " IN (?" + strings.Repeat(", ?", len(vals)-1) + ")", args
	},
}

// Query returns a page of records matching q; see backends.Store.
func (d *reader) Query(ctx context.Context, q query.Query) (query.Page, error) {
	if err := q.Normalize(); err != nil {
		return query.Page{}, err
	}
	lo, hi, ok := sqlrec.Bounds(&q)
	if !ok {
		return query.Page{}, nil
	}
	where, args := dialect.Where(&q, lo, hi)
	args = append(args, q.Limit)
	rows, err := d.r.QueryContext(ctx, `SELECT seq, time, `+sqlrec.ColumnList+` FROM audit_records WHERE `+where+
		` ORDER BY `+dialect.OrderBy(&q)+` LIMIT ?`, args...)
	if err != nil {
		return query.Page{}, classify(err, d.path, "query")
	}
	defer rows.Close()
	var page query.Page
	var sc sqlrec.Scanner
	var seq, t int64
	dest := append([]any{&seq, &t}, sc.Dest()...)
	check := q
	check.After = nil
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return query.Page{}, classify(err, d.path, "query")
		}
		row := sc.Row(uint64(seq), t)
		rec, err := row.Record("")
		if err != nil {
			return query.Page{}, fmt.Errorf("sqlite: %s: %w", d.path, err)
		}
		if !check.Match(&rec) {
			return query.Page{}, fmt.Errorf("sqlite: %s: seq %d does not match the query the SQL selected it for", d.path, rec.Seq)
		}
		page.Records = append(page.Records, rec)
	}
	if err := rows.Err(); err != nil {
		return query.Page{}, classify(err, d.path, "query")
	}
	if len(page.Records) == q.Limit {
		last := query.PositionOf(&page.Records[len(page.Records)-1])
		page.Next = &last
	}
	return page, nil
}

// Err returns nil while the store is open.
func (s *Store) Err() error {
	if s.closed.Load() {
		return fmt.Errorf("%w: sqlite: %s", backends.ErrClosed, s.path)
	}
	return nil
}

// Close commits what callers handed in and closes the file.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.commit.Close()
	err := s.w.Close()
	if rerr := s.r.Close(); err == nil {
		err = rerr
	}
	s.log.Info("sqlite store closed")
	return err
}

// Path returns the database file.
func (d *reader) Path() string { return d.path }
