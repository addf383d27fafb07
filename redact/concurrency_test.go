package redact

import (
	"encoding/json"
	"sync"
	"testing"

	"github.com/vellumlog/vellum"
)

// TestConcurrentUse runs one Redactor from many goroutines (meaningful
// under -race) and checks that every goroutine gets the same answer.
func TestConcurrentUse(t *testing.T) {
	r, err := New(Config{Actions: map[string]Action{"EMAIL": ActionPseudonym, "PHONE": ActionMask}}, Options{PseudonymKey: kat})
	if err != nil {
		t.Fatal(err)
	}
	in := `{"to":"alice@example.com","body":"call 415-555-2671","card":"4111 1111 1111 1111"}`
	want := vellum.Record{Tool: vellum.Tool{Arguments: json.RawMessage(in)}, Attributes: map[string]string{"e": "bob@example.com"}}
	r.Redact(&want)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				rec := vellum.Record{Tool: vellum.Tool{Arguments: json.RawMessage(in)}, Attributes: map[string]string{"e": "bob@example.com"}}
				r.Redact(&rec)
				if string(rec.Tool.Arguments) != string(want.Tool.Arguments) || rec.Attributes["e"] != want.Attributes["e"] {
					t.Errorf("concurrent result differs: %s", rec.Tool.Arguments)
					return
				}
				if _, err := r.Pseudonym("EMAIL", "alice@example.com"); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
