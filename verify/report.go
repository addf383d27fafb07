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
	CheckPostings    = "postings"    // record-level postings (footer section 4) against the records
	CheckCheckpoint  = "checkpoint"  // checkpoints against the data
	CheckSignature   = "signature"   // checkpoint signatures
	CheckConsistency = "consistency" // checkpoints against each other
	CheckBundle      = "bundle"      // evidence bundle records and proofs
	CheckTrusted     = "trusted"     // the trusted checkpoint against the data and the log
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

// Report is the outcome of a verification: what the data holds, what was
// checked and what could not be (Checks), where records are damaged,
// unreadable or missing (Damage), and every place that does not verify
// (Problems, ordered by place: segments in log order, then the checkpoint
// log, then a trusted checkpoint; Problems[0] is the first bad place).
// Counts are of what was actually read: a record in a damaged block that
// still decodes is counted in Records and named in Damage; a record whose
// bytes are lost is counted in Unreadable, one absent from the files in
// Missing. The JSON form is described in docs/auditors.md.
type Report struct {
	Dir      string `json:"dir,omitempty"`
	StoreID  string `json:"store_id,omitempty"`
	Segments int    `json:"segments"`
	Bytes    int64  `json:"bytes"`
	// Records is how many records were read from the segment files (for a
	// bundle: record lines), damaged ones included.
	Records uint64 `json:"records"`
	// FirstSeq and LastSeq bound the seqs the data holds; 0 when none.
	FirstSeq uint64 `json:"first_seq,omitempty"`
	LastSeq  uint64 `json:"last_seq,omitempty"`
	// Unreadable counts records whose bytes are lost (their number is
	// known from the readable records around them); Missing counts seqs
	// no file holds: gaps between segments, and records a signed
	// checkpoint covers beyond the data's end.
	Unreadable  uint64   `json:"records_unreadable"`
	Missing     uint64   `json:"records_missing"`
	Damage      []Damage `json:"damage,omitempty"`
	Checkpoints int      `json:"checkpoints"`
	// Purged lists the segment ranges retention purges removed, each with
	// the anchor record that authorized it (verify/purged.go); the data
	// starts after them.
	Purged []Purged `json:"purged,omitempty"`
	// Tree is the log-wide Merkle tree of every record from seq 1 to
	// LastSeq; nil when it could not be computed (a record is unreadable
	// or missing, or the store starts after seq 1), and Checks says why.
	Tree *Tree `json:"tree,omitempty"`
	// TreeUnknown says why Tree is nil.
	TreeUnknown string     `json:"tree_unknown,omitempty"`
	Checks      []Coverage `json:"checks"`
	Warnings    []string   `json:"warnings,omitempty"`
	Problems    []*Problem `json:"problems,omitempty"`
	// Witnessed is the newest checkpoint a quorum of the trusted witnesses
	// cosigned, when witnesses were given (verify/witness.go).
	Witnessed *Witnessed `json:"witnessed,omitempty"`
}

// Tree is the size and root of a Merkle tree over the log.
type Tree struct {
	Size uint64      `json:"size"`
	Root merkle.Hash `json:"root"`
}

// Record damage states.
const (
	// StateDamaged: the records were read, but the bytes holding them fail
	// a CRC or a frame check; their MACs (with the key) or the checkpoints
	// tell whether their content changed.
	StateDamaged = "damaged"
	// StateUnreadable: the records' bytes are lost.
	StateUnreadable = "unreadable"
	// StateMissing: no file holds the records.
	StateMissing = "missing"
)

// Damage is a range of records that are damaged, unreadable or missing.
type Damage struct {
	State  string `json:"state"`
	File   string `json:"file,omitempty"`
	Offset int64  `json:"offset"` // -1 when not a place in a file
	// FirstSeq..LastSeq are the records; 0 when unknown (LastSeq is then
	// unknown too: the damage runs to the end of the readable data).
	FirstSeq uint64 `json:"first_seq,omitempty"`
	LastSeq  uint64 `json:"last_seq,omitempty"`
	Records  uint64 `json:"records"`
	// FirstBadMAC is the first record of a damaged range whose MAC does
	// not verify: the record that changed. 0 when none fails or no HMAC
	// key was given.
	FirstBadMAC uint64 `json:"first_bad_mac,omitempty"`
	BadMACs     uint64 `json:"bad_macs,omitempty"`
	// MACChecked: the records' MACs were checked (an HMAC key was given).
	MACChecked bool   `json:"mac_checked,omitempty"`
	Detail     string `json:"detail"`
}

// Coverage says how much of one check ran. Status is StatusChecked (over
// everything it applies to: Scope says what that was), StatusPartly
// (Scope says what was checked, Why what was not and why) or
// StatusNotChecked (Why says why). Whether what was checked verified is in
// Problems.
type Coverage struct {
	Check  string `json:"check"`
	What   string `json:"what"`
	Status string `json:"status"`
	Scope  string `json:"scope,omitempty"`
	Why    string `json:"why,omitempty"`
}

// Coverage statuses.
const (
	StatusChecked    = "checked"
	StatusPartly     = "partly checked"
	StatusNotChecked = "not checked"
)

// Coverage returns the coverage of check, or nil when the report has none.
func (r *Report) Coverage(check string) *Coverage {
	for i := range r.Checks {
		if r.Checks[i].Check == check {
			return &r.Checks[i]
		}
	}
	return nil
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
