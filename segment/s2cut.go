package segment

import (
	"encoding/binary"
)

// s2Cut walks the elements of an S2 block (FORMAT.md, "Block
// compression": the stored payload of a codec 1 block) without producing
// their output, up to the first element boundary at or after output byte
// n. It returns the length of the block's length header (hdr), the input
// bytes up to that boundary (cut, counting the header), and the output
// bytes they decode to (out, at least n unless the block ends first). ok
// is false when the elements do not parse; the caller then decodes the
// whole block, whose decoder reports what is wrong.
//
// Decoding stored[hdr:cut] as a block of out bytes gives the first out
// bytes of the block's output: a reader that wants only the first records
// of a block (postings name them) decompresses only as far as they reach.
func s2Cut(stored []byte, n int) (hdr, cut, out int, ok bool) {
	_, hdr = binary.Uvarint(stored)
	if hdr <= 0 || hdr > 5 {
		return 0, 0, 0, false
	}
	s, d := hdr, 0
	// While five bytes remain, an element's tag and length bytes are read
	// without further checks; the loop after handles the last few.
	for s+5 <= len(stored) && d < n {
		in := stored[s : s+5 : s+5]
		tag := in[0]
		var length int
		switch tag & 3 {
		case 0:
			x := uint32(tag >> 2)
			switch {
			case x < 60:
				s++
			case x == 60:
				x = uint32(in[1])
				s += 2
			case x == 61:
				x = uint32(in[1]) | uint32(in[2])<<8
				s += 3
			case x == 62:
				x = uint32(in[1]) | uint32(in[2])<<8 | uint32(in[3])<<16
				s += 4
			default:
				x = uint32(in[1]) | uint32(in[2])<<8 | uint32(in[3])<<16 | uint32(in[4])<<24
				s += 5
			}
			length = int(x) + 1
			if length > len(stored)-s {
				return 0, 0, 0, false
			}
			s += length
		case 1:
			k := int(tag>>2) & 7
			if tag < 0x20 && in[1] == 0 { // offset 0: a repeat
				switch k {
				case 5:
					length = 8 + int(in[2])
					s += 3
				case 6:
					length = 260 + (int(in[2]) | int(in[3])<<8)
					s += 4
				case 7:
					length = 65540 + (int(in[2]) | int(in[3])<<8 | int(in[4])<<16)
					s += 5
				default:
					length = k + 4
					s += 2
				}
			} else {
				length = k + 4
				s += 2
			}
		case 2:
			length = int(tag>>2) + 1
			s += 3
		default:
			length = int(tag>>2) + 1
			s += 5
		}
		d += length
	}
	for s < len(stored) && d < n {
		tag := stored[s]
		var length int
		switch tag & 3 {
		case 0: // literal
			m := int(tag >> 2)
			if m < 60 {
				length = m + 1
				s++
			} else {
				nb := m - 59 // 1 to 4 bytes of length − 1
				if s+1+nb > len(stored) {
					return 0, 0, 0, false
				}
				var x uint64
				for i := range nb {
					x |= uint64(stored[s+1+i]) << (8 * i)
				}
				s += 1 + nb
				if x+1 > uint64(len(stored)-s) {
					return 0, 0, 0, false
				}
				length = int(x) + 1
			}
			if length > len(stored)-s {
				return 0, 0, 0, false
			}
			s += length
		case 1: // copy with a 1-byte offset, or a repeat
			if s+2 > len(stored) {
				return 0, 0, 0, false
			}
			k := int(tag>>2) & 7
			if int(tag>>5) == 0 && stored[s+1] == 0 { // offset 0: a repeat
				switch k {
				case 5:
					if s+3 > len(stored) {
						return 0, 0, 0, false
					}
					length = 8 + int(stored[s+2])
					s += 3
				case 6:
					if s+4 > len(stored) {
						return 0, 0, 0, false
					}
					length = 260 + (int(stored[s+2]) | int(stored[s+3])<<8)
					s += 4
				case 7:
					if s+5 > len(stored) {
						return 0, 0, 0, false
					}
					length = 65540 + (int(stored[s+2]) | int(stored[s+3])<<8 | int(stored[s+4])<<16)
					s += 5
				default:
					length = k + 4
					s += 2
				}
			} else {
				length = k + 4
				s += 2
			}
		case 2: // copy with a 2-byte offset
			if s+3 > len(stored) {
				return 0, 0, 0, false
			}
			length = int(tag>>2) + 1
			s += 3
		case 3: // copy with a 4-byte offset
			if s+5 > len(stored) {
				return 0, 0, 0, false
			}
			length = int(tag>>2) + 1
			s += 5
		}
		d += length
	}
	return hdr, s, d, true
}
