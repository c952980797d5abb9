#!/usr/bin/env python3
"""Check tapis transparency-log proofs without tapis and without Rust.

Python 3.11+, standard library only (Ed25519 is verified in pure Python,
RFC 8032 section 5.1.7, cofactorless, canonical encodings only).

What it checks (the algorithms are short and below, so they can be read):
  * a checkpoint: a C2SP signed note (c2sp.org/signed-note,
    c2sp.org/tlog-checkpoint) signed by the log's verifier key
    (`origin+keyid+base64(0x01 || key)`, from GET /api/v1/log/key), and
    optionally witnesses' cosignatures (c2sp.org/tlog-cosignature, type 0x04);
  * an inclusion proof (RFC 9162 2.1.3.2) and a consistency proof
    (RFC 9162 2.1.4.2), RFC 6962 hashing: leaf SHA-256(0x00||d), node
    SHA-256(0x01||l||r);
  * a tapis event leaf: "tapis-audit-leaf/v1\\0" || u64be(seq) ||
    SHA-256("tapis-audit-commit/v1\\0" || salt || event_hash).

Commands:
  tlog-verify.py vectors DIR
      run the RFC 6962 vectors in DIR (crates/tapis-core/testdata/tlog)
  tlog-verify.py checkpoint --vkey VKEY [--witness VKEY ...] FILE
  tlog-verify.py consistency --vkey VKEY --old FILE --new FILE --proof JSON
      JSON: GET /api/v1/log/proof/consistency?from=OLD&to=NEW
  tlog-verify.py receipt --vkey VKEY --receipt JSON --proof JSON
      the receipt or decision as tapis returned it (its payload's `chain`
      and `log`), and GET /api/v1/log/proof/leaf/{leaf_index}: shows that
      the event the receipt anchors is leaf `leaf_index` of a checkpoint
      signed by the log.
Exit status: 0 verified, 1 not verified (the reason is printed), 2 usage.
"""

import argparse
import base64
import hashlib
import json
import sys
from pathlib import Path


class Invalid(Exception):
    pass


# ---------------------------------------------------------------- Ed25519
P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
I = pow(2, (P - 1) // 4, P)


def _add(a, b):
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    A = (y1 - x1) * (y2 - x2) % P
    B = (y1 + x1) * (y2 + x2) % P
    C = 2 * t1 * t2 * D % P
    Dd = 2 * z1 * z2 % P
    E, F, G, H = B - A, Dd - C, Dd + C, B + A
    return (E * F % P, G * H % P, F * G % P, E * H % P)


def _mul(s, pt):
    q = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            q = _add(q, pt)
        pt = _add(pt, pt)
        s >>= 1
    return q


def _equal(a, b):
    return (a[0] * b[2] - b[0] * a[2]) % P == 0 and (a[1] * b[2] - b[1] * a[2]) % P == 0


def _decompress(s):
    if len(s) != 32:
        raise Invalid("an Ed25519 point is 32 bytes")
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= P:
        raise Invalid("non-canonical point")
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    if x2 == 0:
        if sign:
            raise Invalid("invalid point")
        x = 0
    else:
        x = pow(x2, (P + 3) // 8, P)
        if (x * x - x2) % P != 0:
            x = x * I % P
        if (x * x - x2) % P != 0:
            raise Invalid("invalid point")
        if (x & 1) != sign:
            x = P - x
    return (x, y, 1, x * y % P)


GY = 4 * pow(5, P - 2, P) % P
G = _decompress(GY.to_bytes(32, "little"))


def ed25519_verify(public, msg, sig):
    if len(sig) != 64:
        return False
    try:
        A = _decompress(public)
        R = _decompress(sig[:32])
    except Invalid:
        return False
    s = int.from_bytes(sig[32:], "little")
    if s >= L:
        return False
    # small-order keys verify forged signatures: refuse them
    if _equal(_mul(8, A), (0, 1, 1, 0)):
        return False
    h = int.from_bytes(hashlib.sha512(sig[:32] + public + msg).digest(), "little") % L
    return _equal(_mul(s, G), _add(R, _mul(h, A)))


# ---------------------------------------------------------------- Merkle
def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(index, size, leaf, proof, root):
    if index >= size:
        raise Invalid(f"leaf index {index} is not below tree size {size}")
    if len(leaf) != 32 or len(root) != 32 or any(len(p) != 32 for p in proof):
        raise Invalid("hashes are 32 bytes")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise Invalid("the inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Invalid("the inclusion proof is too short")
    if r != root:
        raise Invalid("the inclusion proof leads to another root")


def verify_consistency(old, new, proof, old_root, new_root):
    if old > new:
        raise Invalid("the old size is larger than the new size")
    if any(len(p) != 32 for p in proof):
        raise Invalid("hashes are 32 bytes")
    if old == 0:
        raise Invalid("a consistency proof from the empty tree is meaningless")
    if old == new:
        if proof:
            raise Invalid("equal sizes need an empty proof")
        if old_root != new_root:
            raise Invalid("two roots for one tree size")
        return
    path = ([old_root] if old & (old - 1) == 0 else []) + list(proof)
    if not path:
        raise Invalid("the consistency proof is empty")
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise Invalid("the consistency proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Invalid("the consistency proof is too short")
    if fr != old_root:
        raise Invalid("the proof does not lead to the old root: the past was rewritten")
    if sr != new_root:
        raise Invalid("the proof does not lead to the new root")


def event_leaf(seq, salt, event_hash):
    commit = hashlib.sha256(b"tapis-audit-commit/v1\x00" + salt + event_hash).digest()
    return leaf_hash(b"tapis-audit-leaf/v1\x00" + seq.to_bytes(8, "big") + commit)


# ---------------------------------------------------------------- notes
def key_id(name, sig_type, public):
    return hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public).digest()[:4]


def parse_vkey(text):
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise Invalid("a verifier key is name+keyid+base64")
    name, kid, b64 = parts
    raw = base64.b64decode(b64, validate=True)
    if len(raw) != 33 or raw[0] not in (1, 4):
        raise Invalid("only Ed25519 (01) and cosignature (04) keys")
    if key_id(name, raw[0], raw[1:]).hex() != kid.lower():
        raise Invalid("the key id does not match")
    return name, raw[0], raw[1:]


def parse_note(text):
    cut = text.rfind("\n\n")
    if cut < 0 or not text.endswith("\n"):
        raise Invalid("not a signed note")
    body, sigs = text[: cut + 1], []
    for line in text[cut + 2 : -1].split("\n"):
        if not line.startswith("\u2014 "):
            raise Invalid("a signature line starts with an em dash")
        name, b64 = line[2:].split(" ", 1)
        raw = base64.b64decode(b64, validate=True)
        sigs.append((name, raw[:4], raw[4:]))
    return body, sigs


def verify_note(text, vkey):
    """Verify vkey's signature on the note; returns (body, cosignature time)."""
    name, sig_type, public = parse_vkey(vkey)
    body, sigs = parse_note(text)
    kid = key_id(name, sig_type, public)
    for n, k, sig in sigs:
        if n == name and k == kid:
            if sig_type == 1:
                if ed25519_verify(public, body.encode(), sig):
                    return body, None
            elif len(sig) == 72:
                t = int.from_bytes(sig[:8], "big")
                msg = f"cosignature/v1\ntime {t}\n".encode() + body.encode()
                if ed25519_verify(public, msg, sig[8:]):
                    return body, t
            raise Invalid(f"the signature by {name} does not verify")
    raise Invalid(f"no signature by {name}")


def parse_checkpoint(body):
    lines = body.split("\n")
    if len(lines) != 4 or lines[3] != "":
        raise Invalid("a checkpoint is origin, size, root")
    root = base64.b64decode(lines[2], validate=True)
    if len(root) != 32:
        raise Invalid("the root is not a SHA-256")
    return lines[0], int(lines[1]), root


def b64list(v):
    return [base64.b64decode(h, validate=True) for h in (v or [])]


# ---------------------------------------------------------------- commands
def cmd_vectors(d):
    d = Path(d)
    n = 0
    tree = json.loads((d / "rfc6962-tree.json").read_text())
    leaves = [leaf_hash(bytes.fromhex(x)) for x in tree["leaves_hex"]]
    want = tree["roots_hex_by_size"]
    for size in range(1, len(leaves) + 1):
        # the root of the first `size` leaves, by the RFC's definition
        def mth(hs):
            if len(hs) == 1:
                return hs[0]
            k = 1 << ((len(hs) - 1).bit_length() - 1)
            return node_hash(mth(hs[:k]), mth(hs[k:]))

        if mth(leaves[:size]).hex() != want[size]:
            raise Invalid(f"root of size {size}")
        n += 1
    for kind in ("inclusion", "consistency"):
        for c in json.loads((d / f"{kind}.json").read_text())["cases"]:
            try:
                if kind == "inclusion":
                    verify_inclusion(c["leafIdx"], c["treeSize"], base64.b64decode(c["leafHash"]),
                                     b64list(c["proof"]), base64.b64decode(c["root"]))
                else:
                    verify_consistency(c["size1"], c["size2"], b64list(c["proof"]),
                                       base64.b64decode(c["root1"]), base64.b64decode(c["root2"]))
                ok = True
            except Invalid:
                ok = False
            if ok == c["wantErr"]:
                raise Invalid(f"{c['file']}: {c['desc']}")
            n += 1
    return f"{n} vectors agree"


def cmd_checkpoint(a):
    text = Path(a.file).read_text()
    body, _ = verify_note(text, a.vkey)
    origin, size, root = parse_checkpoint(body)
    for w in a.witness or []:
        verify_note(text, w)
    return f"checkpoint of {origin} signed: size {size}, root {base64.b64encode(root).decode()}"


def cmd_consistency(a):
    _, o_size, o_root = parse_checkpoint(verify_note(Path(a.old).read_text(), a.vkey)[0])
    _, n_size, n_root = parse_checkpoint(verify_note(Path(a.new).read_text(), a.vkey)[0])
    proof = json.loads(Path(a.proof).read_text())
    if (proof.get("from"), proof.get("to")) not in ((o_size, n_size), (None, None)):
        raise Invalid("the proof is for other sizes")
    verify_consistency(o_size, n_size, b64list(proof["proof"]), o_root, n_root)
    return f"the tree of {n_size} leaves extends the one of {o_size}"


def cmd_receipt(a):
    receipt = json.loads(Path(a.receipt).read_text())
    payload = receipt.get("payload", receipt)
    chain, log = payload["chain"], payload["log"]
    if chain["seq"] != log["seq"]:
        raise Invalid("the receipt's chain head and log entry name different events")
    leaf = event_leaf(chain["seq"], bytes.fromhex(log["salt"]), bytes.fromhex(chain["hash"]))
    proof = json.loads(Path(a.proof).read_text())
    if proof["leaf_index"] != log["leaf_index"] or log["leaf_index"] != chain["seq"] - 1:
        raise Invalid("the proof is for another leaf")
    if base64.b64decode(proof["leaf_hash"]) != leaf:
        raise Invalid("the leaf the receipt gives is not the leaf the log holds")
    body, _ = verify_note(proof["checkpoint"], a.vkey)
    origin, size, root = parse_checkpoint(body)
    if size != proof["tree_size"]:
        raise Invalid("the proof is for another tree size than the checkpoint")
    verify_inclusion(proof["leaf_index"], size, leaf, b64list(proof["proof"]), root)
    return f"event {chain['seq']} is leaf {proof['leaf_index']} of {origin} at size {size}, signed by the log"


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("vectors")
    v.add_argument("dir")
    c = sub.add_parser("checkpoint")
    c.add_argument("--vkey", required=True)
    c.add_argument("--witness", action="append")
    c.add_argument("file")
    k = sub.add_parser("consistency")
    for f in ("--vkey", "--old", "--new", "--proof"):
        k.add_argument(f, required=True)
    r = sub.add_parser("receipt")
    for f in ("--vkey", "--receipt", "--proof"):
        r.add_argument(f, required=True)
    a = ap.parse_args(argv)
    try:
        if a.cmd == "vectors":
            msg = cmd_vectors(a.dir)
        elif a.cmd == "checkpoint":
            msg = cmd_checkpoint(a)
        elif a.cmd == "consistency":
            msg = cmd_consistency(a)
        else:
            msg = cmd_receipt(a)
    except (Invalid, KeyError, ValueError, TypeError) as e:
        print(f"NOT VERIFIED: {e}")
        return 1
    print(f"verified: {msg}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
