package witness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// maxResponseBytes bounds what the client reads of a witness's answer.
const maxResponseBytes = 64 << 10

// Client talks to one witness: URL is its submission prefix (the
// add-checkpoint endpoint is URL + "/add-checkpoint"), which for a Vellum
// witness is also its monitoring prefix.
type Client struct {
	URL string
	// HTTP is the client; http.DefaultClient when nil.
	HTTP *http.Client
}

// StatusError is a witness's answer other than 200: its status, for 409
// the witness's latest cosigned size, and the body it sent.
type StatusError struct {
	Status int
	Size   uint64 // 409 only
	Body   string
}

func (e *StatusError) Error() string {
	if e.Status == http.StatusConflict {
		return fmt.Sprintf("witness: 409: the witness's latest cosigned checkpoint has %d records", e.Size)
	}
	return fmt.Sprintf("witness: %d %s: %s", e.Status, http.StatusText(e.Status), strings.TrimSpace(e.Body))
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// AddCheckpoint sends an add-checkpoint request and returns the signature
// lines of a 200 answer, or a *StatusError.
func (c *Client) AddCheckpoint(ctx context.Context, req *AddRequest) ([]byte, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.URL, "/")+AddCheckpointPath, bytes.NewReader(req.Marshal()))
	if err != nil {
		return nil, fmt.Errorf("witness: %w", err)
	}
	hr.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := c.http().Do(hr)
	if err != nil {
		return nil, fmt.Errorf("witness: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("witness: read the answer of %s: %w", c.URL, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return body, nil
	case http.StatusConflict:
		s := strings.TrimSuffix(string(body), "\n")
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || !strings.HasSuffix(string(body), "\n") {
			return nil, fmt.Errorf("%w: a 409 answer whose body %q is not a tree size", ErrMalformed, clip(body))
		}
		return nil, &StatusError{Status: resp.StatusCode, Size: n, Body: string(body)}
	}
	return nil, &StatusError{Status: resp.StatusCode, Body: string(clip(body))}
}

// Latest fetches the witness's latest cosigned checkpoint of origin
// (GET /checkpoint?origin=, a Vellum witness extension to C2SP
// tlog-witness): the log's signed note with the witness's cosignature.
// The caller verifies it.
func (c *Client) Latest(ctx context.Context, origin string) ([]byte, error) {
	u := strings.TrimSuffix(c.URL, "/") + CheckpointPath + "?origin=" + url.QueryEscape(origin)
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("witness: %w", err)
	}
	resp, err := c.http().Do(hr)
	if err != nil {
		return nil, fmt.Errorf("witness: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("witness: read %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &StatusError{Status: resp.StatusCode, Body: string(clip(body))}
	}
	return body, nil
}
