package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// readBody reads an ingest request's body, at most body_limit bytes. With
// Content-Encoding: gzip it is decompressed and the limit applies to the
// decompressed bytes as well as to the compressed ones, so a small bomb
// is refused with 413 after reading no more than the limit. Another
// encoding is 415. (klauspost/compress's gzip: already a dependency,
// several times faster than compress/gzip.)
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	limit := int64(s.cfg.BodyLimit)
	if r.ContentLength > limit {
		return nil, httpErr(http.StatusRequestEntityTooLarge, "the body is larger than the limit of %s (body_limit)", s.cfg.BodyLimit)
	}
	body := io.Reader(http.MaxBytesReader(w, r.Body, limit))
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		return readAll(body, r.ContentLength)
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, gzipErr(err)
		}
		zr.Multistream(true)
		b, err := io.ReadAll(io.LimitReader(zr, limit+1))
		if err != nil {
			return nil, gzipErr(err)
		}
		if int64(len(b)) > limit {
			return nil, httpErr(http.StatusRequestEntityTooLarge, "the body decompresses to more than the limit of %s (body_limit)", s.cfg.BodyLimit)
		}
		return b, nil
	default:
		return nil, httpErr(http.StatusUnsupportedMediaType, "Content-Encoding %q is not supported (send gzip or none)", enc)
	}
}

// readAll is io.ReadAll into a buffer of the declared size (plus one byte
// to see the end), sparing a large body the copies of a growing buffer
// (~5% of the server's CPU for bodies of 1,000 events); without a declared
// size it is io.ReadAll. At most 4 MiB is set aside before the bytes
// arrive, whatever a client declares.
func readAll(r io.Reader, declared int64) ([]byte, error) {
	if declared <= 0 {
		return io.ReadAll(r)
	}
	b := bodyBuf(int(min(declared, 4<<20)) + 1)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) { // over 4 MiB
			rest, err := io.ReadAll(r)
			return append(b, rest...), err
		}
	}
}

// bodyBufs holds the buffers of ingest bodies whose requests succeeded,
// for readAll to reuse: a buffer is given back (releaseBody) only once
// nothing refers to it, after the records were decoded into their own
// arena, appended and answered. At one event per request the body was
// ~8% of the server's allocated bytes, and a fresh buffer is zeroed.
var bodyBufs sync.Pool // of *[]byte

// maxPooledBody bounds the buffers bodyBufs keeps: a body of 1,000 events
// is ~530 KB; a rare larger one is left to the garbage collector.
const maxPooledBody = 1<<20 + 1

// bodyBuf returns an empty buffer of capacity at least n, from bodyBufs
// when it holds one that large.
func bodyBuf(n int) []byte {
	if p, _ := bodyBufs.Get().(*[]byte); p != nil && cap(*p) >= n {
		return (*p)[:0]
	}
	return make([]byte, 0, n)
}

// releaseBody gives b, which nothing refers to any more, to readAll to
// reuse.
func releaseBody(b []byte) {
	if cap(b) > 0 && cap(b) <= maxPooledBody {
		bodyBufs.Put(&b)
	}
}

// gzipErr keeps a body over the limit a 413 and makes bad gzip a 400.
func gzipErr(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	return badRequest("%s", fmt.Sprintf("the gzip body cannot be decompressed: %v", err))
}
