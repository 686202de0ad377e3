#!/usr/bin/env python3
"""Quickstart: sign in with a private key, deploy an NFT's agent locally, stream a chat.

    PANTHERS_URL=http://127.0.0.1:3000 PANTHERS_NFT=42 PANTHERS_PRIVATE_KEY=0x... python3 examples/quickstart.py

Without PANTHERS_PRIVATE_KEY a new key is generated (it must own the NFT: on a self-hosted
server, `panthers nft assign 42 <address>`).
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from secret_panthers import PanthersClient, PanthersError, Wallet  # noqa: E402


def main() -> int:
    url = os.environ.get("PANTHERS_URL", "http://127.0.0.1:3000")
    nft = os.environ.get("PANTHERS_NFT", "42")
    key = os.environ.get("PANTHERS_PRIVATE_KEY")
    wallet = Wallet(key) if key else Wallet.generate()
    print(f"wallet {wallet.address}, NFT {nft}")

    client = PanthersClient(url)
    try:
        client.sign_in(wallet, nft)
        client.deploy(nft, provider="local")
        for update in client.watch_deployment(nft, timeout=120):
            print(f"  {update.status} ({update.progress}%)")
            if update.status == "running":
                break
        conversation = None
        for chunk in client.chat_stream(nft, "Hello! Who are you?"):
            if chunk.done:
                conversation = chunk.conversation_id
                print(f"\n[{chunk.tokens_used} tokens, conversation {conversation}]")
            else:
                print(chunk.content, end="", flush=True)
        history = client.chat_history(nft, conversation)
        print(f"{history.total} messages in the conversation")
    except PanthersError as e:
        print(f"error {e.code} (HTTP {e.status}): {e.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
