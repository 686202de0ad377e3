package panthers

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// Wallet is an EVM private key and the EIP-55 address it controls. Its String never shows the key.
type Wallet struct {
	secret  *big.Int
	address string
}

// NewWallet makes a wallet with a fresh random key (crypto/rand).
func NewWallet() (*Wallet, error) {
	for {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		k := new(big.Int).SetBytes(b)
		if k.Sign() > 0 && k.Cmp(curveN) < 0 {
			return walletFromSecret(k), nil
		}
	}
}

// WalletFromHex loads a wallet from a 32-byte private key in hex (with or without 0x).
func WalletFromHex(privateKey string) (*Wallet, error) {
	h := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(privateKey)), "0x")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 32 {
		return nil, errors.New("panthers: private key must be 32 bytes of hex")
	}
	k := new(big.Int).SetBytes(b)
	if k.Sign() == 0 || k.Cmp(curveN) >= 0 {
		return nil, errors.New("panthers: private key out of range")
	}
	return walletFromSecret(k), nil
}

func walletFromSecret(k *big.Int) *Wallet {
	pub := scalarBaseMult(k)
	hash := Keccak256(append(bytes32(pub.x), bytes32(pub.y)...))
	return &Wallet{secret: k, address: ToChecksumAddress(hex.EncodeToString(hash[12:]))}
}

// Address is the EIP-55 checksummed 0x address.
func (w *Wallet) Address() string { return w.address }

// PrivateKeyHex is the 0x hex private key (to save it; never log it).
func (w *Wallet) PrivateKeyHex() string { return "0x" + hex.EncodeToString(bytes32(w.secret)) }

func (w *Wallet) String() string { return "Wallet(" + w.address + ")" }

// SignMessage is EIP-191 personal_sign as MetaMask does it: 0x r||s||v with v 27 or 28.
func (w *Wallet) SignMessage(message []byte) string {
	prefix := "\x19Ethereum Signed Message:\n" + strconv.Itoa(len(message))
	digest := Keccak256(append([]byte(prefix), message...))
	r, s, rec := signRecoverable(w.secret, digest)
	sig := append(append(bytes32(r), bytes32(s)...), 27+rec)
	return "0x" + hex.EncodeToString(sig)
}

// ToChecksumAddress returns the EIP-55 mixed-case form of a 20-byte hex address.
func ToChecksumAddress(address string) string {
	a := strings.TrimPrefix(strings.ToLower(address), "0x")
	if len(a) != 40 {
		panic(fmt.Sprintf("panthers: not a 20-byte address: %q", address))
	}
	digest := hex.EncodeToString(Keccak256([]byte(a)))
	out := []byte(a)
	for i, c := range out {
		if c >= 'a' && c <= 'f' && digest[i] >= '8' {
			out[i] = c - 32
		}
	}
	return "0x" + string(out)
}
