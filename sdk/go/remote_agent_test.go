package panthers

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestRemoteAgentTokenExchange runs against the orchestrator sdk/run-tests.sh starts with a
// provider that runs a real `panthers agent` process: the client exchanges its session token for
// an agent-scoped one by itself, sends only that to the agent, and renews it after it expires.
func TestRemoteAgentTokenExchange(t *testing.T) {
	url, dir := os.Getenv("PANTHERS_TEST_REMOTE_URL"), os.Getenv("PANTHERS_TEST_REMOTE_DATA_DIR")
	if url == "" || dir == "" || os.Getenv("PANTHERS_TEST_ASSIGN") == "" {
		t.Skip("no remote-agent server: run these through sdk/run-tests.sh")
	}
	ctx := testCtx(t)
	nft := newNFT()
	w, err := NewWallet()
	if err != nil {
		t.Fatal(err)
	}
	assign(t, dir, nft, w.Address())
	c := New(url, nil)
	if _, err := c.SignIn(ctx, w, nft); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	if _, err := c.Deploy(ctx, DeployRequest{NFTTokenID: nft, Provider: "akash"}); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	defer c.StopDeployment(ctx, nft)
	if _, err := c.WaitForStatus(ctx, nft, StatusRunning); err != nil {
		t.Fatalf("wait: %v", err)
	}
	d, err := c.GetDeployment(ctx, nft)
	if err != nil {
		t.Fatal(err)
	}
	if remote, err := c.IsRemoteAgent(ctx, nft); err != nil || !remote {
		t.Fatalf("IsRemoteAgent = %v, %v", remote, err)
	}
	tok, err := c.AgentToken(ctx, nft)
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != "Bearer" || tok.Audience != "agent:"+nft || tok.EndpointURL != *d.EndpointURL || tok.ExpiresIn > 900 {
		t.Fatalf("agent token: %+v", tok)
	}

	first, err := c.Chat(ctx, nft, ChatRequest{Message: "hello from go"})
	if err != nil {
		t.Fatalf("chat: %v", err)
	}
	if !strings.Contains(first.Response, "hello from go") {
		t.Fatalf("response %q", first.Response)
	}
	s, err := c.ChatStream(ctx, nft, ChatRequest{Message: "streamed", ConversationID: first.ConversationID})
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	chunks, err := s.Collect()
	if err != nil || len(chunks) == 0 || !chunks[len(chunks)-1].Done {
		t.Fatalf("sse chunks %v %v", chunks, err)
	}
	ws, err := c.ChatStreamWS(ctx, nft, ChatRequest{Message: "over ws", ConversationID: first.ConversationID})
	if err != nil {
		t.Fatalf("ws: %v", err)
	}
	if wsChunks, err := ws.Collect(); err != nil || !wsChunks[len(wsChunks)-1].Done {
		t.Fatalf("ws chunks %v %v", wsChunks, err)
	}
	h, err := c.ChatHistory(ctx, nft, HistoryOptions{ConversationID: first.ConversationID})
	if err != nil || h.Total != 6 {
		t.Fatalf("history %+v %v", h, err)
	}
	// Agent tokens live 3 s on this server: the next call exchanges again by itself.
	time.Sleep(3200 * time.Millisecond)
	cl, err := c.ClearChat(ctx, nft, first.ConversationID)
	if err != nil || cl.Deleted != 6 {
		t.Fatalf("clear %+v %v", cl, err)
	}

	// The agent refuses the session token itself.
	direct := New(*d.EndpointURL, nil)
	direct.accessToken, direct.expiresAt = c.AccessToken(), time.Now().Add(time.Hour)
	err = direct.call(ctx, "POST", "/v1/chat", nil, ChatRequest{Message: "with the session token"}, nil, callOpts{})
	if e, ok := err.(*Error); !ok || e.Code != CodeUnauthorized {
		t.Fatalf("session token at the agent: %v", err)
	}
}
