package replicate

import (
	"context"
	"fmt"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/backends"
	"github.com/vellumlog/vellum/backends/internal/sqlrec"
	"github.com/vellumlog/vellum/chain"
)

// Summarize returns the row replicated for rec (as read from the engine,
// with its MAC) from segment seg: every field, except that tool arguments
// are replaced by their SHA-256 and size unless includeArguments, attribute
// values longer than sqlrec.MaxAttrValue (256 bytes) by theirs, and NUL
// characters in text by U+FFFD (PostgreSQL text cannot hold them).
func Summarize(rec *vellum.Record, seg uint64, includeArguments bool) (sqlrec.Row, error) {
	return sqlrec.FromRecord(rec, seg, sqlrec.Options{Summarize: true, KeepArguments: includeArguments, NoNUL: true})
}

// Check compares a replicated row with the segment record it came from:
// the record's MAC must verify under keys (so the record is the one the
// chain vouches for), and the row must equal the record's summary, column
// by column. seg is the segment holding the record.
func Check(rec *vellum.Record, seg uint64, row *sqlrec.Row, keys *chain.Keyring) error {
	if keys != nil {
		id, err := chain.ParseKeyID(rec.KeyID)
		if err != nil {
			return fmt.Errorf("replicate: seq %d: key id %q: %w", rec.Seq, rec.KeyID, err)
		}
		k, err := keys.Lookup(id)
		if err != nil {
			return fmt.Errorf("replicate: seq %d: %w", rec.Seq, err)
		}
		enc, err := rec.MarshalBinary()
		if err != nil {
			return fmt.Errorf("replicate: seq %d: %w", rec.Seq, err)
		}
		if _, err := k.NewHasher().Check(rec.Seq, rec.PrevMAC, enc, rec.MAC); err != nil {
			return fmt.Errorf("replicate: the segment record does not verify: %w", err)
		}
	}
	want, err := Summarize(rec, seg, row.ToolArguments != nil)
	if err != nil {
		return err
	}
	if col, ok := sqlrec.Equal(&want, row); !ok {
		return &backends.BadRowError{Backend: "replica", Seq: rec.Seq,
			Reason: fmt.Sprintf("column %s differs from the summary of the segment record (segment %d)", col, seg)}
	}
	return nil
}

// CheckSeq reads seq from src and from dst (writer's row) and compares
// them with Check.
func CheckSeq(ctx context.Context, src Source, dst Target, writer string, seq uint64, keys *chain.Keyring) error {
	rec, err := src.Get(ctx, seq)
	if err != nil {
		return err
	}
	seg, _ := src.SegmentOf(seq)
	row, err := dst.Row(ctx, writer, seq)
	if err != nil {
		return err
	}
	if err := Check(&rec, seg, &row, keys); err != nil {
		var bad *backends.BadRowError
		if ok := asBad(err, &bad); ok {
			bad.Backend, bad.Writer = dst.Name(), writer
		}
		return err
	}
	return nil
}

func asBad(err error, p **backends.BadRowError) bool {
	b, ok := err.(*backends.BadRowError)
	if ok {
		*p = b
	}
	return ok
}
