"""secp256k1 ECDSA signing with recovery ids, deterministic nonces (RFC 6979) and low-s.

Just enough for wallet sign-in: derive a public key and make the 65-byte r||s||v signatures
that Ethereum wallets make. The same key and digest give the same signature as ethers/noble.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Optional, Tuple

P = 2**256 - 2**32 - 977
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
G = (
    0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
    0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8,
)

Point = Optional[Tuple[int, int]]  # None is the point at infinity


def _add(p: Point, q: Point) -> Point:
    if p is None:
        return q
    if q is None:
        return p
    if p[0] == q[0]:
        if (p[1] + q[1]) % P == 0:
            return None
        lam = 3 * p[0] * p[0] * pow(2 * p[1], -1, P) % P
    else:
        lam = (q[1] - p[1]) * pow(q[0] - p[0], -1, P) % P
    x = (lam * lam - p[0] - q[0]) % P
    return x, (lam * (p[0] - x) - p[1]) % P


def _mul(k: int, p: Point = G) -> Point:
    acc: Point = None
    while k:
        if k & 1:
            acc = _add(acc, p)
        p = _add(p, p)
        k >>= 1
    return acc


def public_key(secret: int) -> Tuple[int, int]:
    """The public point of a secret scalar (1 <= secret < N)."""
    if not 1 <= secret < N:
        raise ValueError("private key out of range")
    pt = _mul(secret)
    assert pt is not None
    return pt


def _rfc6979_nonces(secret: int, digest: bytes):
    """Candidate nonces k per RFC 6979 (HMAC-SHA256), in order."""
    x = secret.to_bytes(32, "big")
    h = (int.from_bytes(digest, "big") % N).to_bytes(32, "big")
    v = b"\x01" * 32
    k = b"\x00" * 32
    k = hmac.new(k, v + b"\x00" + x + h, hashlib.sha256).digest()
    v = hmac.new(k, v, hashlib.sha256).digest()
    k = hmac.new(k, v + b"\x01" + x + h, hashlib.sha256).digest()
    v = hmac.new(k, v, hashlib.sha256).digest()
    while True:
        v = hmac.new(k, v, hashlib.sha256).digest()
        cand = int.from_bytes(v, "big")
        if 1 <= cand < N:
            yield cand
        k = hmac.new(k, v + b"\x00", hashlib.sha256).digest()
        v = hmac.new(k, v, hashlib.sha256).digest()


def sign_recoverable(secret: int, digest: bytes) -> Tuple[int, int, int]:
    """(r, s, recovery_id) for a 32-byte digest; s is normalised to the lower half (EIP-2)."""
    z = int.from_bytes(digest, "big") % N
    for k in _rfc6979_nonces(secret, digest):
        rp = _mul(k)
        assert rp is not None
        r = rp[0] % N
        if r == 0:
            continue
        s = pow(k, -1, N) * (z + r * secret) % N
        if s == 0:
            continue
        rec = (rp[1] & 1) | (2 if rp[0] >= N else 0)
        if s > N // 2:
            s = N - s
            rec ^= 1
        return r, s, rec
    raise AssertionError("unreachable")
