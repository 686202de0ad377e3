package panthers

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// SigningString is what a signed request signs, one field per line:
// timestamp \n METHOD \n path \n sha256hex(body), where path includes /v1 and ?query.
func SigningString(method, path string, body []byte, timestamp string) string {
	sum := sha256.Sum256(body)
	return timestamp + "\n" + strings.ToUpper(method) + "\n" + path + "\n" + hex.EncodeToString(sum[:])
}

// SignRequest is X-Signature: hex HMAC-SHA256 keyed with the raw bytes of the hex signing key.
func SignRequest(signingKey, method, path string, body []byte, timestamp string) (string, error) {
	key, err := hex.DecodeString(signingKey)
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(SigningString(method, path, body, timestamp)))
	return hex.EncodeToString(m.Sum(nil)), nil
}
