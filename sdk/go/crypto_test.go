package panthers

import (
	"encoding/hex"
	"strings"
	"testing"
)

// Vectors from ethers and the server's own signRequest (independent implementations).

func TestKeccak256(t *testing.T) {
	cases := map[string]string{
		"":                       "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470",
		strings.Repeat("a", 200): "96ea54061def936c4be90b518992fdc6f12f535068a256229aca54267b4d084d",
	}
	for in, want := range cases {
		if got := hex.EncodeToString(Keccak256([]byte(in))); got != want {
			t.Errorf("keccak256(%d bytes) = %s, want %s", len(in), got, want)
		}
	}
}

func TestWalletMatchesEthers(t *testing.T) {
	w, err := WalletFromHex("0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
	if err != nil {
		t.Fatal(err)
	}
	if w.Address() != "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23" {
		t.Errorf("address %s", w.Address())
	}
	want := "0x3f199929e235fc4a3345ef8992c39589d8a56c701f71ad1e60e23649c4c1de32560c97f1c55ec3e84472cec997c27a16b3322a9eaf4c7de40beeea25f52c28dd1b"
	if got := w.SignMessage([]byte("Sign in to Secret Panthers\nnonce: abc123\n")); got != want {
		t.Errorf("signature %s", got)
	}
	one, _ := WalletFromHex(strings.Repeat("0", 63) + "1")
	if one.Address() != "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf" {
		t.Errorf("address of key 1: %s", one.Address())
	}
	want = "0xe5ddc160e4c8f92de507c7db9b982d4f9b7197bfa421864aeadc586bc96b09ae0ba0c5b131650ae4994cff1839341d00f3735ef5abc62ac8fe2cf50f65208e2a1b"
	if got := one.SignMessage([]byte("hello")); got != want {
		t.Errorf("signature of hello %s", got)
	}
	if strings.Contains(w.String(), "4c0883a6") {
		t.Error("String shows the private key")
	}
	if _, err := WalletFromHex("0x1234"); err == nil {
		t.Error("short key accepted")
	}
	if _, err := WalletFromHex("0x" + strings.Repeat("0", 64)); err == nil {
		t.Error("zero key accepted")
	}
	a, _ := NewWallet()
	b, _ := NewWallet()
	if a.Address() == b.Address() {
		t.Error("two new wallets share an address")
	}
	if back, _ := WalletFromHex(a.PrivateKeyHex()); back.Address() != a.Address() {
		t.Error("PrivateKeyHex does not round-trip")
	}
}

func TestSignRequestMatchesServer(t *testing.T) {
	key := "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	got, _ := SignRequest(key, "POST", "/v1/deployments", []byte(`{"nft_token_id":"7","provider":"local"}`), "1700000000")
	if got != "832ed8463276abaa060dc7bfbbcedcf496a2495c2eaeaae152153b9071da4a43" {
		t.Errorf("POST signature %s", got)
	}
	got, _ = SignRequest(key, "delete", "/v1/deployments/7", nil, "1700000000")
	if got != "1be5e98a40c55eadec2f104768b28d69b4f4a1593a8d2892818d5e2644ebd8bb" {
		t.Errorf("DELETE signature %s", got)
	}
}
