package panthers

import (
	"crypto/hmac"
	"crypto/sha256"
	"math/big"
)

// secp256k1 ECDSA with recovery ids, RFC 6979 deterministic nonces and low-s (EIP-2): the
// 65-byte signatures Ethereum wallets make. Same key and digest give the same bytes as ethers.

var (
	curveP  = mustHex("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F")
	curveN  = mustHex("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141")
	curveGx = mustHex("79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798")
	curveGy = mustHex("483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8")
	halfN   = new(big.Int).Rsh(curveN, 1)
)

func mustHex(s string) *big.Int {
	v, ok := new(big.Int).SetString(s, 16)
	if !ok {
		panic("bad constant " + s)
	}
	return v
}

// point is an affine point; nil is the point at infinity.
type point struct{ x, y *big.Int }

func mod(v *big.Int, m *big.Int) *big.Int { return v.Mod(v, m) }

func pointAdd(p, q *point) *point {
	if p == nil {
		return q
	}
	if q == nil {
		return p
	}
	var lam *big.Int
	if p.x.Cmp(q.x) == 0 {
		if new(big.Int).Add(p.y, q.y).Cmp(curveP) == 0 || (p.y.Sign() == 0 && q.y.Sign() == 0) {
			return nil
		}
		num := new(big.Int).Mul(p.x, p.x)
		num.Mul(num, big.NewInt(3))
		den := new(big.Int).Lsh(p.y, 1)
		lam = mod(num.Mul(num, den.ModInverse(den, curveP)), curveP)
	} else {
		num := new(big.Int).Sub(q.y, p.y)
		den := mod(new(big.Int).Sub(q.x, p.x), curveP)
		lam = mod(num.Mul(num, den.ModInverse(den, curveP)), curveP)
	}
	x := new(big.Int).Mul(lam, lam)
	x.Sub(x, p.x).Sub(x, q.x)
	mod(x, curveP)
	y := new(big.Int).Sub(p.x, x)
	y.Mul(y, lam).Sub(y, p.y)
	mod(y, curveP)
	return &point{x, y}
}

func scalarBaseMult(k *big.Int) *point {
	var acc *point
	p := &point{curveGx, curveGy}
	for i := 0; i < k.BitLen(); i++ {
		if k.Bit(i) == 1 {
			acc = pointAdd(acc, p)
		}
		p = pointAdd(p, p)
	}
	return acc
}

func bytes32(v *big.Int) []byte {
	out := make([]byte, 32)
	v.FillBytes(out)
	return out
}

func hmacSHA256(key []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// signRecoverable signs a 32-byte digest: r, s (low half) and the recovery id (0..3).
func signRecoverable(secret *big.Int, digest []byte) (r, s *big.Int, recID byte) {
	z := mod(new(big.Int).SetBytes(digest), curveN)
	x, h := bytes32(secret), bytes32(z)
	v := make([]byte, 32)
	for i := range v {
		v[i] = 1
	}
	k := make([]byte, 32)
	k = hmacSHA256(k, v, []byte{0}, x, h)
	v = hmacSHA256(k, v)
	k = hmacSHA256(k, v, []byte{1}, x, h)
	v = hmacSHA256(k, v)
	for {
		v = hmacSHA256(k, v)
		nonce := new(big.Int).SetBytes(v)
		if nonce.Sign() > 0 && nonce.Cmp(curveN) < 0 {
			rp := scalarBaseMult(nonce)
			r = mod(new(big.Int).Set(rp.x), curveN)
			if r.Sign() != 0 {
				s = new(big.Int).Mul(r, secret)
				s.Add(s, z)
				s.Mul(s, new(big.Int).ModInverse(nonce, curveN))
				mod(s, curveN)
				if s.Sign() != 0 {
					recID = byte(rp.y.Bit(0))
					if rp.x.Cmp(curveN) >= 0 {
						recID |= 2
					}
					if s.Cmp(halfN) > 0 {
						s.Sub(curveN, s)
						recID ^= 1
					}
					return r, s, recID
				}
			}
		}
		k = hmacSHA256(k, v, []byte{0})
		v = hmacSHA256(k, v)
	}
}
