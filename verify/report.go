package verify

import (
	"fmt"
	"strings"

	"github.com/vellumlog/vellum/merkle"
)

// Check names what a Problem failed.
const (
	CheckStore       = "store"       // the directory's layout and STORE file
	CheckFrame       = "frame"       // segment framing, CRCs, record encoding
	CheckKey         = "key"         // the HMAC key a segment names
	CheckMAC         = "mac"         // the HMAC chain
	CheckLink        = "link"        // links between segments
	CheckMerkle      = "merkle"      // segment roots and Merkle sections
	CheckSummary     = "summary"     // span summaries (the query index) against the records
	CheckCheckpoint  = "checkpoint"  // checkpoints against the data
	CheckSignature   = "signature"   // checkpoint signatures
	CheckConsistency = "consistency" // checkpoints against each other
	CheckBundle      = "bundle"      // evidence bundle records and proofs
)

// Problem is one place that does not verify.
type Problem struct {
	Check    string `json:"check"`
	File     string `json:"file,omitempty"`
	Offset   int64  `json:"offset"` // -1 when not a place in a file
	Seq      uint64 `json:"seq,omitempty"`
	Expected string `json:"expected,omitempty"`
	Found    string `json:"found,omitempty"`
	Detail   string `json:"detail"`

	order [3]uint64 // sort key: file rank, offset, sequence of discovery
}

func (p *Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.Check)
	b.WriteString(": ")
	if p.File != "" {
		b.WriteString(p.File)
		if p.Offset >= 0 {
			fmt.Fprintf(&b, " offset %d", p.Offset)
		}
		if p.Seq != 0 {
			fmt.Fprintf(&b, " (seq %d)", p.Seq)
		}
		b.WriteString(": ")
	} else if p.Seq != 0 {
		fmt.Fprintf(&b, "seq %d: ", p.Seq)
	}
	b.WriteString(p.Detail)
	if p.Expected != "" || p.Found != "" {
		fmt.Fprintf(&b, " (expected %s, found %s)", p.Expected, p.Found)
	}
	return b.String()
}

// Report is the outcome of a verification. Problems are ordered by place:
// segments in log order, then the checkpoint log, then a trusted
// checkpoint; Problems[0] is the first bad place.
type Report struct {
	Dir         string      `json:"dir,omitempty"`
	StoreID     string      `json:"store_id,omitempty"`
	Segments    int         `json:"segments"`
	Records     uint64      `json:"records"`
	Bytes       int64       `json:"bytes"`
	Checkpoints int         `json:"checkpoints"`
	TreeSize    uint64      `json:"tree_size"`
	Root        merkle.Hash `json:"root"`
	Checked     []string    `json:"checked"`
	Skipped     []string    `json:"skipped,omitempty"`
	Warnings    []string    `json:"warnings,omitempty"`
	Problems    []*Problem  `json:"problems,omitempty"`
	// Witnessed is the newest checkpoint a quorum of the trusted witnesses
	// cosigned, when witnesses were given (verify/witness.go).
	Witnessed *Witnessed `json:"witnessed,omitempty"`
}

// OK reports that everything checked verified.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// First returns the first problem, or nil.
func (r *Report) First() *Problem {
	if len(r.Problems) == 0 {
		return nil
	}
	return r.Problems[0]
}
