"""The Python SDK against the real server (started by sdk/run-tests.sh): sign-in with a
generated key, a local deployment watched over WebSocket, chat over SSE and WebSocket, history,
errors, token refresh and expiry, request signing and RATE_LIMITED retries."""

from __future__ import annotations

import unittest

from secret_panthers import ChatChunk, PanthersClient, PanthersError, Session, Wallet

from .helpers import DATA_DIR, STRICT_DATA_DIR, STRICT_URL, URL, assign, mint_expired_token, needs_server, new_nft


def signed_in(nft: str | None = None, **opts) -> tuple[PanthersClient, Wallet, str]:
    nft = nft or new_nft()
    wallet = Wallet.generate()
    assign(nft, wallet.address)
    client = PanthersClient(URL, timeout=15, **opts)
    client.sign_in(wallet, nft)
    return client, wallet, nft


@needs_server
class DeployAndChatTest(unittest.TestCase):
    """One agent deployed for the class; the tests use it in turn."""

    @classmethod
    def setUpClass(cls):
        cls.client, cls.wallet, cls.nft = signed_in()
        result = cls.client.deploy(cls.nft, provider="local", agent={"name": "Py Panther"})
        assert result.status in ("pending", "deploying", "running"), result
        cls.deployment_id = result.deployment_id

    @classmethod
    def tearDownClass(cls):
        try:
            cls.client.stop_deployment(cls.nft)
        except PanthersError:
            pass

    def test_1_sign_in_session(self):
        info = self.client.session()
        self.assertEqual(info.wallet_address.lower(), self.wallet.address.lower())
        self.assertEqual(info.nft_token_id, self.nft)
        self.assertEqual(info.session_id, self.client.session_id)

    def test_2_watch_until_running_over_websocket(self):
        seen = []
        for update in self.client.watch_deployment(self.nft, timeout=30):
            seen.append(update.status)
            self.assertEqual(update.nft_token_id, self.nft)
            if update.status == "running":
                self.assertTrue(update.endpoint_url)
                break
        self.assertEqual(seen[-1], "running", seen)
        dep = self.client.get_deployment(self.nft)
        self.assertEqual((dep.status, dep.provider, dep.deployment_id), ("running", "local", self.deployment_id))
        self.assertEqual(dep.agent.name, "Py Panther")
        self.assertGreater(dep.resources.memory_mb, 0)
        listed = self.client.list_deployments(status="running", limit=10)
        self.assertIn(self.nft, [d.nft_token_id for d in listed.deployments])
        self.assertEqual(listed.pagination.limit, 10)
        info = self.client.agent_info(self.nft)
        self.assertEqual((info.name, info.nft_token_id), ("Py Panther", self.nft))
        self.assertEqual(self.client.agent_health(self.nft).status, "healthy")

    def test_3_chat_sse_ws_history_clear(self):
        self.client.wait_for_status(self.nft, "running", timeout=30)
        chunks = list(self.client.chat_stream(self.nft, "Hello over SSE"))
        self.assertGreater(len(chunks), 1)
        self.assertTrue(all(isinstance(c, ChatChunk) for c in chunks))
        final = chunks[-1]
        self.assertTrue(final.done)
        self.assertTrue(final.response)
        self.assertEqual("".join(c.content for c in chunks[:-1]), final.response)
        conv = final.conversation_id
        self.assertTrue(conv)

        ws_chunks = list(self.client.chat_stream_ws(self.nft, "And now over the socket", conversation_id=conv, timeout=30))
        ws_final = ws_chunks[-1]
        self.assertTrue(ws_final.done)
        self.assertEqual(ws_final.conversation_id, conv)
        self.assertEqual("".join(c.content for c in ws_chunks[:-1]), ws_final.response)

        plain = self.client.chat(self.nft, "And once more, whole", conversation_id=conv)
        self.assertEqual(plain.conversation_id, conv)
        self.assertGreater(plain.tokens_used, 0)

        history = self.client.chat_history(self.nft, conv)
        self.assertEqual(history.total, 6)
        self.assertEqual([m.role for m in history.messages], ["user", "assistant"] * 3)
        self.assertEqual(history.messages[0].content, "Hello over SSE")
        self.assertEqual(history.messages[1].content, final.response)
        self.assertEqual(history.messages[3].content, ws_final.response)
        page = self.client.chat_history(self.nft, conv, limit=2, offset=2)
        self.assertEqual([m.content for m in page.messages], ["And now over the socket", ws_final.response])
        self.assertTrue(page.pagination.has_more)

        cleared = self.client.clear_chat(self.nft, conv)
        self.assertEqual((cleared.conversation_id, cleared.deleted), (conv, 6))
        try:
            after = self.client.chat_history(self.nft, conv)
            self.assertEqual(after.total, 0)
        except PanthersError as e:
            self.assertEqual((e.code, e.status), ("NOT_FOUND", 404))

    def test_4_errors_are_typed(self):
        other_nft = new_nft()
        assign(other_nft, Wallet.generate().address)
        with self.assertRaises(PanthersError) as forbidden:
            self.client.deploy(other_nft, provider="local")
        self.assertEqual((forbidden.exception.code, forbidden.exception.status), ("FORBIDDEN", 403))
        self.assertIn(other_nft, forbidden.exception.message)

        with self.assertRaises(PanthersError) as missing:
            self.client._call("GET", f"/v1/agents/{self.nft}/chat/history")  # no conversation_id
        self.assertEqual((missing.exception.code, missing.exception.status), ("MISSING_FIELD", 400))
        self.assertEqual(missing.exception.details.get("field"), "conversation_id")
        self.assertTrue(missing.exception.request_id)

        with self.assertRaises(PanthersError) as invalid:
            self.client.deploy(self.nft, provider="moon")
        self.assertEqual((invalid.exception.code, invalid.exception.status), ("INVALID_FIELD", 400))

        with self.assertRaises(PanthersError) as not_found:
            list(self.client.chat_stream(new_nft(), "anyone there?"))
        self.assertIn(not_found.exception.status, (403, 404))

        anonymous = PanthersClient(URL)
        with self.assertRaises(PanthersError) as unauth:
            anonymous.list_deployments()
        self.assertEqual((unauth.exception.code, unauth.exception.status), ("UNAUTHORIZED", 401))

    def test_5_stop_and_watch_until_stopped(self):
        # Runs last (names are sorted): the agent is stopped afterwards.
        stop = self.client.stop_deployment(self.nft)
        self.assertEqual(stop.deployment_id, self.deployment_id)
        statuses = [u.status for u in self.client.watch_deployment(self.nft, timeout=30)]
        self.assertEqual(statuses[-1], "stopped", statuses)


@needs_server
class TokensTest(unittest.TestCase):
    def test_refresh_rotates_and_spends_the_old_token(self):
        client, _, _ = signed_in()
        old_refresh = client.refresh_token
        out = client.refresh()
        self.assertNotEqual(out.refresh_token, old_refresh)
        self.assertEqual(client.refresh_token, out.refresh_token)
        # (the access token may be byte-identical within the same second: same claims, same iat)
        self.assertTrue(client.access_token)
        self.assertTrue(client.session().session_id)
        replay = PanthersClient(URL, session=Session(access_token="", refresh_token=old_refresh, expires_in=0, session_id=""))
        with self.assertRaises(PanthersError) as spent:
            replay.refresh()
        self.assertEqual((spent.exception.code, spent.exception.status), ("UNAUTHORIZED", 401))

    def test_refreshes_before_expiry(self):
        # A skew longer than the token's life: every call finds the token "about to expire".
        client, _, _ = signed_in(refresh_skew=7200)
        first_refresh = client.refresh_token
        client.session()
        self.assertNotEqual(client.refresh_token, first_refresh)  # it refreshed (rotation)
        second_refresh = client.refresh_token
        client.list_deployments()
        self.assertNotEqual(client.refresh_token, second_refresh)

    def test_refreshes_on_token_expired_and_retries(self):
        client, wallet, nft = signed_in()
        info = client.session()
        expired = mint_expired_token(info.wallet_address, nft, client.session_id)
        raw = PanthersClient(URL)
        raw.set_access_token(expired)
        with self.assertRaises(PanthersError) as e:
            raw.session()
        self.assertEqual((e.exception.code, e.exception.status), ("TOKEN_EXPIRED", 401))

        client.set_access_token(expired)  # the client believes it is fresh for an hour
        again = client.session()
        self.assertEqual(again.session_id, info.session_id)
        self.assertNotEqual(client.access_token, expired)

    def test_signs_in_again_when_refresh_is_gone(self):
        client, _, nft = signed_in()
        sid = client.session_id
        client.logout()
        with self.assertRaises(PanthersError):
            client.session()  # logged out: no tokens, no wallet
        client2, wallet, nft2 = signed_in()
        first_sid = client2.session_id
        # Spend the refresh token behind the client's back; it must sign in again with its key.
        PanthersClient(URL, session=Session(access_token="", refresh_token=client2.refresh_token, expires_in=0, session_id="")).refresh()
        client2.set_access_token(mint_expired_token(wallet.address, nft2, first_sid))
        self.assertEqual(client2.session().nft_token_id, nft2)
        self.assertNotEqual(client2.session_id, first_sid)
        self.assertNotEqual(sid, first_sid)


@unittest.skipUnless(STRICT_URL and STRICT_DATA_DIR, "no strict server: run these through sdk/run-tests.sh")
class StrictServerTest(unittest.TestCase):
    """PANTHERS_REQUIRE_SIGNED_REQUESTS=true and 4 'other' requests a minute per client."""

    def test_request_signing(self):
        nft, wallet = new_nft(), Wallet.generate()
        assign(nft, wallet.address, STRICT_DATA_DIR)
        client = PanthersClient(STRICT_URL, timeout=15)
        session = client.sign_in(wallet, nft)
        if not session.signing_key:
            with self.assertRaises(PanthersError) as e:
                client.deploy(nft, provider="local")
            self.assertEqual((e.exception.code, e.exception.status), ("INVALID_SIGNATURE", 401))
            self.skipTest("the server requires signed requests but /auth/verify returned no signing_key")
        deployed = client.deploy(nft, provider="local")
        self.assertTrue(deployed.deployment_id)
        # Two identical signed requests in the same second: the client keeps their signatures
        # distinct, so the server's replay check accepts both.
        first = client.stop_deployment(nft)
        second = client.stop_deployment(nft)
        self.assertEqual(first.deployment_id, second.deployment_id)
        unsigned = PanthersClient(STRICT_URL, session=Session(client.access_token, client.refresh_token, 3600, client.session_id))
        with self.assertRaises(PanthersError) as e:
            unsigned.deploy(nft, provider="local")
        self.assertEqual((e.exception.code, e.exception.status), ("INVALID_SIGNATURE", 401))

    def test_rate_limited_retries_wait_retry_after(self):
        waits: list[float] = []
        client = PanthersClient(STRICT_URL, max_retries=2, sleep=waits.append)
        with self.assertRaises(PanthersError) as e:
            for _ in range(10):
                client.health()
        err = e.exception
        self.assertEqual((err.code, err.status), ("RATE_LIMITED", 429))
        self.assertIsNotNone(err.retry_after)
        self.assertTrue(0 < err.retry_after <= 60)
        self.assertEqual(len(waits), 2, waits)  # two retries, each after Retry-After
        self.assertTrue(all(0 < w <= 60 for w in waits), waits)


if __name__ == "__main__":
    unittest.main()
