package witness

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/vellumlog/vellum/cosign"
)

func post(t *testing.T, base string, body string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Post(base+AddCheckpointPath, "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestHandler(t *testing.T) {
	lg := newTestLog(t, 7)
	lg.grow(40, 'a')
	tw := startWitness(t, "w1.test", lg)
	base := tw.srv.URL

	resp, body := post(t, base, string(lg.request(0, 10).Marshal()))
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "— w1.test ") {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if _, ok, err := cosign.Find(cosign.Append(lg.checkpoint(10).Note, []byte(body)), tw.w.Verifier()); !ok || err != nil {
		t.Fatalf("answer does not verify: %v", err)
	}
	resp, body = post(t, base, string(lg.request(5, 20).Marshal()))
	if resp.StatusCode != 409 || body != "10\n" || resp.Header.Get("Content-Type") != SizeContentType {
		t.Fatalf("409: %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
	for name, tc := range map[string]struct {
		body   string
		status int
	}{
		"garbage":   {"hello", 400},
		"too large": {"old 0\n\n" + strings.Repeat("x", MaxRequestBytes+1), 413},
		"rollback":  {string(lg.request(0, 5).Marshal()), 409},
	} {
		if resp, body := post(t, base, tc.body); resp.StatusCode != tc.status {
			t.Errorf("%s: %d %q", name, resp.StatusCode, body)
		}
	}
	if resp, err := http.Get(base + AddCheckpointPath); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET add-checkpoint: %v %v", resp.StatusCode, err)
	}

	resp, err := http.Get(base + CheckpointPath + "?origin=" + url.QueryEscape(lg.origin))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if c, err := cosign.Open(b, lg.key, cosign.Verifiers([]*cosign.Verifier{tw.w.Verifier()}), 1); err != nil || c.Size != 10 {
		t.Fatalf("GET checkpoint: %v %q", err, b)
	}
	if resp, _ := http.Get(base + CheckpointPath + "?origin=nope"); resp.StatusCode != 404 {
		t.Fatalf("unknown origin: %d", resp.StatusCode)
	}
	resp, err = http.Get(base + AlarmsPath)
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Alarms []Alarm }
	json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if len(out.Alarms) != 1 || out.Alarms[0].Kind != KindRollback {
		t.Fatalf("alarms %+v", out.Alarms)
	}
	c := &Client{URL: base}
	if got, err := c.Latest(t.Context(), lg.origin); err != nil || !strings.Contains(string(got), "— w1.test ") {
		t.Fatalf("client Latest: %v", err)
	}
}
