package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/vellumlog/vellum/backends/internal/sqlrec"
)

// copyHeader starts PostgreSQL's binary COPY format: the signature, no
// flags, no header extension.
var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// copySQL is the COPY statement whose input appendCopyRow writes.
var copySQL = "COPY audit_records (" + strings.Join(copyColumns, ", ") + ") FROM STDIN (FORMAT binary)"

// microsFrom1970To2000 is PostgreSQL's timestamp epoch (2000-01-01 UTC) in
// Unix microseconds.
const microsFrom1970To2000 = 946_684_800_000_000

// copyBuf encodes rows in PostgreSQL's binary COPY format, the columns of
// copyColumns in order, with the same values (and NULLs) as rowValues, but
// without a value per column on the heap and without looking up an encode
// plan per value: a batch is one buffer, reused.
type copyBuf struct{ b []byte }

func (c *copyBuf) reset() {
	c.b = append(c.b[:0], copyHeader...)
}

func (c *copyBuf) null() { c.b = binary.BigEndian.AppendUint32(c.b, 0xFFFFFFFF) }

func (c *copyBuf) text(s string) {
	c.b = binary.BigEndian.AppendUint32(c.b, uint32(len(s)))
	c.b = append(c.b, s...)
}

func (c *copyBuf) bytea(b []byte) {
	if b == nil {
		c.null()
		return
	}
	c.b = binary.BigEndian.AppendUint32(c.b, uint32(len(b)))
	c.b = append(c.b, b...)
}

func (c *copyBuf) int8(v int64) {
	c.b = binary.BigEndian.AppendUint32(c.b, 8)
	c.b = binary.BigEndian.AppendUint64(c.b, uint64(v))
}

func (c *copyBuf) bool(v bool) {
	c.b = binary.BigEndian.AppendUint32(c.b, 1)
	if v {
		c.b = append(c.b, 1)
	} else {
		c.b = append(c.b, 0)
	}
}

func (c *copyBuf) nullText(s string) {
	if s == "" {
		c.null()
		return
	}
	c.text(s)
}

func (c *copyBuf) nullInt8(v int64) {
	if v == 0 {
		c.null()
		return
	}
	c.int8(v)
}

// row appends one tuple: writer_id, seq, time, time_ns and then
// sqlrec.Columns, as Row.Values gives them.
func (c *copyBuf) row(writer string, r *sqlrec.Row) {
	c.b = binary.BigEndian.AppendUint16(c.b, uint16(len(copyColumns)))
	c.text(writer)
	c.int8(int64(r.Seq))
	c.int8(floorDiv(r.TimeNS, 1000) - microsFrom1970To2000) // timestamptz: µs since 2000
	c.int8(r.TimeNS)
	c.text(r.EventID)
	c.nullInt8(r.EventTimeNS)
	c.text(r.TenantID)
	c.text(r.UserID)
	c.text(r.Service)
	c.text(r.AuthMode)
	c.text(r.Action)
	c.text(r.ToolName)
	c.text(r.ToolCallID)
	c.bytea(r.ToolArguments) // text column: the bytes are the JSON text
	c.bytea(r.ToolArgumentsSHA256)
	if r.ToolArgumentsSHA256 != nil {
		c.int8(r.ToolArgumentsSize)
	} else {
		c.null()
	}
	c.bool(r.ToolIsError)
	c.int8(r.ToolDurationNS)
	c.text(r.ModelName)
	c.text(r.ModelProvider)
	c.text(r.ModelFinishReason)
	c.int8(r.ModelInputTokens)
	c.int8(r.ModelOutputTokens)
	c.text(r.Agent)
	c.text(r.SessionID)
	c.text(r.TraceID)
	c.text(r.RequestID)
	c.text(r.Outcome)
	c.text(r.OutcomeReason)
	c.text(r.OutcomeRuleID)
	c.text(r.OutcomeApprover)
	c.text(r.OutcomeMode)
	c.nullText(r.Attributes)
	c.nullText(r.AttributesHashed)
	c.nullText(r.Redactions)
	c.text(r.KeyID)
	c.bytea(r.PrevMAC)
	c.bytea(r.MAC)
	c.nullInt8(r.Segment)
	c.bool(r.Summary)
}

// end appends the trailer that ends the COPY data.
func (c *copyBuf) end() { c.b = binary.BigEndian.AppendUint16(c.b, 0xFFFF) }

// copyRows writes rows of writer into audit_records with one binary COPY
// in tx, and returns how many rows PostgreSQL took.
func copyRows(ctx context.Context, tx pgx.Tx, buf *copyBuf, writer string, rows []sqlrec.Row) (int64, error) {
	buf.reset()
	for i := range rows {
		buf.row(writer, &rows[i])
	}
	buf.end()
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(buf.b), copySQL)
	if err != nil {
		return 0, err
	}
	if n := tag.RowsAffected(); n != int64(len(rows)) {
		return n, fmt.Errorf("postgres: COPY took %d of %d rows", n, len(rows))
	}
	return int64(len(rows)), nil
}
