// Package panthers is the Go SDK of Secret Panthers: wallet sign-in, deployments, streaming chat.
//
//	c := panthers.New("http://127.0.0.1:3000", nil)
//	w, _ := panthers.WalletFromHex(os.Getenv("PRIVATE_KEY"))
//	_, err := c.SignIn(ctx, w, "42")
//
// Access tokens are refreshed before expiry (Options.RefreshSkew early) and again when a call
// answers TOKEN_EXPIRED; refresh tokens rotate. When refresh stops working and the client signed
// in with a wallet, it signs in again. Requests are HMAC-signed when the server handed out a
// signing key at sign-in. RATE_LIMITED answers are retried after Retry-After. Every refused call
// returns an *Error. A Client is safe for concurrent use.
package panthers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const userAgent = "secret-panthers-go/0.1.0"

// Options tune a Client; the zero value of each field takes its default.
type Options struct {
	HTTPClient   *http.Client  // default: a client with Timeout 60 s for JSON calls
	MaxRetries   int           // RATE_LIMITED retries (default 3; -1 for none)
	MaxRetryWait time.Duration // cap on one wait (default 60 s)
	RefreshSkew  time.Duration // refresh this long before expiry (default 60 s)
	// Sleep waits between retries (default: a timer that honours ctx). Tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Client talks to one orchestrator.
type Client struct {
	baseURL    string
	http       *http.Client
	streamHTTP *http.Client
	opts       Options

	mu           sync.Mutex
	refreshMu    sync.Mutex
	accessToken  string
	refreshToken string
	expiresAt    time.Time
	sessionID    string
	signingKey   string
	wallet       *Wallet
	nft          string
	usedSigs     map[string]time.Time
	agents       map[string]*remoteAgent // nil value: embedded (through the orchestrator)
}

// New makes a client for the server at baseURL (e.g. http://127.0.0.1:3000).
func New(baseURL string, opts *Options) *Client {
	o := Options{}
	if opts != nil {
		o = *opts
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = 3
	} else if o.MaxRetries < 0 {
		o.MaxRetries = 0
	}
	if o.MaxRetryWait == 0 {
		o.MaxRetryWait = 60 * time.Second
	}
	if o.RefreshSkew == 0 {
		o.RefreshSkew = 60 * time.Second
	}
	if o.Sleep == nil {
		o.Sleep = sleepCtx
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	// Streams last as long as the answer: no whole-request timeout, the context bounds them.
	sc := *hc
	sc.Timeout = 0
	return &Client{baseURL: strings.TrimRight(baseURL, "/"), http: hc, streamHTTP: &sc, opts: o, usedSigs: map[string]time.Time{}, agents: map[string]*remoteAgent{}}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ---- token state ----

// AccessToken is the current access token.
func (c *Client) AccessToken() string { c.mu.Lock(); defer c.mu.Unlock(); return c.accessToken }

// RefreshToken is the current (latest rotated) refresh token.
func (c *Client) RefreshToken() string { c.mu.Lock(); defer c.mu.Unlock(); return c.refreshToken }

// SessionID is the current session's id.
func (c *Client) SessionID() string { c.mu.Lock(); defer c.mu.Unlock(); return c.sessionID }

// SigningKey is the request-signing key from sign-in ("" when the server does not require signing).
func (c *Client) SigningKey() string { c.mu.Lock(); defer c.mu.Unlock(); return c.signingKey }

// SetSession uses tokens obtained elsewhere (e.g. saved from an earlier run).
func (c *Client) SetSession(s Session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.accessToken, c.refreshToken, c.sessionID, c.signingKey = s.AccessToken, s.RefreshToken, s.SessionID, s.SigningKey
	c.expiresAt = time.Now().Add(time.Duration(s.ExpiresIn) * time.Second)
}

// SetAccessToken replaces the access token, keeping the refresh token and signing key.
func (c *Client) SetAccessToken(token string, expiresIn time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.accessToken, c.expiresAt = token, time.Now().Add(expiresIn)
}

// ---- auth ----

// Challenge asks for a one-time message for the wallet to sign (POST /auth/challenge).
func (c *Client) Challenge(ctx context.Context, walletAddress, nftTokenID string) (*Challenge, error) {
	var out Challenge
	body := map[string]string{"wallet_address": walletAddress, "nft_token_id": nftTokenID}
	return &out, c.call(ctx, "POST", "/v1/auth/challenge", nil, body, &out, callOpts{noAuth: true})
}

// Verify trades a signed challenge for a session (POST /auth/verify); the client keeps the tokens.
func (c *Client) Verify(ctx context.Context, req VerifyRequest) (*Session, error) {
	var out Session
	if err := c.call(ctx, "POST", "/v1/auth/verify", nil, req, &out, callOpts{noAuth: true}); err != nil {
		return nil, err
	}
	c.SetSession(out)
	return &out, nil
}

// SignIn signs in with a private key: challenge, EIP-191 personal_sign, verify. The client keeps
// the wallet to sign in again if its refresh token stops working.
func (c *Client) SignIn(ctx context.Context, w *Wallet, nftTokenID string) (*Session, error) {
	ch, err := c.Challenge(ctx, w.Address(), nftTokenID)
	if err != nil {
		return nil, err
	}
	s, err := c.Verify(ctx, VerifyRequest{WalletAddress: w.Address(), NFTTokenID: nftTokenID, Signature: w.SignMessage([]byte(ch.Message)), Message: ch.Message})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.wallet, c.nft = w, nftTokenID
	c.mu.Unlock()
	return s, nil
}

// Refresh trades the refresh token for a new access token (POST /auth/refresh); the refresh
// token rotates and the old one is spent.
func (c *Client) Refresh(ctx context.Context) (*TokenRefresh, error) {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	return c.refreshLocked(ctx)
}

func (c *Client) refreshLocked(ctx context.Context) (*TokenRefresh, error) {
	rt := c.RefreshToken()
	if rt == "" {
		return nil, &Error{Code: CodeUnauthorized, Message: "no refresh token: sign in first", Status: 401}
	}
	var out TokenRefresh
	if err := c.call(ctx, "POST", "/v1/auth/refresh", nil, map[string]string{"refresh_token": rt}, &out, callOpts{noAuth: true}); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.accessToken, c.refreshToken = out.AccessToken, out.RefreshToken
	c.expiresAt = time.Now().Add(time.Duration(out.ExpiresIn) * time.Second)
	c.mu.Unlock()
	return &out, nil
}

// Logout revokes the session (POST /auth/logout); the client forgets its tokens and wallet.
func (c *Client) Logout(ctx context.Context) (string, error) {
	var out struct {
		Message string `json:"message"`
	}
	if err := c.call(ctx, "POST", "/v1/auth/logout", nil, nil, &out, callOpts{}); err != nil {
		return "", err
	}
	c.mu.Lock()
	c.accessToken, c.refreshToken, c.signingKey, c.wallet = "", "", "", nil
	c.agents = map[string]*remoteAgent{}
	c.mu.Unlock()
	return out.Message, nil
}

// SessionInfo is GET /auth/session.
func (c *Client) SessionInfo(ctx context.Context) (*SessionInfo, error) {
	var out SessionInfo
	return &out, c.call(ctx, "GET", "/v1/auth/session", nil, nil, &out, callOpts{})
}

// JWKS is GET /.well-known/jwks.json.
func (c *Client) JWKS(ctx context.Context) (map[string]any, error) {
	var out map[string]any
	return out, c.call(ctx, "GET", "/.well-known/jwks.json", nil, nil, &out, callOpts{noAuth: true})
}

// ---- deployments ----

// Deploy starts deploying an NFT's agent (POST /deployments).
func (c *Client) Deploy(ctx context.Context, req DeployRequest) (*DeployResult, error) {
	if req.Provider == "" {
		req.Provider = "local"
	}
	var out DeployResult
	return &out, c.call(ctx, "POST", "/v1/deployments", nil, req, &out, callOpts{signed: true})
}

// GetDeployment is GET /deployments/{nft}.
func (c *Client) GetDeployment(ctx context.Context, nftTokenID string) (*Deployment, error) {
	var out Deployment
	return &out, c.call(ctx, "GET", "/v1/deployments/"+url.PathEscape(nftTokenID), nil, nil, &out, callOpts{})
}

// StopDeployment is DELETE /deployments/{nft}.
func (c *Client) StopDeployment(ctx context.Context, nftTokenID string) (*StopResult, error) {
	var out StopResult
	return &out, c.call(ctx, "DELETE", "/v1/deployments/"+url.PathEscape(nftTokenID), nil, nil, &out, callOpts{signed: true})
}

// ListDeployments is GET /deployments: the caller's deployments.
func (c *Client) ListDeployments(ctx context.Context, o ListOptions) (*DeploymentList, error) {
	q := url.Values{}
	setIf(q, "status", o.Status)
	setIf(q, "provider", o.Provider)
	setIf(q, "sort", o.Sort)
	setIf(q, "order", o.Order)
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Offset > 0 {
		q.Set("offset", strconv.Itoa(o.Offset))
	}
	var out DeploymentList
	return &out, c.call(ctx, "GET", "/v1/deployments", q, nil, &out, callOpts{})
}

func setIf(q url.Values, k, v string) {
	if v != "" {
		q.Set(k, v)
	}
}

// ---- agent API (embedded: /v1/agents/{nft}/...) ----

func agentPath(nft, p string) string { return "/v1/agents/" + url.PathEscape(nft) + "/" + p }

// AgentHealth is the agent's GET health.
func (c *Client) AgentHealth(ctx context.Context, nftTokenID string) (*AgentHealth, error) {
	var out AgentHealth
	p, o, err := c.agentCall(ctx, nftTokenID, "health", callOpts{noAuth: true})
	if err != nil {
		return nil, err
	}
	return &out, c.call(ctx, "GET", p, nil, nil, &out, o)
}

// AgentInfo is the agent's GET info.
func (c *Client) AgentInfo(ctx context.Context, nftTokenID string) (*AgentInfo, error) {
	var out AgentInfo
	p, o, err := c.agentCall(ctx, nftTokenID, "info", callOpts{noAuth: true})
	if err != nil {
		return nil, err
	}
	return &out, c.call(ctx, "GET", p, nil, nil, &out, o)
}

// Chat sends a message and waits for the whole answer (POST chat).
func (c *Client) Chat(ctx context.Context, nftTokenID string, req ChatRequest) (*ChatResponse, error) {
	var out ChatResponse
	p, o, err := c.agentCall(ctx, nftTokenID, "chat", callOpts{})
	if err != nil {
		return nil, err
	}
	return &out, c.call(ctx, "POST", p, nil, req, &out, o)
}

// ChatHistory is GET chat/history: a conversation's messages, oldest first.
func (c *Client) ChatHistory(ctx context.Context, nftTokenID string, o HistoryOptions) (*ChatHistory, error) {
	q := url.Values{}
	setIf(q, "conversation_id", o.ConversationID)
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Offset > 0 {
		q.Set("offset", strconv.Itoa(o.Offset))
	}
	var out ChatHistory
	p, co, err := c.agentCall(ctx, nftTokenID, "chat/history", callOpts{})
	if err != nil {
		return nil, err
	}
	return &out, c.call(ctx, "GET", p, q, nil, &out, co)
}

// ClearChat is POST chat/clear: deletes a conversation's messages.
func (c *Client) ClearChat(ctx context.Context, nftTokenID, conversationID string) (*ClearResult, error) {
	var out ClearResult
	body := map[string]string{"conversation_id": conversationID}
	p, o, err := c.agentCall(ctx, nftTokenID, "chat/clear", callOpts{signed: true})
	if err != nil {
		return nil, err
	}
	return &out, c.call(ctx, "POST", p, nil, body, &out, o)
}

// ---- monitoring ----

// Health is GET /health (an unhealthy server answers 503, returned as an *Error).
func (c *Client) Health(ctx context.Context) (*ServiceHealth, error) {
	var out ServiceHealth
	return &out, c.call(ctx, "GET", "/v1/health", nil, nil, &out, callOpts{noAuth: true})
}

// Version is GET /v1.
func (c *Client) Version(ctx context.Context) (*VersionInfo, error) {
	var out VersionInfo
	return &out, c.call(ctx, "GET", "/v1", nil, nil, &out, callOpts{noAuth: true})
}

// Metrics is GET /metrics (Prometheus text).
func (c *Client) Metrics(ctx context.Context) (string, error) {
	resp, err := c.send(ctx, "GET", "/metrics", nil, nil, callOpts{noAuth: true})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// ---- plumbing ----

type callOpts struct {
	noAuth bool
	signed bool
	stream bool
	// remote: the call goes to that agent's endpoint with its agent token (never the session's)
	remote *remoteAgent
}

func (c *Client) call(ctx context.Context, method, path string, q url.Values, body, out any, o callOpts) error {
	resp, err := c.send(ctx, method, path, q, body, o)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return &Error{Code: CodeNetworkError, Message: err.Error(), Status: resp.StatusCode}
	}
	if out == nil || len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return &Error{Code: CodeInvalidResponse, Message: "answer is not the expected JSON: " + err.Error(), Status: resp.StatusCode}
	}
	return nil
}

// send makes a request with token refresh, signing and RATE_LIMITED retries; it returns a 2xx
// response whose body the caller closes, or an *Error.
func (c *Client) send(ctx context.Context, method, path string, q url.Values, body any, o callOpts) (*http.Response, error) {
	var data []byte
	if body != nil {
		var err error
		if data, err = json.Marshal(body); err != nil {
			return nil, err
		}
	}
	target := path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	base := c.baseURL
	if o.remote != nil {
		if _, err := o.remote.currentToken(ctx); err != nil { // knows its endpoint after an exchange
			return nil, err
		}
		base = o.remote.baseURL()
	}
	u := base + target
	signedPath := target
	if pu, err := url.Parse(u); err == nil {
		signedPath = pu.EscapedPath()
		if pu.RawQuery != "" {
			signedPath += "?" + pu.RawQuery
		}
	}
	refreshed := false
	for attempt := 0; ; attempt++ {
		if !o.noAuth && o.remote == nil {
			if err := c.ensureFresh(ctx); err != nil {
				return nil, err
			}
		}
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(data)
		}
		req, err := http.NewRequestWithContext(ctx, method, u, rd)
		if err != nil {
			return nil, err
		}
		req.Header.Set("User-Agent", userAgent)
		req.Header.Set("Accept", "application/json")
		if o.stream {
			req.Header.Set("Accept", "text/event-stream")
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if o.remote != nil && !o.noAuth {
			tok, err := o.remote.currentToken(ctx)
			if err != nil {
				return nil, err
			}
			req.Header.Set("Authorization", "Bearer "+tok)
		} else if tok := c.AccessToken(); !o.noAuth && tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		if key := c.SigningKey(); o.signed && key != "" && o.remote == nil {
			ts, sig, err := c.freshSignature(key, method, signedPath, data)
			if err != nil {
				return nil, err
			}
			req.Header.Set("X-Timestamp", ts)
			req.Header.Set("X-Signature", sig)
		}
		hc := c.http
		if o.stream {
			hc = c.streamHTTP
		}
		resp, err := hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if o.remote != nil && !refreshed && (method == "GET" || errors.Is(err, syscall.ECONNREFUSED)) {
				// The agent may have moved (redeployed): a new exchange says where it is now.
				// (A POST is retried only when it never reached anyone: a turn must not run twice.)
				refreshed = true
				if err := o.remote.renew(ctx); err != nil {
					return nil, err
				}
				u = o.remote.baseURL() + target
				attempt--
				continue
			}
			return nil, &Error{Code: CodeNetworkError, Message: fmt.Sprintf("%s %s: %v", method, target, err)}
		}
		if resp.StatusCode < 300 {
			return resp, nil
		}
		apiErr := errorFromResponse(resp)
		switch {
		case o.remote != nil && !o.noAuth && !refreshed && (apiErr.Code == CodeTokenExpired || apiErr.Code == CodeUnauthorized):
			// Expired or revoked at the agent: exchange again once (the orchestrator says if the session ended).
			refreshed = true
			if err := o.remote.renew(ctx); err != nil {
				return nil, err
			}
			u = o.remote.baseURL() + target
			attempt--
			continue
		case apiErr.Code == CodeTokenExpired && !o.noAuth && o.remote == nil && !refreshed && c.canRenew():
			refreshed = true
			if err := c.refreshOrSignIn(ctx); err != nil {
				return nil, err
			}
			attempt--
			continue
		case apiErr.Code == CodeRateLimited && attempt < c.opts.MaxRetries:
			wait := apiErr.RetryAfter
			if wait <= 0 {
				backoff := time.Duration(500<<attempt) * time.Millisecond
				if backoff > 8*time.Second {
					backoff = 8 * time.Second
				}
				wait = backoff/2 + time.Duration(rand.Int63n(int64(backoff/2)+1))
			}
			if wait > c.opts.MaxRetryWait {
				wait = c.opts.MaxRetryWait
			}
			if err := c.opts.Sleep(ctx, wait); err != nil {
				return nil, err
			}
			continue
		}
		return nil, apiErr
	}
}

func errorFromResponse(resp *http.Response) *Error {
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	e, ok := errorFromBody(raw, resp.StatusCode)
	if !ok {
		e = &Error{Code: "HTTP_ERROR", Message: fmt.Sprintf("HTTP %d without an API error body", resp.StatusCode), Status: resp.StatusCode, Details: map[string]any{}}
	}
	e.RequestID = resp.Header.Get("X-Request-Id")
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if secs, err := strconv.ParseFloat(ra, 64); err == nil {
			e.RetryAfter = time.Duration(secs * float64(time.Second))
		}
	}
	return e
}

func (c *Client) ensureFresh(ctx context.Context) error {
	c.mu.Lock()
	fresh := c.accessToken != "" && time.Now().Before(c.expiresAt.Add(-c.opts.RefreshSkew))
	c.mu.Unlock()
	if fresh || !c.canRenew() {
		return nil
	}
	return c.refreshOrSignIn(ctx)
}

// canRenew: a refresh token or a wallet to sign in again with.
func (c *Client) canRenew() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refreshToken != "" || c.wallet != nil
}

// refreshOrSignIn refreshes the access token; when the refresh token no longer works and the
// client knows its wallet, it signs in again.
func (c *Client) refreshOrSignIn(ctx context.Context) error {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	_, err := c.refreshLocked(ctx)
	if err == nil {
		return nil
	}
	c.mu.Lock()
	w, nft := c.wallet, c.nft
	c.mu.Unlock()
	if w == nil || !(IsCode(err, CodeUnauthorized) || IsCode(err, CodeTokenExpired)) {
		return err
	}
	_, err = c.SignIn(ctx, w, nft)
	return err
}

// freshSignature signs a request with a signature never used before: the server accepts each
// once, and identical requests in the same second sign identically, so a repeat moves its
// timestamp a second ahead (well inside the server's +-300 s window).
func (c *Client) freshSignature(key, method, path string, body []byte) (string, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	for s, t := range c.usedSigs {
		if now.Sub(t) > 10*time.Minute {
			delete(c.usedSigs, s)
		}
	}
	ts := now.Unix()
	for i := 0; i < 60; i++ {
		tsStr := strconv.FormatInt(ts, 10)
		sig, err := SignRequest(key, method, path, body, tsStr)
		if err != nil {
			return "", "", err
		}
		if _, used := c.usedSigs[sig]; !used {
			c.usedSigs[sig] = now
			return tsStr, sig, nil
		}
		ts++
	}
	return "", "", &Error{Code: CodeRateLimited, Message: "too many identical signed requests; retry in a minute"}
}
