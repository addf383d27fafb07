// Package pgtest gives tests a real PostgreSQL: the server named by
// VELLUM_TEST_PG_DSN, or postgres://postgres@127.0.0.1:5432/test (which
// scripts/pg-up.sh, run by `make test`, starts when nothing answers), and a
// schema of its own for each test, dropped when the test ends. When the
// server does not answer, a test fails under CI=true and skips otherwise,
// saying how to start one.
//
// Its functions are safe for concurrent use.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultDSN is the server tests use when VELLUM_TEST_PG_DSN is not set.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/test"

// DSN returns the DSN of the test server (a superuser on it).
func DSN() string {
	if d := os.Getenv("VELLUM_TEST_PG_DSN"); d != "" {
		return d
	}
	return DefaultDSN
}

// IsDefault reports whether tests use DefaultDSN, the server pg-up.sh
// configures (a scram-sha-256 rule for role vellum_pw_test).
func IsDefault() bool { return os.Getenv("VELLUM_TEST_PG_DSN") == "" }

var (
	reachOnce sync.Once
	reachErr  error
)

// Require fails (CI=true) or skips t when the server does not answer.
func Require(t testing.TB) {
	t.Helper()
	reachOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, DSN())
		if err != nil {
			reachErr = err
			return
		}
		c.Close(ctx)
	})
	if reachErr == nil {
		return
	}
	msg := fmt.Sprintf("PostgreSQL at %s does not answer (%v); run scripts/pg-up.sh or set VELLUM_TEST_PG_DSN", Redacted(DSN()), reachErr)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: a missing PostgreSQL fails the run)")
	}
	t.Skip(msg)
}

// Admin returns a connection to the test server as its superuser, closed
// when t ends.
func Admin(t testing.TB) *pgx.Conn {
	t.Helper()
	Require(t)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, DSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// Schema creates a new, empty schema for t (dropped with everything in it
// when t ends) and returns its name and a DSN whose search_path is it.
func Schema(t testing.TB) (name, dsn string) {
	t.Helper()
	c := Admin(t)
	var b [6]byte
	rand.Read(b[:])
	name = "vt_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	if _, err := c.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c, err := pgx.Connect(ctx, DSN())
		if err != nil {
			t.Logf("drop schema %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+name+" CASCADE"); err != nil {
			t.Logf("drop schema %s: %v", name, err)
		}
	})
	return name, WithParam(DSN(), "search_path", name)
}

// WithParam returns dsn (a URL) with the query parameter k set to v.
func WithParam(dsn, k, v string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		panic(err)
	}
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String()
}

// WithUser returns dsn with the user (and password, when not empty)
// replaced.
func WithUser(dsn, user, password string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		panic(err)
	}
	if password != "" {
		u.User = url.UserPassword(user, password)
	} else {
		u.User = url.User(user)
	}
	return u.String()
}

// Redacted returns dsn with any password replaced by xxxxx.
func Redacted(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
