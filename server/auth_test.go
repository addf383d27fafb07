package server

import (
	"errors"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

const (
	adminToken  = "admin-token-0123456789abcdef"
	auditToken  = "auditor-token-0123456789abcd"
	acmeToken   = "acme-auditor-token-012345678"
	ingestToken = "ingest-token-0123456789abcde"
	acmeIngest  = "acme-ingest-token-0123456789"
)

func testAuthConfig() AuthConfig {
	return AuthConfig{
		DisableQuickStartEnv: true,
		Tokens: []TokenConfig{
			{Name: "ops", Role: RoleAdmin, TokenSHA256: HashToken(adminToken)},
			{Name: "compliance", Role: RoleAuditor, TokenSHA256: HashToken(auditToken)},
			{Name: "acme-auditor", Role: RoleAuditor, Tenants: []string{"acme"}, TokenSHA256: HashToken(acmeToken)},
			{Name: "agent", Role: RoleIngest, TokenSHA256: HashToken(ingestToken)},
			{Name: "acme-agent", Role: RoleIngest, Tenants: []string{"acme"}, TokenEnv: "ACME_INGEST"},
		},
	}
}

func TestAuthenticate(t *testing.T) {
	cfg := testAuthConfig()
	a, err := NewAuthenticator(&cfg, envOf(map[string]string{"ACME_INGEST": acmeIngest}))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		headers []string
		want    Principal
		wantErr string
	}{
		{name: "admin", headers: []string{"Bearer " + adminToken}, want: Principal{Name: "ops", Role: RoleAdmin}},
		{name: "auditor", headers: []string{"Bearer " + auditToken}, want: Principal{Name: "compliance", Role: RoleAuditor}},
		{name: "scoped auditor", headers: []string{"Bearer " + acmeToken}, want: Principal{Name: "acme-auditor", Role: RoleAuditor, Tenants: []string{"acme"}}},
		{name: "ingest", headers: []string{"Bearer " + ingestToken}, want: Principal{Name: "agent", Role: RoleIngest}},
		{name: "token from env", headers: []string{"Bearer " + acmeIngest}, want: Principal{Name: "acme-agent", Role: RoleIngest, Tenants: []string{"acme"}}},
		{name: "scheme case-insensitive", headers: []string{"bearer " + adminToken}, want: Principal{Name: "ops", Role: RoleAdmin}},
		{name: "extra spaces", headers: []string{"Bearer   " + adminToken}, want: Principal{Name: "ops", Role: RoleAdmin}},
		{name: "missing", wantErr: "missing bearer token"},
		{name: "basic auth", headers: []string{"Basic YWRtaW46YWRtaW4="}, wantErr: "not a bearer token"},
		{name: "no scheme", headers: []string{adminToken}, wantErr: "not a bearer token"},
		{name: "empty token", headers: []string{"Bearer "}, wantErr: "empty bearer token"},
		{name: "unknown", headers: []string{"Bearer nope-nope-nope-nope"}, wantErr: "unknown token"},
		{name: "hash is not the token", headers: []string{"Bearer " + HashToken(adminToken)}, wantErr: "unknown token"},
		{name: "prefix of a token", headers: []string{"Bearer " + adminToken[:10]}, wantErr: "unknown token"},
		{name: "two headers", headers: []string{"Bearer " + adminToken, "Bearer " + auditToken}, wantErr: "more than one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1/audit", nil)
			for _, h := range tt.headers {
				r.Header.Add("Authorization", h)
			}
			p, err := a.Authenticate(r)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				for _, tok := range []string{adminToken, auditToken, "nope-nope"} {
					if strings.Contains(err.Error(), tok) {
						t.Fatal("the error repeats the token")
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p, tt.want) {
				t.Fatalf("principal = %+v, want %+v", p, tt.want)
			}
		})
	}
}

func TestPrincipalRights(t *testing.T) {
	tests := []struct {
		p                Principal
		read, ingest     bool
		acme, globex, no bool // InScope for tenants acme, globex, ""
	}{
		{Principal{Role: RoleAdmin}, true, true, true, true, true},
		{Principal{Role: RoleAuditor}, true, false, true, true, true},
		{Principal{Role: RoleAuditor, Tenants: []string{"acme"}}, true, false, true, false, false},
		{Principal{Role: RoleIngest}, false, true, true, true, true},
		{Principal{Role: RoleIngest, Tenants: []string{"acme"}}, false, true, true, false, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.p.Role)+strings.Join(tt.p.Tenants, ","), func(t *testing.T) {
			if tt.p.CanRead() != tt.read || tt.p.CanIngest() != tt.ingest {
				t.Fatalf("CanRead %v CanIngest %v", tt.p.CanRead(), tt.p.CanIngest())
			}
			if tt.p.InScope("acme") != tt.acme || tt.p.InScope("globex") != tt.globex || tt.p.InScope("") != tt.no {
				t.Fatal("InScope")
			}
		})
	}
}

func TestQuickStartTokens(t *testing.T) {
	long := "quick-start-token-0123456789"
	tests := []struct {
		name     string
		cfg      AuthConfig
		env      map[string]string
		wantLen  int
		wantErr  string
		wantRole Role
	}{
		{name: "none set", env: map[string]string{}, wantLen: 0},
		{name: "admin", env: map[string]string{EnvAdminToken: long}, wantLen: 1, wantRole: RoleAdmin},
		{name: "ingest", env: map[string]string{EnvIngestToken: long}, wantLen: 1, wantRole: RoleIngest},
		{name: "both", env: map[string]string{EnvAdminToken: long, EnvIngestToken: long + "x"}, wantLen: 2},
		{name: "empty is unset", env: map[string]string{EnvAdminToken: ""}, wantLen: 0},
		{name: "disabled", cfg: AuthConfig{DisableQuickStartEnv: true}, env: map[string]string{EnvAdminToken: long}, wantLen: 0},
		{name: "too short", env: map[string]string{EnvAdminToken: "admin"}, wantErr: "VELLUM_ADMIN_TOKEN is shorter than 16"},
		{name: "same token twice", env: map[string]string{EnvAdminToken: long, EnvIngestToken: long}, wantErr: "the same token"},
		{name: "same as a configured token",
			cfg: AuthConfig{Tokens: []TokenConfig{{Name: "a", Role: RoleAuditor, TokenSHA256: HashToken(long)}}},
			env: map[string]string{EnvAdminToken: long}, wantErr: "the same token as principal \"a\""},
		{name: "token_env unset", cfg: AuthConfig{Tokens: []TokenConfig{{Name: "a", Role: RoleAdmin, TokenEnv: "NOPE"}}},
			env: map[string]string{}, wantErr: "auth.tokens[0].token_env: environment variable NOPE is not set"},
		{name: "token_env short", cfg: AuthConfig{Tokens: []TokenConfig{{Name: "a", Role: RoleAdmin, TokenEnv: "SHORT"}}},
			env: map[string]string{"SHORT": "x"}, wantErr: "auth.tokens[0].token_env"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := NewAuthenticator(&tt.cfg, envOf(tt.env))
			if tt.wantErr != "" {
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), long) {
					t.Fatal("the error repeats the token")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.Len() != tt.wantLen {
				t.Fatalf("principals = %d, want %d", a.Len(), tt.wantLen)
			}
			if tt.wantRole != "" {
				r := httptest.NewRequest("GET", "/", nil)
				r.Header.Set("Authorization", "Bearer "+long)
				p, err := a.Authenticate(r)
				if err != nil || p.Role != tt.wantRole || !strings.HasPrefix(p.Name, "quickstart-") {
					t.Fatalf("principal %+v, %v", p, err)
				}
			}
		})
	}
}

// TestLookupVisitsEveryEntry checks each of many principals is found by its
// own token, including the first and the last (no early exit changes the
// answer).
func TestLookupVisitsEveryEntry(t *testing.T) {
	cfg := AuthConfig{DisableQuickStartEnv: true}
	for i := range 50 {
		cfg.Tokens = append(cfg.Tokens, TokenConfig{Name: "p" + string(rune('A'+i)), Role: RoleAuditor, TokenSHA256: HashToken(strings.Repeat(string(rune('A'+i)), 20))})
	}
	a, err := NewAuthenticator(&cfg, envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		p, ok := a.lookup(strings.Repeat(string(rune('A'+i)), 20))
		if !ok || p.Name != "p"+string(rune('A'+i)) {
			t.Fatalf("token %d: %+v %v", i, p, ok)
		}
	}
	if _, ok := a.lookup("nobody"); ok {
		t.Fatal("unknown token found")
	}
}

func TestHashAndGenerateToken(t *testing.T) {
	// printf %s abc | sha256sum
	if got := HashToken("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("HashToken(abc) = %s", got)
	}
	a, err := GenerateToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GenerateToken()
	if a == b || !strings.HasPrefix(a, TokenPrefix) || len(a) != len(TokenPrefix)+43 {
		t.Fatalf("tokens %q %q", a, b)
	}
}
