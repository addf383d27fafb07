package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vellumlog/vellum/backends"
)

// Redact returns dsn with its password replaced by xxxxx, for logs and
// errors. A DSN that is not a URL is reduced to its host and database
// keywords.
func Redact(dsn string) string {
	if strings.Contains(dsn, "://") {
		if _, err := url.Parse(dsn); err != nil {
			// Not a URL after all: keep nothing between :// and @.
			return userinfoRE.ReplaceAllString(dsn, "://$1:xxxxx@")
		}
	}
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		if u.User != nil {
			if _, ok := u.User.Password(); ok {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
			}
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	var keep []string
	for _, f := range strings.Fields(dsn) {
		if strings.HasPrefix(f, "password=") {
			f = "password=xxxxx"
		}
		keep = append(keep, f)
	}
	return strings.Join(keep, " ")
}

var userinfoRE = regexp.MustCompile(`://([^:/@]*):([^@]*)@`)

// password returns the DSN's password, to scrub it from driver messages.
func password(dsn string) string {
	if m := userinfoRE.FindStringSubmatch(dsn); m != nil {
		if _, err := url.Parse(dsn); err != nil {
			return m[2]
		}
	}
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		if u.User != nil {
			if p, ok := u.User.Password(); ok {
				return p
			}
		}
		return u.Query().Get("password")
	}
	for _, f := range strings.Fields(dsn) {
		if p, ok := strings.CutPrefix(f, "password="); ok {
			return p
		}
	}
	return ""
}

// classify turns a driver error into one that names the backend, the
// server (without password), what was being done and what to do, and never
// carries the password.
func classify(err error, dsn, doing string) error {
	if err == nil {
		return nil
	}
	where := Redact(dsn)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("postgres %s: %s: %w", where, doing, err)
	}
	msg := err.Error()
	msg = scrub(msg, dsn)
	cause := errors.New(msg)
	var pe *pgconn.PgError
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &pe):
		switch pe.Code {
		case "28P01":
			return fmt.Errorf("%w: postgres %s: %s: the password was refused; check the password in audit.postgres.dsn (or the variable it comes from): %v", backends.ErrUnavailable, where, doing, cause)
		case "28000":
			return fmt.Errorf("%w: postgres %s: %s: the server refuses this role or host (pg_hba.conf, or the role does not exist or may not log in): %v", backends.ErrUnavailable, where, doing, cause)
		case "3D000":
			return fmt.Errorf("%w: postgres %s: %s: the database does not exist; create it (CREATE DATABASE) or fix the DSN: %v", backends.ErrUnavailable, where, doing, cause)
		case "42501":
			return fmt.Errorf("%w: postgres %s: %s: permission denied; grant the role vellum_app (GRANT vellum_app TO <role>, docs/backends.md), or run migrations once as the schema's owner: %v", backends.ErrUnavailable, where, doing, cause)
		case "53300":
			return fmt.Errorf("%w: postgres %s: %s: too many connections; raise max_connections or lower the pool size: %v", backends.ErrUnavailable, where, doing, cause)
		}
		return fmt.Errorf("postgres %s: %s: %v", where, doing, cause)
	case errors.As(err, &oe), errors.As(err, &ne), strings.Contains(msg, "dial error"), strings.Contains(msg, "connection refused"):
		return fmt.Errorf("%w: postgres %s: %s: cannot reach the server; check the host and port in audit.postgres.dsn and that PostgreSQL runs: %v", backends.ErrUnavailable, where, doing, cause)
	case pgconn.Timeout(err):
		return fmt.Errorf("%w: postgres %s: %s: timed out: %v", backends.ErrUnavailable, where, doing, cause)
	}
	return fmt.Errorf("postgres %s: %s: %v", where, doing, cause)
}

// scrub removes dsn's password from msg.
func scrub(msg, dsn string) string {
	if p := password(dsn); p != "" {
		msg = strings.ReplaceAll(msg, p, "xxxxx")
	}
	return msg
}
