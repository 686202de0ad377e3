package panthers

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Error codes of the API, and the SDK's own for failures without an API answer.
const (
	CodeUnauthorized       = "UNAUTHORIZED"
	CodeForbidden          = "FORBIDDEN"
	CodeTokenExpired       = "TOKEN_EXPIRED"
	CodeInvalidSignature   = "INVALID_SIGNATURE"
	CodeNotFound           = "NOT_FOUND"
	CodeAlreadyExists      = "ALREADY_EXISTS"
	CodeConflict           = "CONFLICT"
	CodeInvalidRequest     = "INVALID_REQUEST"
	CodeMissingField       = "MISSING_FIELD"
	CodeInvalidField       = "INVALID_FIELD"
	CodeRateLimited        = "RATE_LIMITED"
	CodeQuotaExceeded      = "QUOTA_EXCEEDED"
	CodeInternalError      = "INTERNAL_ERROR"
	CodeServiceUnavailable = "SERVICE_UNAVAILABLE"
	CodeTimeout            = "TIMEOUT"
	// SDK-side
	CodeNetworkError     = "NETWORK_ERROR"
	CodeInvalidResponse  = "INVALID_RESPONSE"
	CodeDeploymentFailed = "DEPLOYMENT_FAILED"
)

// Error is an API error: the server's {"error": {code, message, details}} and the HTTP status
// (0 for errors that came inside a stream, or that never reached the API).
type Error struct {
	Code       string
	Message    string
	Status     int
	Details    map[string]any
	RequestID  string
	RetryAfter time.Duration // from Retry-After, when the server sent one
}

func (e *Error) Error() string {
	if e.Status > 0 {
		return fmt.Sprintf("panthers: %s (HTTP %d): %s", e.Code, e.Status, e.Message)
	}
	return fmt.Sprintf("panthers: %s: %s", e.Code, e.Message)
}

// IsCode reports whether err is (or wraps) an *Error with this code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

type errorBody struct {
	Error *struct {
		Code    string         `json:"code"`
		Message string         `json:"message"`
		Details map[string]any `json:"details"`
	} `json:"error"`
}

// errorFromBody reads {"error": {...}}; ok is false when the body is not one.
func errorFromBody(raw []byte, status int) (*Error, bool) {
	var b errorBody
	if json.Unmarshal(raw, &b) != nil || b.Error == nil || b.Error.Code == "" {
		return nil, false
	}
	d := b.Error.Details
	if d == nil {
		d = map[string]any{}
	}
	return &Error{Code: b.Error.Code, Message: b.Error.Message, Status: status, Details: d}, true
}
