package postgres

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/backends"
	"github.com/vellumlog/vellum/backends/internal/group"
	"github.com/vellumlog/vellum/backends/internal/sqlrec"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/query"
)

// Options configure a Store. DSN, WriterID and Keys are required.
type Options struct {
	// DSN is the database URL (postgres://user:password@host:port/db?...)
	// or keyword string. Its password is never logged.
	DSN string
	// WriterID names this writer (one agent-server replica): its own chain
	// and seqs. Two processes must not share one (they would take turns
	// on one chain, slowly).
	WriterID string
	// Keys holds the active HMAC key and retired ones.
	Keys *chain.Keyring
	// Redactor, when set, rewrites every record before it is stored.
	Redactor sqlrec.Redactor
	// MaxRecordSize bounds one record's canonical encoding; default 1 MiB.
	MaxRecordSize int
	// MaxGroup bounds the records one transaction gathers; default 10,000.
	MaxGroup int
	// MaxConns bounds the connection pool; default 4.
	MaxConns int32
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger receives structured events (never record contents, keys or
	// passwords).
	Logger *slog.Logger
}

// Store is one writer's AuditStore in a PostgreSQL database.
type Store struct {
	*reader
	opts    Options
	log     *slog.Logger
	storeID [16]byte
	commit  *group.Committer[sqlrec.Item]
	ch      sqlrec.Chain // owned by the commit goroutine
	stale   bool
	closed  atomic.Bool
	last    atomic.Uint64 // the last durable seq of this writer, for LastSeq
}

var _ backends.Store = (*Store)(nil)

// reader holds the pool and answers reads; Store reads its own writer's
// rows, Replica every writer's.
type reader struct {
	dsn    string
	pool   *pgxpool.Pool
	writer string   // "" for every writer (the fleet view)
	parts  sync.Map // day (Unix days) -> true once its partition exists
}

// maxWriterID bounds a writer id.
const maxWriterID = 128

func connect(ctx context.Context, dsn string, maxConns int32, log *slog.Logger) (*pgxpool.Pool, error) {
	if dsn == "" {
		return nil, fmt.Errorf("%w: postgres: no DSN (set audit.postgres.dsn, e.g. postgres://vellum@db:5432/audit)", backends.ErrUnavailable)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("%w: postgres: the DSN %s does not parse: %v", backends.ErrUnavailable, Redact(dsn), scrub(err.Error(), dsn))
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "vellum"
	}
	cfg.ConnConfig.RuntimeParams["TimeZone"] = "UTC"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, classify(err, dsn, "connect")
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, classify(err, dsn, "connect")
	}
	log.Info("postgres connected", slog.String("dsn", Redact(dsn)))
	return pool, nil
}

// Open connects, applies migrations, registers the writer and reads where
// its chain ends.
func Open(ctx context.Context, opts *Options) (*Store, error) {
	if opts == nil || opts.Keys == nil || opts.Keys.Active() == nil {
		return nil, errors.New("postgres: Options.Keys is required (the HMAC key that chains records)")
	}
	o := *opts
	if o.WriterID == "" || len(o.WriterID) > maxWriterID || strings.IndexByte(o.WriterID, 0) >= 0 {
		return nil, fmt.Errorf("postgres: Options.WriterID must name this writer (1 to %d bytes, e.g. the host name)", maxWriterID)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxGroup <= 0 {
		o.MaxGroup = 10_000
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 4
	}
	log := o.Logger.With(slog.String("component", "postgres"), slog.String("writer", o.WriterID))
	pool, err := connect(ctx, o.DSN, o.MaxConns, log)
	if err != nil {
		return nil, err
	}
	s := &Store{reader: &reader{dsn: o.DSN, pool: pool, writer: o.WriterID}, opts: o, log: log}
	s.ch.Keys = o.Keys
	if err := s.open(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	s.commit = group.New(o.MaxGroup, s.commitGroup)
	log.Info("postgres store open", slog.Uint64("last_seq", s.ch.Next-1), slog.Int("schema_version", SchemaVersion))
	return s, nil
}

func (s *Store) open(ctx context.Context) error {
	if err := migrate(ctx, s.pool, s.dsn); err != nil {
		return err
	}
	id, err := readStoreID(ctx, s.pool, s.dsn)
	if err != nil {
		return err
	}
	s.storeID = id
	if _, err := s.pool.Exec(ctx, `INSERT INTO audit_writers (writer_id, kind) VALUES ($1, 'primary') ON CONFLICT DO NOTHING`, s.opts.WriterID); err != nil {
		return classify(err, s.dsn, "register writer "+s.opts.WriterID)
	}
	return s.reload(ctx)
}

func readStoreID(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, dsn string) ([16]byte, error) {
	var id [16]byte
	var h string
	if err := q.QueryRow(ctx, `SELECT value FROM audit_meta WHERE key = 'store_id'`).Scan(&h); err != nil {
		return id, classify(err, dsn, "read the store id")
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 16 {
		return id, fmt.Errorf("%w: postgres %s: audit_meta store_id %q is not 16 bytes of hex", backends.ErrSchema, Redact(dsn), h)
	}
	copy(id[:], b)
	return id, nil
}

// reload reads the writer's head: where its chain ends.
func (s *Store) reload(ctx context.Context) error {
	var kind string
	var seq, t int64
	var mac []byte
	err := s.pool.QueryRow(ctx, `SELECT kind, last_seq, last_mac, last_time FROM audit_writers WHERE writer_id = $1`, s.opts.WriterID).Scan(&kind, &seq, &mac, &t)
	if err != nil {
		return classify(err, s.dsn, "read the head of writer "+s.opts.WriterID)
	}
	if kind != "primary" {
		return fmt.Errorf("%w: postgres %s: writer id %q holds records replicated from an engine; give this store another writer id", backends.ErrSchema, Redact(s.dsn), s.opts.WriterID)
	}
	if seq == 0 {
		s.ch.Next, s.ch.LastTime = 1, 0
		s.ch.Prev = sqlrec.Genesis(s.storeID, s.opts.WriterID, s.opts.Keys.Active().ID())
	} else {
		if len(mac) != vellum.MACSize {
			return fmt.Errorf("%w: postgres: writer %q head mac is %d bytes", backends.ErrTampered, s.opts.WriterID, len(mac))
		}
		s.ch.Next, s.ch.LastTime = uint64(seq)+1, t
		copy(s.ch.Prev[:], mac)
	}
	s.stale = false
	s.last.Store(s.ch.Next - 1)
	return nil
}

// LastSeq returns the seq of this writer's last durable record (0 when
// none): the high-water mark a query's first page pins in its cursor.
func (s *Store) LastSeq() uint64 { return s.last.Load() }

// Append stores records durably as this writer; see backends.Store.
func (s *Store) Append(ctx context.Context, recs ...vellum.Record) ([]uint64, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("%w: postgres writer %s", backends.ErrClosed, s.opts.WriterID)
	}
	if len(recs) == 0 {
		return nil, nil
	}
	items, err := sqlrec.Prepare(recs, s.opts.Redactor, s.opts.MaxRecordSize, "PostgreSQL")
	if err != nil {
		return nil, err
	}
	seqs, err := s.commit.Do(ctx, items)
	if errors.Is(err, group.ErrClosed) {
		return nil, fmt.Errorf("%w: postgres writer %s", backends.ErrClosed, s.opts.WriterID)
	}
	return seqs, err
}

// errHeadMoved reports that another process appended as this writer.
var errHeadMoved = errors.New("postgres: the writer's head moved (another process appends with this writer id)")

func (s *Store) commitGroup(calls [][]sqlrec.Item) ([][]uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for attempt := 0; ; attempt++ {
		if s.stale {
			if err := s.reload(ctx); err != nil {
				return nil, err
			}
		}
		saved := s.ch
		out, err := s.writeGroup(ctx, calls)
		if err == nil {
			s.last.Store(s.ch.Next - 1)
			return out, nil
		}
		s.ch = saved
		s.stale = true // a failed COMMIT may or may not have landed
		if !errors.Is(err, errHeadMoved) || attempt > 0 {
			return nil, err
		}
		s.log.Warn("another process appended with this writer id; continuing after its records", slog.String("writer", s.opts.WriterID))
	}
}

// copyColumns are the columns a group's COPY fills.
var copyColumns = append([]string{"writer_id", "seq", "time", "time_ns"}, sqlrec.Columns...)

func (s *Store) writeGroup(ctx context.Context, calls [][]sqlrec.Item) ([][]uint64, error) {
	now := s.opts.Now().UnixNano()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, classify(err, s.dsn, "connect")
	}
	defer conn.Release()
	// The partitions the group's times fall in exist before the
	// transaction, so creating one never holds a lock across a commit.
	if err := s.ensurePartitions(ctx, conn, max(now, s.ch.LastTime+1), max(now, s.ch.LastTime)+int64(s.opts.MaxGroup)+1); err != nil {
		return nil, err
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, classify(err, s.dsn, "begin")
	}
	defer tx.Rollback(ctx)
	existing, err := s.lookupDups(ctx, tx, calls)
	if err != nil {
		return nil, err
	}
	head := s.ch.Next - 1
	seen := map[string]uint64{}
	out := make([][]uint64, len(calls))
	var rows [][]any
	for ci, items := range calls {
		seqs := make([]uint64, len(items))
		for i := range items {
			it := &items[i]
			var k string
			if it.Dedup {
				k = sqlrec.DedupKey(&it.Rec)
				if seq, ok := seen[k]; ok {
					seqs[i] = seq
					continue
				}
				if seq, ok := existing[k]; ok {
					seqs[i], seen[k] = seq, seq
					continue
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
			rows = append(rows, rowValues(s.opts.WriterID, &row))
			seqs[i] = r.Seq
		}
		out[ci] = seqs
	}
	if len(rows) > 0 {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"audit_records"}, copyColumns, pgx.CopyFromRows(rows)); err != nil {
			return nil, classify(err, s.dsn, fmt.Sprintf("copy %d rows", len(rows)))
		}
		tag, err := tx.Exec(ctx, `UPDATE audit_writers SET last_seq = $2, last_mac = $3, last_time = $4, updated = now() WHERE writer_id = $1 AND last_seq = $5`,
			s.opts.WriterID, int64(s.ch.Next-1), s.ch.Prev[:], s.ch.LastTime, int64(head))
		if err != nil {
			return nil, classify(err, s.dsn, "update the writer head")
		}
		if tag.RowsAffected() != 1 {
			return nil, errHeadMoved
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, classify(err, s.dsn, "commit")
	}
	return out, nil
}

// rowValues returns the COPY values of row for writer, in copyColumns
// order.
func rowValues(writer string, row *sqlrec.Row) []any {
	v := make([]any, 0, len(copyColumns))
	v = append(v, writer, int64(row.Seq), time.UnixMicro(floorDiv(row.TimeNS, 1000)).UTC(), row.TimeNS)
	return append(v, row.Values()...)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

const dayNS = int64(24 * time.Hour)

// ensurePartitions makes sure the day partitions covering [lo, hi] (Unix
// ns) exist.
func (d *reader) ensurePartitions(ctx context.Context, conn *pgxpool.Conn, lo, hi int64) error {
	for day := floorDiv(lo, dayNS); day <= floorDiv(hi, dayNS); day++ {
		if _, ok := d.parts.Load(day); ok {
			continue
		}
		if _, err := conn.Exec(ctx, `SELECT audit_ensure_partition($1)`, time.Unix(0, day*dayNS).UTC()); err != nil {
			return classify(err, d.dsn, "create the partition of "+time.Unix(0, day*dayNS).UTC().Format(time.DateOnly))
		}
		d.parts.Store(day, true)
	}
	return nil
}

// lookupDups returns the seqs this writer already stored for the (tenant,
// event_id) pairs of the group.
func (s *Store) lookupDups(ctx context.Context, tx pgx.Tx, calls [][]sqlrec.Item) (map[string]uint64, error) {
	var tenants, events []string
	for _, items := range calls {
		for i := range items {
			if items[i].Dedup {
				tenants = append(tenants, items[i].Rec.TenantID)
				events = append(events, items[i].Rec.EventID)
			}
		}
	}
	if len(tenants) == 0 {
		return nil, nil
	}
	rows, err := tx.Query(ctx, `SELECT a.tenant_id, a.event_id, min(a.seq) FROM audit_records a
		JOIN unnest($2::text[], $3::text[]) AS k(tenant_id, event_id) ON a.tenant_id = k.tenant_id AND a.event_id = k.event_id
		WHERE a.writer_id = $1 AND a.event_id <> '' AND a.segment IS NULL GROUP BY a.tenant_id, a.event_id`, s.opts.WriterID, tenants, events)
	if err != nil {
		return nil, classify(err, s.dsn, "look up event ids")
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var r vellum.Record
		var seq int64
		if err := rows.Scan(&r.TenantID, &r.EventID, &seq); err != nil {
			return nil, classify(err, s.dsn, "look up event ids")
		}
		out[sqlrec.DedupKey(&r)] = uint64(seq)
	}
	return out, classify(rows.Err(), s.dsn, "look up event ids")
}

// selectCols are the columns reads take, before sqlrec.Columns.
const selectCols = `writer_id, row_id, seq, time_ns, `

// Get returns this writer's record with seq; see backends.Store.
func (s *Store) Get(ctx context.Context, seq uint64) (vellum.Record, error) {
	if seq == 0 || seq > 1<<63-1 {
		return vellum.Record{}, fmt.Errorf("%w: postgres writer %s seq %d", backends.ErrNotFound, s.opts.WriterID, seq)
	}
	var sc sqlrec.Scanner
	var w string
	var rowID, sq, t int64
	dest := append([]any{&w, &rowID, &sq, &t}, sc.Dest()...)
	err := s.pool.QueryRow(ctx, `SELECT `+selectCols+sqlrec.ColumnList+` FROM audit_records WHERE writer_id = $1 AND seq = $2`,
		s.opts.WriterID, int64(seq)).Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return vellum.Record{}, fmt.Errorf("%w: postgres writer %s seq %d", backends.ErrNotFound, s.opts.WriterID, seq)
	}
	if err != nil {
		return vellum.Record{}, classify(err, s.dsn, "get")
	}
	row := sc.Row(uint64(sq), t)
	return row.Record("")
}

func dialect(pos string) *sqlrec.Dialect {
	return &sqlrec.Dialect{
		Placeholder: func(n int) string { return fmt.Sprintf("$%d", n) },
		TimeCol:     "time_ns",
		PosCol:      pos,
		// The partition key, so the planner prunes partitions: time is
		// time_ns floored to microseconds.
		TimeBounds: func(lo, hi int64, n int) (string, []any) {
			var conds []string
			var args []any
			if lo > -1<<63 {
				conds = append(conds, fmt.Sprintf("time >= $%d", n))
				args = append(args, time.UnixMicro(floorDiv(lo, 1000)).UTC())
			}
			if hi < 1<<63-1 {
				conds = append(conds, fmt.Sprintf("time <= $%d", n+len(args)))
				args = append(args, time.UnixMicro(floorDiv(hi, 1000)).UTC())
			}
			return strings.Join(conds, " AND "), args
		},
		AnyOf: func(col string, vals []string, n int) (string, []any) {
			return fmt.Sprintf("%s = ANY($%d)", col, n), []any{vals}
		},
	}
}

// Query returns a page of this writer's records matching q; see
// backends.Store.
func (s *Store) Query(ctx context.Context, q query.Query) (query.Page, error) {
	return s.query(ctx, q)
}

// query answers q over the writer's rows (writer set) or every writer's
// (the fleet view, ordered by time and then row id).
func (d *reader) query(ctx context.Context, q query.Query) (query.Page, error) {
	if err := q.Normalize(); err != nil {
		return query.Page{}, err
	}
	lo, hi, ok := sqlrec.Bounds(&q)
	if !ok {
		return query.Page{}, nil
	}
	pos := "row_id"
	var extra []sqlrec.Cond
	if d.writer != "" {
		pos = "seq"
		extra = append(extra, sqlrec.Cond{SQL: "writer_id = ?", Args: []any{d.writer}})
	}
	dl := dialect(pos)
	where, args := dl.Where(&q, lo, hi, extra...)
	args = append(args, q.Limit)
	rows, err := d.pool.Query(ctx, `SELECT `+selectCols+sqlrec.ColumnList+` FROM audit_records WHERE `+where+
		` ORDER BY `+dl.OrderBy(&q)+fmt.Sprintf(` LIMIT $%d`, len(args)), args...)
	if err != nil {
		return query.Page{}, classify(err, d.dsn, "query")
	}
	defer rows.Close()
	var page query.Page
	var sc sqlrec.Scanner
	var w string
	var rowID, seq, t int64
	dest := append([]any{&w, &rowID, &seq, &t}, sc.Dest()...)
	check := q
	check.After = nil
	if d.writer == "" {
		check.MaxSeq = 0 // the fleet view bounds row ids, not seqs
	}
	var last query.Position
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return query.Page{}, classify(err, d.dsn, "query")
		}
		row := sc.Row(uint64(seq), t)
		shown := ""
		if d.writer == "" {
			shown = w
		}
		rec, err := row.Record(shown)
		if err != nil {
			return query.Page{}, fmt.Errorf("postgres writer %s: %w", w, err)
		}
		if !check.Match(&rec) {
			return query.Page{}, fmt.Errorf("postgres: writer %s seq %d does not match the query the SQL selected it for", w, rec.Seq)
		}
		page.Records = append(page.Records, rec)
		last = query.Position{Time: t, Seq: uint64(seq)}
		if d.writer == "" {
			last.Seq = uint64(rowID)
		}
	}
	if err := rows.Err(); err != nil {
		return query.Page{}, classify(err, d.dsn, "query")
	}
	if len(page.Records) == q.Limit {
		page.Next = &last
	}
	return page, nil
}

// Err returns nil while the store is open.
func (s *Store) Err() error {
	if s.closed.Load() {
		return fmt.Errorf("%w: postgres writer %s", backends.ErrClosed, s.opts.WriterID)
	}
	return nil
}

// Close commits what callers handed in and closes the pool.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.commit.Close()
	s.pool.Close()
	s.log.Info("postgres store closed")
	return nil
}

// WriterID returns the writer this store appends as.
func (s *Store) WriterID() string { return s.opts.WriterID }
