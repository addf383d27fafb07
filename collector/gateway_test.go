package collector

import (
	"bytes"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestGatewayForgedHeaders: the headers count only from a trusted
// network; forged ones from elsewhere are ignored and logged once,
// without their values.
func TestGatewayForgedHeaders(t *testing.T) {
	var logs bytes.Buffer
	g, err := NewGateway([]string{"10.0.0.0/8"}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	base := Request{UserID: "agent-service", AuthMode: "bearer", SessionID: "s"}
	req := func(remote string) Request {
		r := httptest.NewRequest("POST", "/chat", nil)
		r.RemoteAddr = remote
		r.Header.Set(HeaderAuthSubject, "mallory")
		r.Header.Set(HeaderTenant, "globex")
		out, err := g.Request(r, base)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, remote := range []string{"192.0.2.1:5000", "127.0.0.1:80", "[::1]:80"} {
		if got := req(remote); got != base {
			t.Fatalf("from %s: %+v, want the headers ignored", remote, got)
		}
	}
	if got := req("10.1.2.3:4000"); got.UserID != "mallory" || got.TenantID != "globex" || got.AuthMode != "gateway" || got.SessionID != "s" {
		t.Fatalf("from the gateway: %+v", got)
	}
	if got := req("[::ffff:10.1.2.3]:4000"); got.TenantID != "globex" {
		t.Fatalf("IPv4-mapped gateway address: %+v", got)
	}
	if n := strings.Count(logs.String(), "not a trusted gateway"); n != 1 || strings.Contains(logs.String(), "mallory") {
		t.Fatalf("want one warning without values, logs:\n%s", logs.String())
	}
	var none *Gateway
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set(HeaderTenant, "globex")
	if got, _ := none.Request(r, base); got != base {
		t.Fatal("a nil Gateway trusted a header")
	}
	if _, err := NewGateway([]string{"10.0.0.1"}, nil); err == nil {
		t.Fatal("a bare address was accepted as a network")
	}
}
