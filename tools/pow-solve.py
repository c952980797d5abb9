#!/usr/bin/env python3
"""Solve a tapis proof-of-work challenge (standard library only).

Usage: pow-solve.py CHALLENGE   -> prints the decimal counter

The challenge is the `challenge` field of GET /api/v1/public/challenge:
`issued.difficulty.nonce.mac`. Find the first counter such that
SHA-256(challenge ":" counter) starts with `difficulty` zero bits, then send
the challenge in `Tapis-Challenge` and the counter in `Tapis-Proof` with
POST /api/v1/public/flags. About 2^difficulty hashes on average.
"""
import hashlib
import sys


def leading_zero_bits(digest: bytes) -> int:
    n = 0
    for b in digest:
        if b == 0:
            n += 8
            continue
        return n + (8 - b.bit_length())
    return n


def solve(challenge: str) -> int:
    want = int(challenge.split(".")[1])
    prefix = hashlib.sha256((challenge + ":").encode())
    counter = 0
    while True:
        h = prefix.copy()
        h.update(str(counter).encode())
        if leading_zero_bits(h.digest()) >= want:
            return counter
        counter += 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: pow-solve.py CHALLENGE")
    print(solve(sys.argv[1].strip()))
