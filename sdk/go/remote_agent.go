package panthers

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"time"
)

// AgentToken is the answer of POST /v1/agents/{nft}/token: a short-lived token that only that
// NFT's agent accepts (audience agent:{nft}).
type AgentToken struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Audience    string `json:"audience"`
	EndpointURL string `json:"endpoint_url"`
	Provider    string `json:"provider"`
}

// AgentToken exchanges the session's token for one only the NFT's agent accepts. The agent
// methods (Chat, ChatStream, ...) do this by themselves for remote agents.
func (c *Client) AgentToken(ctx context.Context, nftTokenID string) (*AgentToken, error) {
	var out AgentToken
	return &out, c.call(ctx, "POST", "/v1/agents/"+url.PathEscape(nftTokenID)+"/token", nil, nil, &out, callOpts{})
}

// IsRemoteAgent tells whether the NFT's agent is called at its own endpoint (with an agent token).
func (c *Client) IsRemoteAgent(ctx context.Context, nftTokenID string) (bool, error) {
	r, err := c.agentRoute(ctx, nftTokenID)
	return r != nil, err
}

// remoteAgent is a remote agent as the client sees it: its endpoint and an agent-scoped token,
// exchanged when first needed and again shortly before it expires (or when the agent refuses
// it). Each exchange re-reads endpoint_url, so a redeploy elsewhere is followed.
type remoteAgent struct {
	c         *Client
	nft       string
	mu        sync.Mutex
	token     string
	expiresAt time.Time
	base      string
}

func (r *remoteAgent) currentToken(ctx context.Context) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	margin := 30 * time.Second
	if r.c.opts.RefreshSkew < margin {
		margin = r.c.opts.RefreshSkew
	}
	if r.token == "" || time.Until(r.expiresAt) < margin {
		if err := r.exchangeLocked(ctx); err != nil {
			return "", err
		}
	}
	return r.token, nil
}

func (r *remoteAgent) renew(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.exchangeLocked(ctx)
}

func (r *remoteAgent) baseURL() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.base
}

func (r *remoteAgent) exchangeLocked(ctx context.Context) error {
	t, err := r.c.AgentToken(ctx, r.nft)
	if err != nil {
		var apiErr *Error
		if errors.As(err, &apiErr) && apiErr.Code == CodeNotFound {
			// No live deployment any more: look the agent up again next call.
			r.c.mu.Lock()
			delete(r.c.agents, r.nft)
			r.c.mu.Unlock()
		}
		return err
	}
	r.token, r.base = t.AccessToken, strings.TrimRight(t.EndpointURL, "/")
	r.expiresAt = time.Now().Add(time.Duration(t.ExpiresIn) * time.Second)
	return nil
}

// agentRoute is nil for an agent reached through the orchestrator (embedded, or no deployment),
// else the remote agent. Found once per client from the NFT's deployment.
func (c *Client) agentRoute(ctx context.Context, nft string) (*remoteAgent, error) {
	c.mu.Lock()
	if r, ok := c.agents[nft]; ok {
		c.mu.Unlock()
		return r, nil
	}
	signedIn := c.accessToken != "" || c.refreshToken != "" || c.wallet != nil
	c.mu.Unlock()
	if !signedIn {
		return nil, nil
	}
	d, err := c.GetDeployment(ctx, nft)
	if err != nil {
		var apiErr *Error
		if errors.As(err, &apiErr) && apiErr.Code == CodeNotFound {
			return nil, nil // the orchestrator's embedded path answers (404)
		}
		return nil, err
	}
	var r *remoteAgent
	if d.Provider != "local" {
		if d.EndpointURL == nil || *d.EndpointURL == "" {
			return nil, nil // remote but not serving yet: look again next call
		}
		r = &remoteAgent{c: c, nft: nft}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.agents[nft]; ok {
		return prev, nil
	}
	c.agents[nft] = r
	return r, nil
}

// agentCall is where an Agent API call goes: the orchestrator's /v1/agents/{nft}/p, or a remote
// agent's /v1/p with its own token.
func (c *Client) agentCall(ctx context.Context, nft, p string, o callOpts) (string, callOpts, error) {
	r, err := c.agentRoute(ctx, nft)
	if err != nil {
		return "", o, err
	}
	if r == nil {
		return agentPath(nft, p), o, nil
	}
	o.remote = r
	return "/v1/" + p, o, nil
}
