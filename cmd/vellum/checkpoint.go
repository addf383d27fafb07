package main

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/vellumlog/vellum/checkpoint"
)

// checkpointResponse is the body of POST /v1/audit/checkpoints and the
// checkpoint field of list responses.
type checkpointResponse struct {
	Origin   string `json:"origin"`
	TreeSize uint64 `json:"tree_size"`
	RootHash string `json:"root_hash"`
	Note     string `json:"note"`
}

func runCheckpoint(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("checkpoint", stderr)
	srv, token := clientFlags(fl)
	out := fl.String("out", "", "write the signed note to this file (refuses to overwrite) instead of stdout")
	if code, ok := parse(fl, args); !ok {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "vellum checkpoint: "+format+"\n", a...)
		return 2
	}
	c, err := newClient(*srv, *token)
	if err != nil {
		return fail("%v", err)
	}
	var cp checkpointResponse
	if err := c.callJSON("POST", "/v1/audit/checkpoints", &cp); err != nil {
		return fail("%v", err)
	}
	if _, err := checkpoint.ParseNote([]byte(cp.Note)); err != nil {
		return fail("the server answered a note that does not parse: %v", err)
	}
	if *out != "" {
		if err := writeFileNew(*out, []byte(cp.Note), 0o644); err != nil {
			return fail("%v", err)
		}
	} else {
		io.WriteString(stdout, cp.Note)
	}
	fmt.Fprintf(stderr, "vellum checkpoint: signed checkpoint of %d records, origin %s\n", cp.TreeSize, cp.Origin)
	return 0
}

// readNote reads a signed note from a file, accepting it as people save
// it: any trailing blank lines and spaces (jq -r adds a newline, editors
// may add more) are cut back to the note's one final newline.
func readNote(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimRight(b, " \t\r\n")
	if len(b) == 0 {
		return nil, fmt.Errorf("%s is empty, not a signed checkpoint", path)
	}
	return append(b, '\n'), nil
}

// writeFileNew writes data to a new file at path: to a temporary file in
// the same directory, then linked into place only if path does not exist
// yet, so a failed write leaves nothing and nothing is overwritten.
func writeFileNew(path string, data []byte, mode os.FileMode) error {
	a, err := newAtomicFile(path, mode)
	if err != nil {
		return err
	}
	if _, err := a.Write(data); err != nil {
		a.Abort()
		return err
	}
	return a.Commit()
}
