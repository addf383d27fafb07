package sqlrec

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vellumlog/vellum"
)

func sample() vellum.Record {
	return vellum.Record{
		Seq: 7, Time: time.Unix(0, 1_800_000_000_123_456_789).UTC(), EventID: "e", TenantID: "acme", UserID: "a\x00b",
		Action: "tool.call", Tool: vellum.Tool{Name: "t", Arguments: json.RawMessage(`{"q":"x"}`)},
		Model:      vellum.Model{InputTokens: 1 << 63},
		Outcome:    vellum.Outcome{Status: "success"},
		Attributes: map[string]string{"small": "v", "big": strings.Repeat("b", MaxAttrValue+1)},
		Redactions: []vellum.Redaction{{Rule: "email", Field: "f", Count: 1}},
		KeyID:      "0011", PrevMAC: vellum.MAC{1}, MAC: vellum.MAC{2},
	}
}

// TestFullRowRoundTrip: a row that is not a summary gives back exactly the
// record, including tokens above 2^63 and NUL characters.
func TestFullRowRoundTrip(t *testing.T) {
	r := sample()
	row, err := FromRecord(&r, 0, Options{})
	if err != nil {
		t.Fatal(err)
	}
	back, err := row.Record("")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, r) || row.Summary {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, r)
	}
}

// TestSummary: arguments and long attribute values become SHA-256 and
// size, NUL becomes U+FFFD, and the record read back says so.
func TestSummary(t *testing.T) {
	r := sample()
	row, err := FromRecord(&r, 3, Options{Summarize: true, NoNUL: true})
	if err != nil {
		t.Fatal(err)
	}
	if !row.Summary || row.ToolArguments != nil || row.ToolArgumentsSize != 9 || len(row.ToolArgumentsSHA256) != 32 {
		t.Errorf("arguments: %+v", row)
	}
	if strings.Contains(row.Attributes, "bbbb") || !strings.Contains(row.AttributesHashed, `"size":257`) {
		t.Errorf("attributes %s / hashed %s", row.Attributes, row.AttributesHashed)
	}
	back, err := row.Record("w1")
	if err != nil {
		t.Fatal(err)
	}
	if back.UserID != "a\uFFFDb" || back.Attributes[AttrWriter] != "w1" || back.Attributes[AttrSegment] != "3" ||
		back.Attributes[AttrArgsSize] != "9" || !strings.HasPrefix(back.Attributes[AttrHashedPrefix+"big"], "sha256:") {
		t.Errorf("summary record: %+v", back)
	}
	// Keeping the arguments keeps them byte for byte.
	row, _ = FromRecord(&r, 3, Options{Summarize: true, KeepArguments: true})
	if string(row.ToolArguments) != `{"q":"x"}` {
		t.Errorf("kept arguments %s", row.ToolArguments)
	}
}

// FuzzRowRecord: whatever a database hands back in the JSON columns, reading
// a row fails cleanly or gives a record; it never panics.
func FuzzRowRecord(f *testing.F) {
	f.Add(`{"a":"b"}`, `{"k":{"sha256":"00","size":3}}`, `[{"rule":"r","field":"f","count":1}]`, true)
	f.Add(`{`, `null`, `[1,2]`, false)
	f.Fuzz(func(t *testing.T, attrs, hashed, red string, summary bool) {
		row := Row{Seq: 1, Action: "a", Outcome: "success", PrevMAC: make([]byte, 32), MAC: make([]byte, 32),
			Attributes: attrs, AttributesHashed: hashed, Redactions: red, Summary: summary}
		row.Record("w")
		row.Stored()
	})
}
