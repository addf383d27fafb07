package redact

import (
	"strings"
	"testing"
)

// allRules returns a Redactor with every built-in rule enabled and the
// replace action.
func allRules(t testing.TB) *Redactor {
	t.Helper()
	r, err := New(Config{Presets: []string{"default", "gdpr", "hipaa"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type detCase struct {
	name string
	in   string
	want string // "" means: unchanged
}

func runDetCases(t *testing.T, cases []detCase) {
	t.Helper()
	r := allRules(t)
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want == "" {
				want = tt.in
			}
			got, reds := r.RedactString("outcome.reason", tt.in)
			if got != want {
				t.Fatalf("RedactString(%q)\n got %q\nwant %q", tt.in, got, want)
			}
			if (len(reds) == 0) != (tt.want == "") {
				t.Fatalf("redactions %v for %q", reds, tt.in)
			}
		})
	}
}

func TestEmail(t *testing.T) {
	runDetCases(t, []detCase{
		{"plain", "mail alice@example.com now", "mail [REDACTED:EMAIL] now"},
		{"plus and dots", "to: first.last+tag@mail.example.co.uk.", "to: [REDACTED:EMAIL]."},
		{"in angle brackets", "Bob <bob_99@corp-mail.io>", "Bob <[REDACTED:EMAIL]>"},
		{"quoted", `"x@y.org"`, `"[REDACTED:EMAIL]"`},
		{"punycode tld", "a@b.xn--p1ai", "[REDACTED:EMAIL]"},
		{"url userinfo", "https://user:pw@host.example.com/x", "https://user:[REDACTED:EMAIL]/x"},
		{"two", "a@b.io,c@d.io", "[REDACTED:EMAIL],[REDACTED:EMAIL]"},
		{"near miss: mention", "ping @alice about it", ""},
		{"near miss: no tld", "user@localhost", ""},
		{"numeric tld is an address", "x@1.2.3.4", "x@[REDACTED:IPV4]"},
		{"near miss: scp git url", "git clone git@github.com:org/repo.git", ""},
		{"near miss: decorator", "@app.route('/x')", ""},
		{"near miss: trailing dot local", "a.@b.com", ""},
		{"near miss: npm scope", "npm i @types/node@20.1.0", ""},
	})
}

func TestPhone(t *testing.T) {
	runDetCases(t, []detCase{
		{"nanp dashes", "call 415-555-2671.", "call [REDACTED:PHONE]."},
		{"nanp dots", "415.555.2671", "[REDACTED:PHONE]"},
		{"nanp parens", "(415) 555-2671", "[REDACTED:PHONE]"},
		{"nanp parens no space", "(415)555-2671", "[REDACTED:PHONE]"},
		{"nanp 1 prefix", "1-800-555-0199", "[REDACTED:PHONE]"},
		{"nanp 1 space parens", "1 (800) 555-0199", "[REDACTED:PHONE]"},
		{"e164", "+14155552671", "[REDACTED:PHONE]"},
		{"e164 plus1 spaced", "+1 415 555 2671", "[REDACTED:PHONE]"},
		{"e164 plus1 parens", "+1 (415) 555-2671", "[REDACTED:PHONE]"},
		{"uk", "+44 20 7946 0958", "[REDACTED:PHONE]"},
		{"uk trunk", "+44 (0)20 7946 0958", "[REDACTED:PHONE]"},
		{"germany", "tel +49-30-901820", "tel [REDACTED:PHONE]"},
		{"india", "+91 98765 43210", "[REDACTED:PHONE]"},
		{"near miss: area code 1xx", "order 123-456-7890", ""},
		{"near miss: N11 area", "411-555-1234", ""},
		{"near miss: bare ten digits", "ref 4155552671", ""},
		{"near miss: bare spaced", "scores 300 500 1000", ""},
		{"near miss: date", "2024-05-01", ""},
		{"near miss: isbn", "ISBN 978-0-306-40615-7", ""},
		{"near miss: plus too short", "C++14 and +1234", ""},
		{"near miss: unknown country code", "+999 1234 5678", ""},
		{"near miss: +1 bad nanp", "+1 123 456 7890", ""},
		{"near miss: longer number", "415-555-2671-99", ""},
		{"near miss: in word", "id415-555-2671", ""},
	})
}

func TestSSN(t *testing.T) {
	runDetCases(t, []detCase{
		{"dashes", "ssn 219-45-6789", "ssn [REDACTED:US_SSN]"},
		{"spaces", "SSN: 536 22 1234.", "SSN: [REDACTED:US_SSN]."},
		{"near miss: area 000", "000-12-3456", ""},
		{"near miss: area 666", "666-12-3456", ""},
		{"near miss: area 9xx", "923-12-3456", ""},
		{"near miss: group 00", "219-00-6789", ""},
		{"near miss: serial 0000", "219-45-0000", ""},
		{"near miss: advertised", "078-05-1120", ""},
		{"near miss: one digit", "111-11-1111", ""},
		{"near miss: bare nine digits", "219456789", ""},
		{"near miss: dots", "219.45.6789", ""},
		{"near miss: part of longer", "12-219-45-6789", ""},
	})
}

func TestCreditCard(t *testing.T) {
	runDetCases(t, []detCase{
		{"visa", "card 4111111111111111 ok", "card [REDACTED:CREDIT_CARD] ok"},
		{"visa spaced", "4111 1111 1111 1111", "[REDACTED:CREDIT_CARD]"},
		{"visa dashed", "4111-1111-1111-1111", "[REDACTED:CREDIT_CARD]"},
		{"mastercard", "5555555555554444", "[REDACTED:CREDIT_CARD]"},
		{"mastercard 2-series", "2223003122003222", "[REDACTED:CREDIT_CARD]"},
		{"amex 4-6-5", "3782 822463 10005", "[REDACTED:CREDIT_CARD]"},
		{"discover", "6011111111111117", "[REDACTED:CREDIT_CARD]"},
		{"diners 14", "30569309025904", "[REDACTED:CREDIT_CARD]"},
		{"jcb", "3530111333300000", "[REDACTED:CREDIT_CARD]"},
		{"visa 13", "4222222222222", "[REDACTED:CREDIT_CARD]"},
		{"then cvv", "4111 1111 1111 1111 123", "[REDACTED:CREDIT_CARD] 123"},
		{"near miss: luhn invalid", "4111111111111112", ""},
		{"near miss: luhn invalid spaced", "4111 1111 1111 1112", ""},
		{"near miss: bad iin", "1234567812345670", ""},
		{"near miss: amex length", "3782822463100050", ""},
		{"near miss: mixed separators", "4111 1111-1111 1111", ""},
		{"near miss: order number", "order #100023948576", ""},
		{"near miss: invoice", "INV-2024-000123456789", ""},
		{"near miss: 20 digits", "41111111111111111111", ""},
		{"near miss: timestamp ns", "1732701600123456789", ""},
		{"near miss: in hex", "deadbeef4111111111111111", ""},
	})
}

func TestIBAN(t *testing.T) {
	runDetCases(t, []detCase{
		{"de compact", "IBAN DE89370400440532013000.", "IBAN [REDACTED:IBAN]."},
		{"de spaced", "DE89 3704 0044 0532 0130 00", "[REDACTED:IBAN]"},
		{"gb letters", "GB82 WEST 1234 5698 7654 32", "[REDACTED:IBAN]"},
		{"fr", "FR1420041010050500013M02606", "[REDACTED:IBAN]"},
		{"no", "NO9386011117947", "[REDACTED:IBAN]"},
		{"near miss: bad checksum", "DE89370400440532013001", ""},
		{"near miss: wrong length", "DE8937040044053201300", ""},
		{"near miss: unknown country", "ZZ89370400440532013000", ""},
		{"near miss: lower case", "de89370400440532013000", ""},
		{"near miss: in word", "xDE89370400440532013000", ""},
	})
}

func TestIP(t *testing.T) {
	runDetCases(t, []detCase{
		{"v4", "from 203.0.113.7:443", "from [REDACTED:IPV4]:443"},
		{"v4 cidr", "10.1.0.0/16", "[REDACTED:IPV4]/16"},
		{"v4 sentence", "host 192.168.1.20.", "host [REDACTED:IPV4]."},
		{"v6", "addr 2001:db8::8a2e:370:7334 ok", "addr [REDACTED:IPV6] ok"},
		{"v6 full", "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "[REDACTED:IPV6]"},
		{"v6 bracket port", "[2001:db8::1]:8080", "[[REDACTED:IPV6]]:8080"},
		{"v6 mapped v4", "::ffff:192.0.2.128", "[REDACTED:IPV6]"},
		{"near miss: octet > 255", "10.0.0.256", ""},
		{"near miss: leading zero", "010.1.1.1", ""},
		{"near miss: version", "v1.2.3.4 and 1.26.0", ""},
		{"near miss: oid", "1.3.6.1.4.1.311", ""},
		{"near miss: loopback", "127.0.0.1 and ::1", ""},
		{"near miss: unspecified", "0.0.0.0", ""},
		{"near miss: netmask", "255.255.255.0", ""},
		{"near miss: time", "12:30:45", ""},
		{"near miss: mac", "00:1a:2b:3c:4d:5e", ""},
		{"near miss: c++ scope", "std::vector and a::b", ""},
		{"near miss: two groups", "fe80::1", ""},
		{"near miss: uuid", "550e8400-e29b-41d4-a716-446655440000", ""},
	})
}

func TestSecrets(t *testing.T) {
	pem := "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----"
	runDetCases(t, []detCase{
		{"aws key id", "AKIAIOSFODNN7EXAMPLE", "[REDACTED:AWS_ACCESS_KEY]"},
		{"aws temp key id", "key=ASIAY34FZKBOKMUTVV7A;", "key=[REDACTED:AWS_ACCESS_KEY];"},
		{"aws secret env", "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "AWS_SECRET_ACCESS_KEY=[REDACTED:AWS_SECRET_KEY]"},
		{"aws secret json", `{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}`, `{"SecretAccessKey": "[REDACTED:AWS_SECRET_KEY]"}`},
		{"aws secret ini", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_access_key = [REDACTED:AWS_SECRET_KEY]"},
		{"github classic", "token ghp_16C7e42F292c6912E7710c838347Ae178B4a ok", "token [REDACTED:GITHUB_TOKEN] ok"},
		{"github oauth", "gho_16C7e42F292c6912E7710c838347Ae178B4a", "[REDACTED:GITHUB_TOKEN]"},
		{"github fine-grained", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTU", "[REDACTED:GITHUB_TOKEN]"},
		{"slack", "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy", "[REDACTED:SLACK_TOKEN]"},
		{"stripe live", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "[REDACTED:STRIPE_KEY]"},
		{"stripe test", "rk_test_51HxYzAbCdEfGh", "[REDACTED:STRIPE_KEY]"},
		{"stripe publishable", "pk_live_TYooMQauvdEDq54NiTphI7jx", "[REDACTED:STRIPE_KEY]"},
		{"jwt", "t=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c&x",
			"t=[REDACTED:JWT]&x"},
		{"jwt alg none", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "[REDACTED:JWT]"},
		{"bearer", "Authorization: Bearer 8f14e45fceea167a5a36dedd4bea2543", "Authorization: Bearer [REDACTED:BEARER_TOKEN]"},
		{"bearer lower", "authorization: bearer abc.DEF-123_xyz~456+789/0==", "authorization: bearer [REDACTED:BEARER_TOKEN]"},
		{"bearer jwt", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", "Bearer [REDACTED:BEARER_TOKEN]"},
		{"pem", "key:\n" + pem + "\nend", "key:\n[REDACTED:PRIVATE_KEY]\nend"},
		{"pem truncated", "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "[REDACTED:PRIVATE_KEY]"},
		{"near miss: aws key in word", "XAKIAIOSFODNN7EXAMPLE", ""},
		{"near miss: aws key short", "AKIAIOSFODNN7EXAMPL", ""},
		{"near miss: 40 chars without keyword", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""},
		{"near miss: git sha after keyword", "aws_secret_key_sha=da39a3ee5e6b4b0d3255bfef95601890afd80709", ""},
		{"near miss: github short", "ghp_abc", ""},
		{"near miss: ghx", "ghx_16C7e42F292c6912E7710c838347Ae178B4a", ""},
		{"near miss: slack short", "xoxb-123", ""},
		{"near miss: stripe word", "mask_live_data", ""},
		{"near miss: jwt bad header", "eyJub3RhbGciOjF9.eyJzdWIiOiIxIn0.abc", ""},
		{"near miss: eyJ word", "eyJust kidding.a.b", ""},
		{"near miss: bearer prose", "use a Bearer token in the header", ""},
		{"near miss: bearer letters only", "Bearer AuthenticationRequiredError", ""},
		{"near miss: public key", "-----BEGIN PUBLIC KEY-----\nMIIBIjANBg\n-----END PUBLIC KEY-----", ""},
		{"near miss: certificate", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", ""},
	})
}

// TestNearMisses collects text an agent's records are full of that no rule
// may touch.
func TestNearMisses(t *testing.T) {
	for _, s := range []string{
		"2026-11-27T10:00:00.123456789Z", "Wed, 27 Nov 2026 10:00:00 GMT", "27/11/2026", "11/27/26 10:00 PM",
		"1732701600", "1732701600123", "v1.26.0", "go1.26.0", "1.2.3-rc.1+build.5", "Chrome/120.0.6099.129",
		"550e8400-e29b-41d4-a716-446655440000", "{3F2504E0-4F89-11D3-9A0C-0305E82C3301}",
		"commit 9fceb02d0ae598e95dc970b74767f19372d61af8", "da39a3ee5e6b4b0d3255bfef95601890afd80709",
		"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"aa:bb:cc:dd:ee:ff", "00-1A-2B-3C-4D-5E", "order 1000234", "ORD-2024-000123", "invoice INV/2026/00042",
		"PO# 4500012345", "tracking 1Z999AA10123456784", "price $1,234,567.89", "pi 3.14159265358979",
		"port 8080, pid 31337", "HTTP/1.1 200 OK", "line 12:34", "ratio 16:9", "tool_call_id call_abc123",
		"x = a[i] + b::c; // TODO", "base64: SGVsbG8sIFdvcmxkIQ==", "+1 vote", "1-2-3-4", "12345-6789",
	} {
		t.Run(s, func(t *testing.T) {
			r := allRules(t)
			if got, reds := r.RedactString("outcome.reason", s); got != s || reds != nil {
				t.Fatalf("near miss %q changed to %q (%v)", s, got, reds)
			}
		})
	}
}

func TestActions(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	tests := []struct {
		name   string
		action Action
		in     string
		want   string
	}{
		{"replace", ActionReplace, "card 4111-1111-1111-1111.", "card [REDACTED:CREDIT_CARD]."},
		{"mask", ActionMask, "card 4111-1111-1111-1111.", "card ***************1111."},
		{"mask email", ActionMask, "a@b.io", "**b.io"},
		{"mask short keeps nothing", ActionMask, "x@y.io", "**y.io"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(Config{Action: tt.action}, Options{PseudonymKey: key})
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := r.RedactString("x", tt.in); got != tt.want {
				t.Fatalf("got %q want %q", got, tt.want)
			}
		})
	}
}

func TestMaskRunes(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""}, {"abcd", "****"}, {"abcde", "*bcde"}, {"héllo wörld", "*******örld"}, {"日本語です", "*本語です"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := string(mask(nil, tt.in)); got != tt.want {
				t.Fatalf("mask(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
