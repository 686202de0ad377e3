"""An EVM wallet for sign-in: a secp256k1 private key, its address, EIP-191 personal_sign."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from ._keccak import keccak256
from ._secp256k1 import N, public_key, sign_recoverable

__all__ = ["Wallet", "keccak256", "to_checksum_address"]


def to_checksum_address(address: str) -> str:
    """EIP-55 mixed-case form of a 0x address."""
    hexaddr = address.lower().removeprefix("0x")
    if len(hexaddr) != 40:
        raise ValueError(f"not a 20-byte address: {address!r}")
    digest = keccak256(hexaddr.encode("ascii")).hex()
    return "0x" + "".join(c.upper() if int(digest[i], 16) >= 8 else c for i, c in enumerate(hexaddr))


@dataclass(frozen=True)
class Wallet:
    """A private key and the EIP-55 address it controls. Never logged or printed by the SDK."""

    private_key: str = field(repr=False)
    address: str = ""

    def __post_init__(self) -> None:
        key = self.private_key.lower().removeprefix("0x")
        if len(key) != 64:
            raise ValueError("private key must be 32 bytes of hex")
        secret = int(key, 16)
        x, y = public_key(secret)
        addr = keccak256(x.to_bytes(32, "big") + y.to_bytes(32, "big"))[-20:]
        object.__setattr__(self, "private_key", "0x" + key)
        object.__setattr__(self, "address", to_checksum_address(addr.hex()))

    @classmethod
    def generate(cls) -> "Wallet":
        """A new random wallet (from the OS's secure random source)."""
        return cls("0x" + (secrets.randbelow(N - 1) + 1).to_bytes(32, "big").hex())

    def sign_message(self, message: str | bytes) -> str:
        """EIP-191 personal_sign, as MetaMask does it: 0x + r || s || v (v is 27 or 28)."""
        data = message.encode("utf-8") if isinstance(message, str) else message
        digest = keccak256(b"\x19Ethereum Signed Message:\n" + str(len(data)).encode("ascii") + data)
        r, s, rec = sign_recoverable(int(self.private_key, 16), digest)
        return "0x" + r.to_bytes(32, "big").hex() + s.to_bytes(32, "big").hex() + bytes([27 + rec]).hex()
