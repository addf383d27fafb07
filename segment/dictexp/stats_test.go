package dictexp

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

func TestStats(t *testing.T) {
	for _, dir := range []string{"/tmp/i13q-1m-s2dict", "/tmp/i13q-1m-s2"} {
		files, _ := filepath.Glob(dir + "/segments/*")
		if len(files) == 0 {
			files, _ = filepath.Glob(dir + "/*.vseg")
		}
		var stored, raw, frames, commits, recs, footer [4]int64
		for _, f := range files {
			b, _ := os.ReadFile(f)
			if len(b) < 256 {
				continue
			}
			le := binary.LittleEndian
			end := len(b)
			if string(b[len(b)-8:]) == "VELLUMFT" {
				end = int(le.Uint64(b[len(b)-128:]))
				footer[0] += int64(len(b) - end)
			}
			for off := 128; off < end; {
				switch b[off] {
				case 'B':
					c := b[off+1]
					frames[c]++
					recs[c] += int64(le.Uint32(b[off+4:]))
					raw[c] += int64(le.Uint32(b[off+32:]))
					stored[c] += int64(le.Uint32(b[off+36:]))
					off += 76 + int(le.Uint32(b[off+36:]))
				case 'C':
					commits[0]++
					off += 24
				default:
					t.Fatalf("%s at %d: %x", f, off, b[off])
				}
			}
		}
		t.Logf("%s: files %d footer %d B commits %d", dir, len(files), footer[0], commits[0])
		for c := 1; c < 4; c++ {
			if frames[c] == 0 {
				continue
			}
			t.Logf("  codec %d: frames %d recs %d raw/rec %.1f stored/rec %.1f frame/rec %.2f", c, frames[c], recs[c], float64(raw[c])/float64(recs[c]), float64(stored[c])/float64(recs[c]), 76*float64(frames[c])/float64(recs[c]))
		}
	}
}
