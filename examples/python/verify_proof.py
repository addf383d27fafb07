#!/usr/bin/env python3
"""Verify one Vellum audit record with nothing but the log's public key.

Fetches GET /v1/audit/{seq} from a running server (or reads a saved
response) and checks, with the Python standard library alone:

  1. the checkpoint's signed note: an Ed25519 signature (RFC 8032) by the
     key in signing.pub (C2SP signed-note), over a body (C2SP
     tlog-checkpoint) that says the tree size and root the response says;
  2. the inclusion proof: SHA-256(0x00 || leaf_input) is the leaf, and the
     audit path leads from it, at leaf_index, to the signed root (RFC 6962
     / RFC 9162 section 2.1.3.2);
  3. that the proved bytes are this record: leaf_input is the record's
     canonical encoding (version byte 1, then the seq as uint64
     little-endian, ...; segment/FORMAT.md) followed by its 32-byte MAC,
     which must be the record's "mac", and leaf_index must be seq - 1.

Usage:
  verify_proof.py --server http://127.0.0.1:8080 --token $TOKEN --pubkey signing.pub --seq 7
  verify_proof.py --response record-7.json --pubkey signing.pub

Exit status: 0 verified, 1 did not verify, 2 usage or I/O error.
Nothing here trusts the server: only signing.pub.
"""

import argparse
import base64
import hashlib
import json
import os
import sys
import urllib.error
import urllib.request

# ---------------------------------------------------------------------------
# Ed25519 signature verification, RFC 8032 section 5.1.7 (after the
# reference code of its section 6). Points in extended coordinates.

P = 2**255 - 19
Q = 2**252 + 27742317777372353535851937790883648493  # the group order L
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _add(a, b):
    A = (a[1] - a[0]) * (b[1] - b[0]) % P
    B = (a[1] + a[0]) * (b[1] + b[0]) % P
    C = 2 * a[3] * b[3] * D % P
    Dd = 2 * a[2] * b[2] % P
    E, F, G, H = B - A, Dd - C, Dd + C, B + A
    return (E * F % P, G * H % P, F * G % P, E * H % P)


def _mul(s, pt):
    acc = (0, 1, 1, 0)  # the neutral element
    while s > 0:
        if s & 1:
            acc = _add(acc, pt)
        pt = _add(pt, pt)
        s >>= 1
    return acc


def _equal(a, b):
    return (a[0] * b[2] - b[0] * a[2]) % P == 0 and (a[1] * b[2] - b[1] * a[2]) % P == 0


def _recover_x(y, sign):
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if (x & 1) != sign:
        x = P - x
    return x


def _decompress(s):
    if len(s) != 32:
        return None
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % P)


_GY = 4 * pow(5, P - 2, P) % P
_GX = _recover_x(_GY, 0)
BASE = (_GX, _GY, 1, _GX * _GY % P)


def ed25519_verify(public, msg, sig):
    """RFC 8032 Ed25519 verification: True when sig is public's signature of msg."""
    if len(public) != 32 or len(sig) != 64:
        return False
    A = _decompress(public)
    R = _decompress(sig[:32])
    if A is None or R is None:
        return False
    s = int.from_bytes(sig[32:], "little")
    if s >= Q:
        return False
    h = int.from_bytes(hashlib.sha512(sig[:32] + public + msg).digest(), "little") % Q
    return _equal(_mul(s, BASE), _add(R, _mul(h, A)))


# ---------------------------------------------------------------------------
# RFC 6962 Merkle tree hashing and inclusion proof verification.


def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion(index, size, leaf, path):
    """RFC 9162 section 2.1.3.2: the root the audit path leads to, or None."""
    if index >= size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


# ---------------------------------------------------------------------------
# C2SP signed notes, checkpoints and verifier keys.


class Failed(Exception):
    """The record, proof or checkpoint does not verify."""


def parse_vkey(text):
    """A note verifier key: <name>+<key hash, 8 hex>+<base64(0x01 || Ed25519 key)>."""
    # The name and the hash hold no "+"; the base64 key may.
    name, hash_hex, key_b64 = text.strip().split("+", 2)
    key = base64.b64decode(key_b64, validate=True)
    if len(key) != 33 or key[0] != 1:
        raise ValueError("not an Ed25519 note verifier key")
    want = hashlib.sha256(name.encode() + b"\n" + key).digest()[:4]
    if want.hex() != hash_hex.lower():
        raise ValueError("the key hash does not match the key")
    return name, want, key[1:]


def open_note(note, key_name, key_hash, public):
    """Check the note's signature by the key; return the signed text."""
    i = note.rfind("\n\n")
    if i < 0 or not note.endswith("\n"):
        raise Failed("the checkpoint note has no signature block")
    text, sigs = note[: i + 1], note[i + 2 :]
    for line in sigs.splitlines():
        if not line.startswith("\u2014 "):
            raise Failed("malformed signature line %r" % line)
        name, _, b64 = line[2:].rpartition(" ")
        if name != key_name:
            continue
        raw = base64.b64decode(b64)
        if raw[:4] != key_hash:
            continue
        if len(raw) != 68 or not ed25519_verify(public, text.encode(), raw[4:]):
            raise Failed("the checkpoint's signature by %s does not verify" % key_name)
        return text
    raise Failed("the checkpoint is not signed by the key %s+%s" % (key_name, key_hash.hex()))


def parse_checkpoint(text):
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise Failed("the checkpoint body is malformed")
    origin, size, root = lines[0], int(lines[1]), base64.b64decode(lines[2], validate=True)
    if len(root) != 32 or str(size) != lines[1]:
        raise Failed("the checkpoint body is malformed")
    return origin, size, root


# ---------------------------------------------------------------------------


def verify_response(resp, vkey):
    """Verify a GET /v1/audit/{seq} response against a parsed verifier key;
    return a line saying what holds, or raise Failed."""
    key_name, key_hash, public = vkey
    proof, cp = resp.get("inclusion_proof"), resp.get("checkpoint")
    if not cp:
        raise Failed("the response carries no signed checkpoint")
    if not proof:
        raise Failed("record %s is newer than the latest checkpoint (size %s): no proof yet; "
                     "ask for one with POST /v1/audit/checkpoints (vellum checkpoint) and fetch again"
                     % (resp.get("seq"), cp.get("tree_size")))
    # 1. The signed checkpoint says what the response says.
    text = open_note(cp["note"], key_name, key_hash, public)
    origin, size, root = parse_checkpoint(text)
    if origin != cp["origin"] or size != cp["tree_size"] or base64.b64decode(cp["root_hash"]) != root:
        raise Failed("the checkpoint's fields differ from its signed note")
    # 2. The leaf input leads to the signed root.
    leaf_input = base64.b64decode(proof["leaf_input"], validate=True)
    path = [base64.b64decode(h, validate=True) for h in proof["hashes"]]
    if proof["tree_size"] != size:
        raise Failed("the proof is for a tree of %d records, the checkpoint signs %d" % (proof["tree_size"], size))
    got = root_from_inclusion(proof["leaf_index"], size, leaf_hash(leaf_input), path)
    if got != root:
        raise Failed("the inclusion proof does not lead to the signed root (record, MAC or proof altered)")
    # 3. The proved bytes are this record.
    seq = resp["seq"]
    if len(leaf_input) < 1 + 8 + 32 or leaf_input[0] != 1:
        raise Failed("leaf_input is not a version 1 canonical encoding and a MAC")
    if int.from_bytes(leaf_input[1:9], "little") != seq or proof["leaf_index"] != seq - 1:
        raise Failed("the proof is for another record than seq %d" % seq)
    if leaf_input[-32:] != bytes.fromhex(resp["mac"]):
        raise Failed("the record's mac is not the MAC the proof commits to")
    return "OK: seq %d is leaf %d of the tree of %d records signed by %s (key %s+%s)" % (
        seq, seq - 1, size, origin, key_name, key_hash.hex())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pubkey", required=True, help="the log's public key file (signing.pub)")
    ap.add_argument("--server", default=os.environ.get("VELLUM_SERVER", "http://127.0.0.1:8080"),
                    help="server base URL (default $VELLUM_SERVER or http://127.0.0.1:8080)")
    ap.add_argument("--token", default=os.environ.get("VELLUM_TOKEN", ""),
                    help="bearer token of an admin or auditor (default $VELLUM_TOKEN)")
    ap.add_argument("--seq", type=int, help="the record to fetch and verify")
    ap.add_argument("--response", help="verify this saved GET /v1/audit/{seq} response instead of fetching")
    ap.add_argument("--save", help="also save the fetched response to this file")
    a = ap.parse_args(argv)
    try:
        with open(a.pubkey) as f:
            vkey = parse_vkey(f.read())
        if a.response:
            with open(a.response) as f:
                resp = json.load(f)
        else:
            if a.seq is None or a.seq < 1 or not a.token:
                ap.error("give --seq (from 1) and --token (or $VELLUM_TOKEN), or --response FILE")
            req = urllib.request.Request("%s/v1/audit/%d" % (a.server.rstrip("/"), a.seq),
                                         headers={"Authorization": "Bearer " + a.token})
            with urllib.request.urlopen(req, timeout=30) as r:
                body = r.read()
            resp = json.loads(body)
            if a.save:
                with open(a.save, "wb") as f:
                    f.write(body)
    except urllib.error.HTTPError as e:
        print("error: GET /v1/audit/%s: %s %s" % (a.seq, e.code, e.read().decode(errors="replace").strip()), file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    try:
        print(verify_response(resp, vkey))
        return 0
    except (Failed, KeyError, ValueError, TypeError) as e:
        print("FAILED: %s" % (e if isinstance(e, Failed) else "malformed response: %r" % e))
        return 1


if __name__ == "__main__":
    sys.exit(main())
