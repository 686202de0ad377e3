package panthers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests run against the real servers sdk/run-tests.sh starts (see its env variables).

func server(t *testing.T) (url, dataDir string) {
	url, dataDir = os.Getenv("PANTHERS_TEST_URL"), os.Getenv("PANTHERS_TEST_DATA_DIR")
	if url == "" || dataDir == "" || os.Getenv("PANTHERS_TEST_ASSIGN") == "" {
		t.Skip("no server: run these through sdk/run-tests.sh")
	}
	return url, dataDir
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newNFT() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "go-" + hex.EncodeToString(b)
}

func assign(t *testing.T, dataDir, nft, owner string) {
	t.Helper()
	out, err := exec.Command(os.Getenv("PANTHERS_TEST_ASSIGN"), dataDir, nft, owner).CombinedOutput()
	if err != nil {
		t.Fatalf("assign %s: %v %s", nft, err, out)
	}
}

func mintExpired(t *testing.T, dataDir, wallet, nft, sid string) string {
	t.Helper()
	out, err := exec.Command("node", os.Getenv("PANTHERS_TEST_MINT"), dataDir, wallet, nft, sid).Output()
	if err != nil {
		t.Fatalf("mint token: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func signedIn(t *testing.T, opts *Options) (*Client, *Wallet, string) {
	t.Helper()
	url, dir := server(t)
	nft := newNFT()
	w, err := NewWallet()
	if err != nil {
		t.Fatal(err)
	}
	assign(t, dir, nft, w.Address())
	c := New(url, opts)
	if _, err := c.SignIn(testCtx(t), w, nft); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	return c, w, nft
}

func wantCode(t *testing.T, err error, code string, status int) *Error {
	t.Helper()
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("want *Error %s, got %T %v", code, err, err)
	}
	if e.Code != code || e.Status != status {
		t.Fatalf("want %s/%d, got %s/%d (%s)", code, status, e.Code, e.Status, e.Message)
	}
	return e
}

func joinContent(chunks []ChatChunk) string {
	var b strings.Builder
	for _, c := range chunks[:len(chunks)-1] {
		b.WriteString(c.Content)
	}
	return b.String()
}

func TestDeployWatchChatHistoryClearStop(t *testing.T) {
	c, w, nft := signedIn(t, nil)
	ctx := testCtx(t)

	info, err := c.SessionInfo(ctx)
	if err != nil || !strings.EqualFold(info.WalletAddress, w.Address()) || info.NFTTokenID != nft || info.SessionID != c.SessionID() {
		t.Fatalf("session %+v %v", info, err)
	}

	dep, err := c.Deploy(ctx, DeployRequest{NFTTokenID: nft, Provider: "local", Agent: &AgentSpec{Name: "Go Panther"}})
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}

	watch, err := c.WatchDeployment(ctx, nft, WatchOptions{})
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	var statuses []string
	for {
		u, err := watch.Next()
		if err != nil {
			t.Fatalf("watch next: %v (seen %v)", err, statuses)
		}
		if u.NFTTokenID != nft {
			t.Fatalf("update for %s", u.NFTTokenID)
		}
		statuses = append(statuses, u.Status)
		if u.Status == StatusRunning {
			if u.EndpointURL == nil || *u.EndpointURL == "" {
				t.Fatal("running without an endpoint")
			}
			break
		}
	}
	watch.Close()

	got, err := c.GetDeployment(ctx, nft)
	if err != nil || got.Status != StatusRunning || got.DeploymentID != dep.DeploymentID || got.Agent.Name != "Go Panther" || got.Resources.MemoryMB <= 0 {
		t.Fatalf("get deployment %+v %v", got, err)
	}
	list, err := c.ListDeployments(ctx, ListOptions{Status: StatusRunning, Limit: 10})
	if err != nil || list.Pagination.Limit != 10 || len(list.Deployments) == 0 || list.Deployments[0].NFTTokenID != nft {
		t.Fatalf("list %+v %v", list, err)
	}
	if ai, err := c.AgentInfo(ctx, nft); err != nil || ai.Name != "Go Panther" {
		t.Fatalf("agent info %+v %v", ai, err)
	}
	if ah, err := c.AgentHealth(ctx, nft); err != nil || ah.Status != "healthy" {
		t.Fatalf("agent health %+v %v", ah, err)
	}

	// SSE
	stream, err := c.ChatStream(ctx, nft, ChatRequest{Message: "Hello over SSE"})
	if err != nil {
		t.Fatalf("chat stream: %v", err)
	}
	chunks, err := stream.Collect()
	if err != nil || len(chunks) < 2 {
		t.Fatalf("sse chunks %d %v", len(chunks), err)
	}
	final := chunks[len(chunks)-1]
	if !final.Done || final.Response == "" || joinContent(chunks) != final.Response || final.ConversationID == "" {
		t.Fatalf("sse final %+v, joined %q", final, joinContent(chunks))
	}
	if _, err := stream.Next(); err != io.EOF {
		t.Fatalf("after the final chunk: %v", err)
	}
	conv := final.ConversationID

	// WebSocket, same conversation
	wsStream, err := c.ChatStreamWS(ctx, nft, ChatRequest{Message: "And now over the socket", ConversationID: conv})
	if err != nil {
		t.Fatalf("chat ws: %v", err)
	}
	wsChunks, err := wsStream.Collect()
	if err != nil || len(wsChunks) < 2 {
		t.Fatalf("ws chunks %d %v", len(wsChunks), err)
	}
	wsFinal := wsChunks[len(wsChunks)-1]
	if !wsFinal.Done || wsFinal.ConversationID != conv || joinContent(wsChunks) != wsFinal.Response {
		t.Fatalf("ws final %+v", wsFinal)
	}

	plain, err := c.Chat(ctx, nft, ChatRequest{Message: "And once more, whole", ConversationID: conv})
	if err != nil || plain.ConversationID != conv || plain.TokensUsed <= 0 {
		t.Fatalf("chat %+v %v", plain, err)
	}

	hist, err := c.ChatHistory(ctx, nft, HistoryOptions{ConversationID: conv})
	if err != nil || hist.Total != 6 || len(hist.Messages) != 6 {
		t.Fatalf("history %+v %v", hist, err)
	}
	for i, m := range hist.Messages {
		want := []string{"user", "assistant"}[i%2]
		if m.Role != want {
			t.Fatalf("message %d role %s", i, m.Role)
		}
	}
	if hist.Messages[0].Content != "Hello over SSE" || hist.Messages[1].Content != final.Response || hist.Messages[3].Content != wsFinal.Response {
		t.Fatalf("history contents %+v", hist.Messages)
	}
	page, err := c.ChatHistory(ctx, nft, HistoryOptions{ConversationID: conv, Limit: 2, Offset: 2})
	if err != nil || len(page.Messages) != 2 || page.Messages[0].Content != "And now over the socket" || !page.Pagination.HasMore {
		t.Fatalf("history page %+v %v", page, err)
	}

	cleared, err := c.ClearChat(ctx, nft, conv)
	if err != nil || cleared.Deleted != 6 || cleared.ConversationID != conv {
		t.Fatalf("clear %+v %v", cleared, err)
	}
	if after, err := c.ChatHistory(ctx, nft, HistoryOptions{ConversationID: conv}); err == nil {
		if after.Total != 0 {
			t.Fatalf("history after clear: %d", after.Total)
		}
	} else {
		wantCode(t, err, CodeNotFound, 404)
	}

	stop, err := c.StopDeployment(ctx, nft)
	if err != nil || stop.DeploymentID != dep.DeploymentID {
		t.Fatalf("stop %+v %v", stop, err)
	}
	watch, err = c.WatchDeployment(ctx, nft, WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	last := ""
	for {
		u, err := watch.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("watch to stopped: %v", err)
		}
		last = u.Status
	}
	if last != StatusStopped {
		t.Fatalf("watch ended at %q", last)
	}
}

func TestErrorsAreTyped(t *testing.T) {
	c, _, nft := signedIn(t, nil)
	url, dir := server(t)
	ctx := testCtx(t)

	other := newNFT()
	stranger, _ := NewWallet()
	assign(t, dir, other, stranger.Address())
	_, err := c.Deploy(ctx, DeployRequest{NFTTokenID: other, Provider: "local"})
	e := wantCode(t, err, CodeForbidden, 403)
	if !strings.Contains(e.Message, other) || !IsCode(err, CodeForbidden) {
		t.Fatalf("forbidden error %+v", e)
	}

	if _, err := c.Deploy(ctx, DeployRequest{NFTTokenID: nft, Provider: "local"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitForStatus(ctx, nft, StatusRunning); err != nil {
		t.Fatal(err)
	}
	defer c.StopDeployment(context.Background(), nft)  //nolint:errcheck
	_, err = c.ChatHistory(ctx, nft, HistoryOptions{}) // no conversation_id
	e = wantCode(t, err, CodeMissingField, 400)
	if e.Details["field"] != "conversation_id" || e.RequestID == "" {
		t.Fatalf("missing field details %+v request id %q", e.Details, e.RequestID)
	}
	_, err = c.Deploy(ctx, DeployRequest{NFTTokenID: nft, Provider: "moon"})
	wantCode(t, err, CodeInvalidField, 400)

	if _, err := c.ChatStream(ctx, newNFT(), ChatRequest{Message: "anyone there?"}); err == nil {
		t.Fatal("chat with an agent that does not run succeeded")
	} else if e := err.(*Error); e.Status != 403 && e.Status != 404 {
		t.Fatalf("chat with no agent: %v", err)
	}

	_, err = New(url, nil).ListDeployments(ctx, ListOptions{})
	wantCode(t, err, CodeUnauthorized, 401)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Health(cancelled); err != context.Canceled {
		t.Fatalf("cancelled context: %v", err)
	}
}

func TestRefreshRotatesAndSpendsTheOldToken(t *testing.T) {
	c, _, _ := signedIn(t, nil)
	url, _ := server(t)
	ctx := testCtx(t)
	old := c.RefreshToken()
	out, err := c.Refresh(ctx)
	if err != nil || out.RefreshToken == old || c.RefreshToken() != out.RefreshToken {
		t.Fatalf("refresh %v", err)
	}
	if _, err := c.SessionInfo(ctx); err != nil {
		t.Fatal(err)
	}
	replay := New(url, nil)
	replay.SetSession(Session{RefreshToken: old})
	_, err = replay.Refresh(ctx)
	wantCode(t, err, CodeUnauthorized, 401)
}

func TestRefreshesBeforeExpiry(t *testing.T) {
	c, _, _ := signedIn(t, &Options{RefreshSkew: 2 * time.Hour}) // always "about to expire"
	ctx := testCtx(t)
	first := c.RefreshToken()
	if _, err := c.SessionInfo(ctx); err != nil {
		t.Fatal(err)
	}
	second := c.RefreshToken()
	if second == first {
		t.Fatal("did not refresh before the call")
	}
	if _, err := c.ListDeployments(ctx, ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if c.RefreshToken() == second {
		t.Fatal("did not refresh before the second call")
	}
}

func TestRefreshesOnTokenExpired(t *testing.T) {
	c, w, nft := signedIn(t, nil)
	url, dir := server(t)
	ctx := testCtx(t)
	expired := mintExpired(t, dir, w.Address(), nft, c.SessionID())

	raw := New(url, nil)
	raw.SetAccessToken(expired, time.Hour)
	_, err := raw.SessionInfo(ctx)
	wantCode(t, err, CodeTokenExpired, 401)

	c.SetAccessToken(expired, time.Hour) // the client believes it is fresh
	info, err := c.SessionInfo(ctx)
	if err != nil || info.SessionID != c.SessionID() || c.AccessToken() == expired {
		t.Fatalf("after TOKEN_EXPIRED: %+v %v", info, err)
	}

	// Refresh token spent behind its back: the client signs in again with its wallet.
	thief := New(url, nil)
	thief.SetSession(Session{RefreshToken: c.RefreshToken()})
	if _, err := thief.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	firstSID := c.SessionID()
	c.SetAccessToken(mintExpired(t, dir, w.Address(), nft, firstSID), time.Hour)
	if info, err := c.SessionInfo(ctx); err != nil || info.NFTTokenID != nft || c.SessionID() == firstSID {
		t.Fatalf("sign in again: %+v %v", info, err)
	}
}

func TestStrictServerSigning(t *testing.T) {
	url, dir := os.Getenv("PANTHERS_TEST_STRICT_URL"), os.Getenv("PANTHERS_TEST_STRICT_DATA_DIR")
	if url == "" {
		t.Skip("no strict server: run through sdk/run-tests.sh")
	}
	ctx := testCtx(t)
	nft := newNFT()
	w, _ := NewWallet()
	assign(t, dir, nft, w.Address())
	c := New(url, nil)
	s, err := c.SignIn(ctx, w, nft)
	if err != nil {
		t.Fatal(err)
	}
	if s.SigningKey == "" {
		_, err := c.Deploy(ctx, DeployRequest{NFTTokenID: nft, Provider: "local"})
		wantCode(t, err, CodeInvalidSignature, 401)
		t.Skip("the server requires signed requests but /auth/verify returned no signing_key")
	}
	if _, err := c.Deploy(ctx, DeployRequest{NFTTokenID: nft, Provider: "local"}); err != nil {
		t.Fatalf("signed deploy: %v", err)
	}
	// Identical signed requests in the same second must still carry distinct signatures.
	a, err := c.StopDeployment(ctx, nft)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.StopDeployment(ctx, nft)
	if err != nil || a.DeploymentID != b.DeploymentID {
		t.Fatalf("second stop: %v", err)
	}
	unsigned := New(url, nil)
	unsigned.SetSession(Session{AccessToken: c.AccessToken(), RefreshToken: c.RefreshToken(), ExpiresIn: 3600})
	_, err = unsigned.Deploy(ctx, DeployRequest{NFTTokenID: nft, Provider: "local"})
	wantCode(t, err, CodeInvalidSignature, 401)
}

func TestStrictServerRateLimitedRetries(t *testing.T) {
	url := os.Getenv("PANTHERS_TEST_STRICT_URL")
	if url == "" {
		t.Skip("no strict server: run through sdk/run-tests.sh")
	}
	var mu sync.Mutex
	var waits []time.Duration
	c := New(url, &Options{MaxRetries: 2, Sleep: func(_ context.Context, d time.Duration) error {
		mu.Lock()
		waits = append(waits, d)
		mu.Unlock()
		return nil
	}})
	ctx := testCtx(t)
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		_, err = c.Health(ctx)
	}
	e := wantCode(t, err, CodeRateLimited, 429)
	if e.RetryAfter <= 0 || e.RetryAfter > time.Minute {
		t.Fatalf("retry after %v", e.RetryAfter)
	}
	if len(waits) != 2 {
		t.Fatalf("want 2 retries, waited %v", waits)
	}
	for _, d := range waits {
		if d <= 0 || d > time.Minute {
			t.Fatalf("wait %v", d)
		}
	}
}
