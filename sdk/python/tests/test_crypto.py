"""Keccak, secp256k1 and request signing, pinned to vectors produced by ethers and the server's
own signRequest (independent implementations), so a drift in either shows here first."""

import unittest

from secret_panthers import Wallet, keccak256, sign_request, to_checksum_address


class KeccakTest(unittest.TestCase):
    def test_known_digests(self):
        self.assertEqual(keccak256(b"").hex(), "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
        # 200 bytes: crosses the 136-byte rate, so two permutations
        self.assertEqual(keccak256(b"a" * 200).hex(), "96ea54061def936c4be90b518992fdc6f12f535068a256229aca54267b4d084d")


class WalletTest(unittest.TestCase):
    def test_address_and_personal_sign_match_ethers(self):
        w = Wallet("0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
        self.assertEqual(w.address, "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23")
        self.assertEqual(
            w.sign_message("Sign in to Secret Panthers\nnonce: abc123\n"),
            "0x3f199929e235fc4a3345ef8992c39589d8a56c701f71ad1e60e23649c4c1de32"
            "560c97f1c55ec3e84472cec997c27a16b3322a9eaf4c7de40beeea25f52c28dd1b",
        )
        one = Wallet("0x" + "0" * 63 + "1")
        self.assertEqual(one.address, "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf")
        self.assertEqual(
            one.sign_message("hello"),
            "0xe5ddc160e4c8f92de507c7db9b982d4f9b7197bfa421864aeadc586bc96b09ae"
            "0ba0c5b131650ae4994cff1839341d00f3735ef5abc62ac8fe2cf50f65208e2a1b",
        )

    def test_generated_wallets_differ_and_hide_the_key(self):
        a, b = Wallet.generate(), Wallet.generate()
        self.assertNotEqual(a.address, b.address)
        self.assertNotIn(a.private_key[2:], repr(a))
        self.assertEqual(to_checksum_address(a.address.lower()), a.address)

    def test_rejects_bad_keys(self):
        with self.assertRaises(ValueError):
            Wallet("0x1234")
        with self.assertRaises(ValueError):
            Wallet("0x" + "0" * 64)


class RequestSigningTest(unittest.TestCase):
    KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

    def test_matches_the_server_formula(self):
        body = b'{"nft_token_id":"7","provider":"local"}'
        self.assertEqual(sign_request(self.KEY, "POST", "/v1/deployments", body, 1700000000),
                         "832ed8463276abaa060dc7bfbbcedcf496a2495c2eaeaae152153b9071da4a43")
        self.assertEqual(sign_request(self.KEY, "delete", "/v1/deployments/7", b"", "1700000000"),
                         "1be5e98a40c55eadec2f104768b28d69b4f4a1593a8d2892818d5e2644ebd8bb")


if __name__ == "__main__":
    unittest.main()
