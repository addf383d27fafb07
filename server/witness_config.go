package server

import (
	"fmt"
	"net/url"

	"github.com/vellumlog/vellum/cosign"
)

// WitnessConfig lists the witnesses the server asks to cosign each
// checkpoint (docs/auditors.md, "Witnesses"). Empty: no witness.
type WitnessConfig struct {
	// Quorum is how many witnesses must cosign a checkpoint before it is
	// saved and served as the cosigned checkpoint; 0 means all of them.
	Quorum int `yaml:"quorum"`
	// Witnesses are the witnesses, each a URL and a public key.
	Witnesses []WitnessEndpoint `yaml:"witnesses"`
	// RetryMax bounds the wait between retries to a witness that did not
	// answer or refused (exponential backoff from 1 s); default 1m.
	RetryMax Duration `yaml:"retry_max"`
}

// WitnessEndpoint is one witness: the URL its add-checkpoint endpoint is
// under (`vellum witness --addr`), and its public key as the witness
// printed it, either inline (Key) or in a file (KeyFile).
type WitnessEndpoint struct {
	URL     string `yaml:"url"`
	Key     string `yaml:"key"`
	KeyFile string `yaml:"key_file"`
}

func (w *WitnessConfig) validate(store string) error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrConfig, key, fmt.Sprintf(format, args...))
	}
	if len(w.Witnesses) > 0 && store != "" && store != StoreSegment {
		return bad("audit.witness", "witnesses cosign the segment engine's signed checkpoints, but audit.store is %s; remove audit.witness", store)
	}
	if w.Quorum < 0 || w.Quorum > len(w.Witnesses) {
		return bad("audit.witness.quorum", "%d is not between 0 (all) and the %d witnesses listed", w.Quorum, len(w.Witnesses))
	}
	if w.RetryMax < 0 {
		return bad("audit.witness.retry_max", "%s is negative", w.RetryMax)
	}
	keys := map[string]int{}
	for i, e := range w.Witnesses {
		key := fmt.Sprintf("audit.witness.witnesses[%d]", i)
		u, err := url.Parse(e.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return bad(key+".url", "%q is not an http(s) URL such as http://witness.internal:8090", e.URL)
		}
		switch {
		case e.Key == "" && e.KeyFile == "":
			return bad(key+".key", "set key (the witness's public key, as `vellum witness` prints it) or key_file")
		case e.Key != "" && e.KeyFile != "":
			return bad(key+".key_file", "set only one of key and key_file")
		case e.Key != "":
			v, err := cosign.NewVerifier(e.Key)
			if err != nil {
				return bad(key+".key", "%v", err)
			}
			if j, dup := keys[v.String()]; dup {
				return bad(key+".key", "is also the key of audit.witness.witnesses[%d]", j)
			}
			keys[v.String()] = i
		}
	}
	return nil
}

// Verifiers reads the witnesses' keys (key_file is read now).
func (w *WitnessConfig) Verifiers() ([]*cosign.Verifier, error) {
	var out []*cosign.Verifier
	seen := map[string]int{}
	for i, e := range w.Witnesses {
		arg := e.Key
		if arg == "" {
			arg = e.KeyFile
		}
		v, err := cosign.ParseVerifierArg(arg)
		if err != nil {
			return nil, fmt.Errorf("%w: audit.witness.witnesses[%d]: %v", ErrConfig, i, err)
		}
		if j, dup := seen[v.String()]; dup {
			return nil, fmt.Errorf("%w: audit.witness.witnesses[%d]: the key is also that of witnesses[%d]", ErrConfig, i, j)
		}
		seen[v.String()] = i
		out = append(out, v)
	}
	return out, nil
}
