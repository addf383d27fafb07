package witness

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/vellumlog/vellum/vfs"
)

// Wire constants of the witness state (docs/witness.md, "State"). Do not
// change.
const (
	// StateName is the state file in the witness's directory.
	StateName = "state"
	// KeyName and PubName are the witness's key pair in its directory.
	KeyName = "witness.key"
	PubName = "witness.pub"

	stateFormat = 1
)

// stateFile is the witness's view, replaced atomically (temp file, fsync,
// rename, fsync of the directory) before any answer that depends on it.
type stateFile struct {
	Format int `json:"format"`
	// Witness is the verifier key of the witness that owns the state.
	Witness string `json:"witness"`
	// Alarms is how many alarms the alarm log must hold at least, and the
	// hex SHA-256 of the payload of alarm number Count.
	Alarms alarmMark `json:"alarms"`
	// Logs maps each origin to the latest checkpoint this witness
	// cosigned for it.
	Logs map[string]logState `json:"logs"`
}

type alarmMark struct {
	Count uint64 `json:"count"`
	Head  string `json:"head"`
}

type logState struct {
	// Checkpoint is the signed note as the log submitted it (its
	// signatures by the log's key) with this witness's cosignature line.
	Checkpoint string `json:"checkpoint"`
}

func readState(fs vfs.FS, dir string) (*stateFile, bool, error) {
	path := filepath.Join(dir, StateName)
	if _, err := fs.Stat(path); err != nil {
		return nil, false, nil
	}
	b, err := vfs.ReadFile(fs, path)
	if err != nil {
		return nil, true, fmt.Errorf("witness: read %s: %w", path, err)
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, true, fmt.Errorf("%w: %s does not parse: %v", ErrState, path, err)
	}
	if st.Format != stateFormat {
		return nil, true, fmt.Errorf("%w: %s is format %d, this build reads %d", ErrState, path, st.Format, stateFormat)
	}
	if st.Logs == nil {
		st.Logs = map[string]logState{}
	}
	return &st, true, nil
}

func writeState(fs vfs.FS, dir string, st *stateFile) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("witness: encode state: %w", err)
	}
	if err := vfs.WriteFileAtomic(fs, dir, filepath.Join(dir, StateName), append(b, '\n')); err != nil {
		return fmt.Errorf("witness: write %s: %w", filepath.Join(dir, StateName), err)
	}
	return nil
}
