package segment

import "encoding/binary"

// RecomputeCRCs returns a copy of a segment image with every header, block,
// commit and footer CRC recomputed over the bytes as they are. It exists for
// tests that play a forger who knows this format but not the HMAC key:
// after it, only the MAC chain (and the Merkle checkpoints) can tell the
// change. It stops at the first frame it cannot parse.
func RecomputeCRCs(in []byte) []byte {
	b := append([]byte(nil), in...)
	le := binary.LittleEndian
	if len(b) < HeaderSize {
		return b
	}
	le.PutUint32(b[124:], crc(b[:124]))
	good := HeaderSize
	for off := HeaderSize; off < len(b); {
		switch b[off] {
		case frameBlock:
			if len(b)-off < BlockHeaderSize {
				return b
			}
			n := BlockHeaderSize + int(le.Uint32(b[off+36:]))
			if n > len(b)-off {
				return b
			}
			le.PutUint32(b[off+72:], crcUpdate(crc(b[off:off+72]), b[off+BlockHeaderSize:off+n]))
			off += n
		case frameCommit:
			if len(b)-off < CommitSize {
				return b
			}
			le.PutUint32(b[off+4:], uint32(off-good))
			le.PutUint32(b[off+16:], crcUpdate(crc(b[good:off]), b[off:off+16]))
			off += CommitSize
			good = off
		case frameFooter:
			if len(b)-off < footerPrefix+TrailerSize {
				return b
			}
			t := len(b) - TrailerSize
			le.PutUint32(b[t+116:], crc(b[off:t+116]))
			return b
		default:
			return b
		}
	}
	return b
}
