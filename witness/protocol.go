package witness

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/vellumlog/vellum/merkle"
)

// Wire constants of C2SP tlog-witness. Do not change.
const (
	// AddCheckpointPath is the add-checkpoint endpoint under the
	// submission prefix.
	AddCheckpointPath = "/add-checkpoint"
	// SizeContentType is the Content-Type of a 409 answer: the latest
	// cosigned tree size in decimal and a newline.
	SizeContentType = "text/x.tlog.size"
	// MaxProofLines bounds the consistency proof of a request.
	MaxProofLines = 63
	// MaxRequestBytes bounds a request body: the old size line, 63 proof
	// lines of 45 bytes and a signed note of at most 16 KiB.
	MaxRequestBytes = 32 << 10
)

// AddRequest is an add-checkpoint request: the size of the checkpoint the
// client believes the witness last cosigned, a consistency proof from that
// size to the new checkpoint's, and the new checkpoint as a signed note.
type AddRequest struct {
	OldSize uint64
	Proof   []merkle.Hash
	// Checkpoint is the signed note, byte for byte.
	Checkpoint []byte
}

// Marshal returns the request body:
//
//	old <size>\n
//	<base64 hash>\n            (zero or more, at most 63)
//	\n
//	<signed checkpoint note>
func (r *AddRequest) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", r.OldSize)
	for _, h := range r.Proof {
		b.WriteString(h.Base64())
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.Write(r.Checkpoint)
	return b.Bytes()
}

// ParseAddRequest parses an add-checkpoint request body, strictly: the old
// size in decimal without leading zeros, each proof hash standard base64
// of 32 bytes, at most 63 of them, every line ending in a newline, and a
// non-empty checkpoint. The checkpoint itself is parsed and verified by
// the caller. A body that parses re-marshals to the same bytes.
func ParseAddRequest(b []byte) (*AddRequest, error) {
	bad := func(format string, args ...any) (*AddRequest, error) {
		return nil, fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	if len(b) > MaxRequestBytes {
		return bad("body of %d bytes exceeds %d", len(b), MaxRequestBytes)
	}
	line, rest, ok := bytes.Cut(b, []byte("\n"))
	if !ok {
		return bad("no old size line")
	}
	num, ok := bytes.CutPrefix(line, []byte("old "))
	if !ok {
		return bad("first line %q is not \"old <size>\"", clip(line))
	}
	old, err := strconv.ParseUint(string(num), 10, 64)
	if err != nil || len(num) == 0 || (len(num) > 1 && num[0] == '0') || num[0] == '+' {
		return bad("old size %q is not a decimal number without leading zeros", clip(num))
	}
	r := &AddRequest{OldSize: old}
	for {
		line, rest, ok = bytes.Cut(rest, []byte("\n"))
		if !ok {
			return bad("no empty line before the checkpoint")
		}
		if len(line) == 0 {
			break
		}
		if len(r.Proof) == MaxProofLines {
			return bad("more than %d consistency proof lines", MaxProofLines)
		}
		var h merkle.Hash
		if err := h.UnmarshalText(line); err != nil {
			return bad("proof line %d %q is not base64 of a 32-byte hash", len(r.Proof)+1, clip(line))
		}
		r.Proof = append(r.Proof, h)
	}
	if len(rest) == 0 {
		return bad("no checkpoint after the empty line")
	}
	r.Checkpoint = rest
	return r, nil
}

// clip shortens what an error message quotes from a request.
func clip(b []byte) []byte {
	if len(b) > 40 {
		return append(bytes.Clone(b[:40]), "..."...)
	}
	return b
}
