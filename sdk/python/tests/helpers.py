"""Shared test plumbing: the servers sdk/run-tests.sh started, and how to own an NFT there."""

from __future__ import annotations

import os
import subprocess
import unittest
import uuid

URL = os.environ.get("PANTHERS_TEST_URL")
DATA_DIR = os.environ.get("PANTHERS_TEST_DATA_DIR")
STRICT_URL = os.environ.get("PANTHERS_TEST_STRICT_URL")
STRICT_DATA_DIR = os.environ.get("PANTHERS_TEST_STRICT_DATA_DIR")
ASSIGN = os.environ.get("PANTHERS_TEST_ASSIGN")
MINT = os.environ.get("PANTHERS_TEST_MINT")

needs_server = unittest.skipUnless(URL and DATA_DIR and ASSIGN, "no server: run these through sdk/run-tests.sh")


def new_nft() -> str:
    """A token id no other test uses."""
    return "py-" + uuid.uuid4().hex[:12]


def assign(nft: str, owner: str, data_dir: str | None = None) -> None:
    """Makes ``owner`` own ``nft`` in the registry of the server with ``data_dir``."""
    subprocess.run([ASSIGN, data_dir or DATA_DIR, nft, owner], check=True, timeout=30, capture_output=True)


def mint_expired_token(wallet: str, nft: str, session_id: str, data_dir: str | None = None) -> str:
    """An access token of this session that the server will answer TOKEN_EXPIRED to."""
    out = subprocess.run(["node", MINT, data_dir or DATA_DIR, wallet, nft, session_id], check=True, timeout=30, capture_output=True, text=True)
    return out.stdout.strip()

REMOTE_URL = os.environ.get("PANTHERS_TEST_REMOTE_URL")
REMOTE_DATA_DIR = os.environ.get("PANTHERS_TEST_REMOTE_DATA_DIR")
needs_remote = unittest.skipUnless(REMOTE_URL and REMOTE_DATA_DIR and ASSIGN, "no remote-agent server: run these through sdk/run-tests.sh")
