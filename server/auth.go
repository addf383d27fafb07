package server

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
)

// Role is what a principal may do.
type Role string

// Roles.
const (
	// RoleAdmin reads the whole log and ingests events.
	RoleAdmin Role = "admin"
	// RoleAuditor reads the log, optionally only some tenants' records.
	RoleAuditor Role = "auditor"
	// RoleIngest appends events, optionally only for some tenants.
	RoleIngest Role = "ingest"
)

// MinTokenLen is the shortest token accepted from the environment, so a
// quick start cannot run on "admin".
const MinTokenLen = 16

// Principal is who a request acts as: the configured name of its token,
// the token's role, and the tenants it is limited to (none: all).
type Principal struct {
	Name    string
	Role    Role
	Tenants []string
}

// CanRead reports whether p may query the log.
func (p Principal) CanRead() bool { return p.Role == RoleAdmin || p.Role == RoleAuditor }

// CanIngest reports whether p may append events.
func (p Principal) CanIngest() bool { return p.Role == RoleAdmin || p.Role == RoleIngest }

// InScope reports whether p may see or write records of tenant.
func (p Principal) InScope(tenant string) bool {
	return len(p.Tenants) == 0 || slices.Contains(p.Tenants, tenant)
}

// Authenticator checks bearer tokens against the configured principals. It
// keeps only SHA-256 hashes of tokens. Safe for concurrent use.
type Authenticator struct {
	hashes     [][sha256.Size]byte
	principals []Principal
	skipped    []Principal // optional principals whose token_env is unset
}

// NewAuthenticator builds the principals of cfg, reading token_env
// variables and, unless disabled, VELLUM_ADMIN_TOKEN and
// VELLUM_INGEST_TOKEN through lookupEnv (os.LookupEnv when nil). A
// referenced variable that is unset or shorter than MinTokenLen, or two
// principals with the same token, is an error wrapping ErrConfig; a
// principal marked optional whose variable is unset is left out
// (Skipped).
func NewAuthenticator(cfg *AuthConfig, lookupEnv func(string) (string, bool)) (*Authenticator, error) {
	if lookupEnv == nil {
		lookupEnv = osLookupEnv
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	a := &Authenticator{}
	add := func(where string, h [sha256.Size]byte, p Principal) error {
		for i, o := range a.hashes {
			if o == h {
				return fmt.Errorf("%w: %s: the same token as principal %q (%s)", ErrConfig, where, a.principals[i].Name, a.principals[i].Role)
			}
		}
		a.hashes = append(a.hashes, h)
		a.principals = append(a.principals, p)
		return nil
	}
	fromEnv := func(where, name string) ([sha256.Size]byte, bool, error) {
		v, ok := lookupEnv(name)
		if !ok || v == "" {
			return [sha256.Size]byte{}, false, nil
		}
		if len(v) < MinTokenLen {
			return [sha256.Size]byte{}, false, fmt.Errorf("%w: %s: the token in %s is shorter than %d characters", ErrConfig, where, name, MinTokenLen)
		}
		return sha256.Sum256([]byte(v)), true, nil
	}
	for i, t := range cfg.Tokens {
		if t.CertSubject != "" {
			continue // authenticated by certificate (tls.go)
		}
		where := fmt.Sprintf("auth.tokens[%d]", i)
		p := Principal{Name: t.Name, Role: t.Role, Tenants: slices.Clone(t.Tenants)}
		var h [sha256.Size]byte
		if t.TokenSHA256 != "" {
			hex.Decode(h[:], []byte(strings.ToLower(t.TokenSHA256))) // validated above
		} else {
			var ok bool
			var err error
			if h, ok, err = fromEnv(where+".token_env", t.TokenEnv); err != nil {
				return nil, err
			} else if !ok && t.Optional {
				a.skipped = append(a.skipped, p)
				continue
			} else if !ok {
				return nil, fmt.Errorf("%w: %s.token_env: environment variable %s is not set (set it, or mark the principal optional: true)", ErrConfig, where, t.TokenEnv)
			}
		}
		if err := add(where, h, p); err != nil {
			return nil, err
		}
	}
	if !cfg.DisableQuickStartEnv {
		for _, q := range []struct {
			env  string
			name string
			role Role
		}{{EnvAdminToken, "quickstart-admin", RoleAdmin}, {EnvIngestToken, "quickstart-ingest", RoleIngest}} {
			h, ok, err := fromEnv(q.env, q.env)
			if err != nil {
				return nil, err
			}
			if ok {
				if err := add(q.env, h, Principal{Name: q.name, Role: q.role}); err != nil {
					return nil, err
				}
			}
		}
	}
	return a, nil
}

// Skipped returns the optional principals left out because their token
// variable is unset.
func (a *Authenticator) Skipped() []Principal { return slices.Clone(a.skipped) }

// Len returns how many principals a knows.
func (a *Authenticator) Len() int { return len(a.hashes) }

// Principals returns the known principals (names, roles and scopes; no
// token material), for logging at startup.
func (a *Authenticator) Principals() []Principal { return slices.Clone(a.principals) }

// Authenticate returns the principal whose token the request carries in
// "Authorization: Bearer <token>". A missing or malformed header or an
// unknown token is an error wrapping ErrUnauthenticated that says which,
// never what the token was.
func (a *Authenticator) Authenticate(r *http.Request) (Principal, error) {
	h := r.Header.Values("Authorization")
	if len(h) == 0 {
		return Principal{}, fmt.Errorf("%w: missing bearer token (send Authorization: Bearer <token>)", ErrUnauthenticated)
	}
	if len(h) > 1 {
		return Principal{}, fmt.Errorf("%w: more than one Authorization header", ErrUnauthenticated)
	}
	scheme, token, ok := strings.Cut(h[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return Principal{}, fmt.Errorf("%w: Authorization header is not a bearer token (send Authorization: Bearer <token>)", ErrUnauthenticated)
	}
	token = strings.TrimLeft(token, " ")
	if token == "" {
		return Principal{}, fmt.Errorf("%w: empty bearer token", ErrUnauthenticated)
	}
	p, ok := a.lookup(token)
	if !ok {
		return Principal{}, fmt.Errorf("%w: unknown token", ErrUnauthenticated)
	}
	return p, nil
}

// lookup compares the token's hash with every configured hash in constant
// time, visiting all of them whatever matches, so timing reveals neither
// whether nor which principal matched.
func (a *Authenticator) lookup(token string) (Principal, bool) {
	h := sha256.Sum256([]byte(token))
	found := -1
	for i := range a.hashes {
		eq := subtle.ConstantTimeCompare(h[:], a.hashes[i][:])
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	if found < 0 {
		return Principal{}, false
	}
	return a.principals[found], true
}

// HashToken returns the SHA-256 of token in hex, the form token_sha256
// holds.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// TokenPrefix starts every token GenerateToken makes, so secret scanners
// and redaction rules can spot a leaked one.
const TokenPrefix = "vlm_"

// GenerateToken returns a new random token: TokenPrefix and 32 random
// bytes in unpadded base64url.
func GenerateToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("server: generate token: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

func osLookupEnv(name string) (string, bool) { return os.LookupEnv(name) }
