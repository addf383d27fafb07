package dictexp

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/vellumlog/vellum/bench"
)

func rawStream(n int) []byte {
	g := bench.NewGen(1)
	var out []byte
	t0 := time.Unix(1_700_000_000, 0)
	mac := make([]byte, 32)
	for i := 0; i < n; i++ {
		r := g.Next()
		r.Seq = uint64(i + 1)
		r.Time = t0.Add(time.Duration(i) * 8 * time.Millisecond)
		b, err := r.AppendBinary(nil)
		if err != nil {
			panic(err)
		}
		rand.Read(mac)
		out = binary.AppendUvarint(out, uint64(len(b)))
		out = append(out, b...)
		out = append(out, mac...)
	}
	return out
}

func TestRatios(t *testing.T) {
	raw := rawStream(60000)
	body := raw[256<<10:]
	nrec := 60000.0 * float64(len(body)) / float64(len(raw))
	for _, bs := range []int{65536, 16384, 8192, 4096} {
		plain := 0
		blocks := 0
		for p := 0; p < len(body); p += bs {
			e := body[p:min(p+bs, len(body))]
			plain += len(s2.Encode(nil, e)) + 76
			blocks++
		}
		res := fmt.Sprintf("bs=%5d plain %.1f B/rec", bs, float64(plain)/nrec)
		for _, ds := range []int{16384, 32768, 65536} {
			d := s2.MakeDict(raw[256<<10-ds:256<<10], raw[:16])
			fast, better := 0, 0
			var tdec time.Duration
			for p := 0; p < len(body); p += bs {
				e := body[p:min(p+bs, len(body))]
				enc := d.Encode(nil, e)
				fast += len(enc) + 76
				better += len(d.EncodeBetter(nil, e)) + 76
				t0 := time.Now()
				for k := 0; k < 20; k++ {
					if _, err := d.Decode(make([]byte, 0, bs), enc); err != nil {
						t.Fatal(err)
					}
				}
				tdec += time.Since(t0)
			}
			res += fmt.Sprintf(" | dict%dK fast %.1f better %.1f dec %.1fus", ds>>10, float64(fast)/nrec, float64(better)/nrec, float64(tdec.Microseconds())/float64(blocks*20))
		}
		t.Log(res)
	}
}
