package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// rawPoster is the load generator's cheap HTTP/1.1 client: one kept-alive
// TCP connection per client goroutine, a request head encoded once (only
// Content-Length changes), the head and the body sent with one writev,
// and the response read into a reused buffer. net/http's Transport costs
// the load generator ~40 µs of CPU per one-event request on this machine
// (two goroutines per connection and channel hand-offs between them,
// header maps, allocation): measured beside the server on the same two
// cores, that CPU is taken from the server. --client nethttp keeps the
// Transport for comparison.
//
// It speaks just enough HTTP/1.1 for vellum serve's answers: a status
// line, headers, and a body framed by Content-Length or chunked encoding;
// "Connection: close" or any error drops the connection and the next
// request dials again. Not safe for concurrent use: one per goroutine.
type rawPoster struct {
	addr string // host:port
	head []byte // request head up to "Content-Length: "
	conn net.Conn
	br   *bufio.Reader
	clen []byte // "<n>\r\n\r\n", reused
	bufs net.Buffers
	body []byte // the last response's body, reused
}

func newRawPoster(base, path, token string) (*rawPoster, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("--client raw speaks plain HTTP only, not %s", u.Scheme)
	}
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: ",
		path, u.Host, token)
	return &rawPoster{addr: u.Host, head: []byte(head)}, nil
}

// post sends body and returns the answer's status and body (valid until
// the next post).
func (p *rawPoster) post(body []byte) (int, []byte, error) {
	if p.conn == nil {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			return 0, nil, err
		}
		p.conn = c
		if p.br == nil {
			p.br = bufio.NewReaderSize(c, 16<<10)
		} else {
			p.br.Reset(c)
		}
	}
	p.conn.SetDeadline(time.Now().Add(2 * time.Minute))
	p.clen = append(strconv.AppendInt(p.clen[:0], int64(len(body)), 10), "\r\n\r\n"...)
	p.bufs = append(p.bufs[:0], p.head, p.clen, body)
	bufs := p.bufs // WriteTo consumes the slice it is called on
	if _, err := bufs.WriteTo(p.conn); err != nil {
		p.close()
		return 0, nil, err
	}
	status, keep, err := p.readResponse()
	if err != nil || !keep {
		p.close()
	}
	return status, p.body, err
}

func (p *rawPoster) close() {
	if p.conn != nil {
		p.conn.Close()
		p.conn = nil
	}
}

var errBadResponse = errors.New("malformed HTTP response")

// readResponse reads one response: its status, whether the connection
// stays open, and its body into p.body.
func (p *rawPoster) readResponse() (status int, keep bool, err error) {
	line, err := p.line()
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, false, fmt.Errorf("%w: status line %.40q", errBadResponse, line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, fmt.Errorf("%w: status line %.40q", errBadResponse, line)
	}
	keep = line[7] == '1' // HTTP/1.1 keeps the connection by default
	clen, chunked := -1, false
	for {
		h, err := p.line()
		if err != nil {
			return status, false, err
		}
		if len(h) == 0 {
			break
		}
		name, val, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return status, false, fmt.Errorf("%w: header %.40q", errBadResponse, h)
		}
		val = bytes.TrimSpace(val)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if clen, err = strconv.Atoi(string(val)); err != nil || clen < 0 {
				return status, false, fmt.Errorf("%w: Content-Length %.40q", errBadResponse, val)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(val, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(val, []byte("close")) {
				keep = false
			}
		}
	}
	p.body = p.body[:0]
	switch {
	case chunked:
		err = p.chunked()
	case clen >= 0:
		err = p.read(clen)
	default: // the body runs to the end of the connection
		var rest []byte
		rest, err = io.ReadAll(p.br)
		p.body = append(p.body, rest...)
		keep = false
	}
	return status, keep && err == nil, err
}

// line reads one CRLF-terminated line without it; valid until the next
// read.
func (p *rawPoster) line() ([]byte, error) {
	l, err := p.br.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	l = bytes.TrimSuffix(l[:len(l)-1], []byte("\r"))
	return l, nil
}

// read appends the next n bytes of the connection to p.body.
func (p *rawPoster) read(n int) error {
	k := len(p.body)
	p.body = slices.Grow(p.body, n)[:k+n]
	_, err := io.ReadFull(p.br, p.body[k:])
	return err
}

// chunked reads a chunked body into p.body.
func (p *rawPoster) chunked() error {
	for {
		l, err := p.line()
		if err != nil {
			return err
		}
		if i := bytes.IndexByte(l, ';'); i >= 0 {
			l = l[:i]
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(l)), 16, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%w: chunk size %.40q", errBadResponse, l)
		}
		if n == 0 {
			for { // trailers, then the blank line
				t, err := p.line()
				if err != nil {
					return err
				}
				if len(t) == 0 {
					return nil
				}
			}
		}
		if n > 64<<20 {
			return fmt.Errorf("%w: chunk of %d bytes", errBadResponse, n)
		}
		if err := p.read(int(n)); err != nil {
			return err
		}
		if t, err := p.line(); err != nil || len(t) != 0 {
			return fmt.Errorf("%w: no CRLF after a chunk", errBadResponse)
		}
	}
}
