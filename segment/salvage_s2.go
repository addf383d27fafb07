package segment

import "encoding/binary"

// s2Prefix decodes an S2 block (FORMAT.md, "Block compression") as far as
// it is valid and returns the bytes decoded before the first element that
// is not: when a damaged block no longer decodes, the records before the
// damage can still be read. It never writes more than rawLen bytes.
func s2Prefix(src []byte, rawLen int) []byte {
	n, k := binary.Uvarint(src)
	if k <= 0 || k > 5 || n > 0xFFFFFFFF {
		return nil
	}
	if int(n) < rawLen {
		rawLen = int(n)
	}
	src = src[k:]
	out := make([]byte, 0, rawLen)
	offset := 0
	for len(src) > 0 {
		tag := src[0]
		var length, size int
		switch tag & 3 {
		case 0:
			m := int(tag >> 2)
			extra := 0
			if m >= 60 {
				extra = m - 59
				if len(src) < 1+extra {
					return out
				}
				m = 0
				for i := extra; i >= 1; i-- {
					m = m<<8 | int(src[i])
				}
			}
			length = m + 1
			if length < 1 || len(src) < 1+extra+length || len(out)+length > rawLen {
				return out
			}
			out = append(out, src[1+extra:1+extra+length]...)
			src = src[1+extra+length:]
			continue
		case 1:
			if len(src) < 2 {
				return out
			}
			o := int(tag>>5)<<8 | int(src[1])
			code := int(tag>>2) & 7
			size = 2
			switch {
			case o != 0:
				offset, length = o, code+4
			case code <= 4:
				length = code + 4
			case code == 5:
				if len(src) < 3 {
					return out
				}
				length, size = 8+int(src[2]), 3
			case code == 6:
				if len(src) < 4 {
					return out
				}
				length, size = 260+(int(src[2])|int(src[3])<<8), 4
			default:
				if len(src) < 5 {
					return out
				}
				length, size = 65540+(int(src[2])|int(src[3])<<8|int(src[4])<<16), 5
			}
		case 2:
			if len(src) < 3 {
				return out
			}
			offset, length, size = int(binary.LittleEndian.Uint16(src[1:])), int(tag>>2)+1, 3
		case 3:
			if len(src) < 5 {
				return out
			}
			offset, length, size = int(binary.LittleEndian.Uint32(src[1:])), int(tag>>2)+1, 5
		}
		if offset <= 0 || offset > len(out) || len(out)+length > rawLen {
			return out
		}
		for i := 0; i < length; i++ {
			out = append(out, out[len(out)-offset])
		}
		src = src[size:]
	}
	return out
}
