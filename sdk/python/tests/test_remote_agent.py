"""The Python SDK with a remote agent (a real `panthers agent` process the test orchestrator's
`akash` provider starts): the client exchanges its session token for an agent-scoped one by
itself, sends only that to the agent's endpoint, and renews it when it expires."""

from __future__ import annotations

import time
import unittest

from secret_panthers import PanthersClient, PanthersError, Wallet

from .helpers import REMOTE_DATA_DIR, REMOTE_URL, assign, needs_remote, new_nft


@needs_remote
class RemoteAgentTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.nft = new_nft()
        cls.wallet = Wallet.generate()
        assign(cls.nft, cls.wallet.address, REMOTE_DATA_DIR)
        cls.client = PanthersClient(REMOTE_URL, timeout=15)
        cls.client.sign_in(cls.wallet, cls.nft)
        cls.client.deploy(cls.nft, provider="akash")
        cls.client.wait_for_status(cls.nft, "running", timeout=30)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.client.stop_deployment(cls.nft)
        except PanthersError:
            pass

    def test_exchange_is_transparent(self):
        endpoint = self.client.get_deployment(self.nft).endpoint_url
        self.assertTrue(self.client.is_remote_agent(self.nft))
        t = self.client.agent_token(self.nft)
        self.assertEqual((t.token_type, t.audience, t.endpoint_url), ("Bearer", f"agent:{self.nft}", endpoint))
        self.assertLessEqual(t.expires_in, 900)

        first = self.client.chat(self.nft, "hello from python")
        self.assertIn("hello from python", first.response)
        chunks = list(self.client.chat_stream(self.nft, "streamed", first.conversation_id))
        self.assertTrue(chunks[-1].done)
        self.assertEqual("".join(c.content for c in chunks[:-1]), chunks[-1].response)
        ws = list(self.client.chat_stream_ws(self.nft, "over ws", first.conversation_id))
        self.assertTrue(ws[-1].done)
        self.assertEqual(self.client.chat_history(self.nft, first.conversation_id).total, 6)
        self.assertEqual(self.client.agent_info(self.nft).nft_token_id, self.nft)
        # Agent tokens live 3 s on this server: after that the client exchanges again by itself.
        time.sleep(3.2)
        self.assertEqual(self.client.clear_chat(self.nft, first.conversation_id).deleted, 6)

    def test_agent_refuses_the_session_token(self):
        endpoint = self.client.get_deployment(self.nft).endpoint_url
        direct = PanthersClient(endpoint, timeout=15)
        direct.set_access_token(self.client.access_token or "")
        with self.assertRaises(PanthersError) as ctx:
            direct._call("POST", "/v1/chat", {"message": "with the session token"})
        self.assertEqual(ctx.exception.code, "UNAUTHORIZED")
        self.assertEqual(ctx.exception.details.get("reason"), "wrong_audience")


if __name__ == "__main__":
    unittest.main()
