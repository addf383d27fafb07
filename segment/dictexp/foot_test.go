package dictexp

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

func TestFooter(t *testing.T) {
	for _, dir := range []string{"/tmp/i13q-1m-s2dict", "/tmp/i13q-1m-s2"} {
		files, _ := filepath.Glob(dir + "/segments/*")
		sz := map[uint16]int64{}
		spans := int64(0)
		for _, f := range files {
			b, _ := os.ReadFile(f)
			le := binary.LittleEndian
			if len(b) < 256 || string(b[len(b)-8:]) != "VELLUMFT" {
				continue
			}
			off := int(le.Uint64(b[len(b)-128:]))
			body := b[off+8 : off+8+int(le.Uint32(b[off+4:]))]
			for len(body) > 0 {
				typ := le.Uint16(body)
				n := int(le.Uint32(body[4:]))
				sz[typ] += int64(n)
				if typ == 1 {
					spans += int64(le.Uint32(body[8:]))
				}
				body = body[8+n:]
			}
		}
		t.Logf("%s: sections %v spans %d", dir, sz, spans)
	}
}
