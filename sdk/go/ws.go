package panthers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/gorilla/websocket"
)

// WSCloseTokenExpired is the close code the server uses after a TOKEN_EXPIRED frame.
const WSCloseTokenExpired = 4001

// wsConn is one /ws connection whose frames a goroutine pumps into a channel, so reads can
// select on a context.
type wsConn struct {
	conn    *websocket.Conn
	frames  chan map[string]any
	done    chan struct{}
	closeMu sync.Once
	err     error // set before done closes: the close reason
	writeMu sync.Mutex
}

func (c *Client) dialWS(ctx context.Context) (*wsConn, error) {
	return c.dialWSAt(ctx, nil)
}

// dialWSAt opens the orchestrator's /ws, or with remote that agent's own /ws with its agent token.
func (c *Client) dialWSAt(ctx context.Context, remote *remoteAgent) (*wsConn, error) {
	base, token := c.baseURL, ""
	if remote != nil {
		t, err := remote.currentToken(ctx)
		if err != nil {
			return nil, err
		}
		base, token = remote.baseURL(), t
	} else {
		if err := c.ensureFresh(ctx); err != nil {
			return nil, err
		}
		token = c.AccessToken()
	}
	if strings.HasPrefix(base, "https://") {
		base = "wss://" + strings.TrimPrefix(base, "https://")
	} else {
		base = "ws://" + strings.TrimPrefix(base, "http://")
	}
	conn, resp, err := websocket.DefaultDialer.DialContext(ctx, base+"/ws?token="+url.QueryEscape(token), http.Header{"User-Agent": {userAgent}})
	if err != nil {
		if resp != nil {
			return nil, errorFromResponse(resp)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &Error{Code: CodeNetworkError, Message: "websocket: " + err.Error()}
	}
	w := &wsConn{conn: conn, frames: make(chan map[string]any, 64), done: make(chan struct{})}
	go w.pump()
	return w, nil
}

func (w *wsConn) pump() {
	defer close(w.done)
	for {
		_, raw, err := w.conn.ReadMessage()
		if err != nil {
			w.err = err
			return
		}
		var m map[string]any
		if json.Unmarshal(raw, &m) != nil {
			continue
		}
		select {
		case w.frames <- m:
		case <-w.done:
			return
		}
	}
}

func (w *wsConn) send(v any) error {
	w.writeMu.Lock()
	defer w.writeMu.Unlock()
	return w.conn.WriteJSON(v)
}

// recv returns the next frame; on a closed connection, a *websocket.CloseError when known.
func (w *wsConn) recv(ctx context.Context) (map[string]any, error) {
	select {
	case m := <-w.frames:
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-w.done:
		select {
		case m := <-w.frames:
			return m, nil
		default:
		}
		if w.err == nil {
			return nil, io.EOF
		}
		return nil, w.err
	}
}

func (w *wsConn) close() {
	w.closeMu.Do(func() {
		w.writeMu.Lock()
		_ = w.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
		w.writeMu.Unlock()
		_ = w.conn.Close()
	})
}

func closeCode(err error) int {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

func frameError(m map[string]any) *Error {
	raw, _ := json.Marshal(m)
	if e, ok := errorFromBody(raw, 0); ok {
		return e
	}
	return &Error{Code: CodeInvalidResponse, Message: "bad error frame", Details: map[string]any{}}
}

func decodeInto(m map[string]any, out any) error {
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

// WatchOptions tune WatchDeployment.
type WatchOptions struct {
	// SkipCurrent leaves out the current state the watch starts with.
	SkipCurrent bool
	// Until ends the watch (Next returns io.EOF) after one of these statuses; default stopped, failed.
	Until []string
}

// DeploymentWatch delivers a deployment's status changes over the WebSocket.
type DeploymentWatch struct {
	c     *Client
	ctx   context.Context
	nft   string
	opts  WatchOptions
	conn  *wsConn
	first bool
	ended bool
}

// WatchDeployment subscribes to a deployment's updates. Next returns the current state first,
// then each change; io.EOF after a status in opts.Until. The context bounds the whole watch.
// The watch reconnects with a refreshed token when the server closes it for an expired one.
func (c *Client) WatchDeployment(ctx context.Context, nftTokenID string, opts WatchOptions) (*DeploymentWatch, error) {
	if len(opts.Until) == 0 {
		opts.Until = []string{StatusStopped, StatusFailed}
	}
	w := &DeploymentWatch{c: c, ctx: ctx, nft: nftTokenID, opts: opts, first: true}
	if err := w.connect(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *DeploymentWatch) connect() error {
	conn, err := w.c.dialWS(w.ctx)
	if err != nil {
		return err
	}
	if err := conn.send(map[string]any{"type": "subscribe", "channel": "deployment", "nft_token_id": w.nft}); err != nil {
		conn.close()
		return &Error{Code: CodeNetworkError, Message: err.Error()}
	}
	w.conn = conn
	return nil
}

// Next returns the next update; io.EOF once the watch has ended.
func (w *DeploymentWatch) Next() (*DeploymentUpdate, error) {
	if w.ended {
		return nil, io.EOF
	}
	for reconnects := 0; ; {
		m, err := w.conn.recv(w.ctx)
		if err != nil {
			if closeCode(err) == WSCloseTokenExpired && reconnects < 5 {
				reconnects++
				w.conn.close()
				if err := w.c.refreshOrSignIn(w.ctx); err != nil {
					return nil, err
				}
				if err := w.connect(); err != nil {
					return nil, err
				}
				continue
			}
			if w.ctx.Err() != nil {
				return nil, w.ctx.Err()
			}
			return nil, &Error{Code: CodeNetworkError, Message: fmt.Sprintf("websocket closed: %v", err)}
		}
		var u DeploymentUpdate
		switch m["type"] {
		case "subscribed":
			dep, ok := m["deployment"].(map[string]any)
			wasFirst := w.first
			w.first = false
			if !ok || !wasFirst || w.opts.SkipCurrent {
				continue
			}
			if err := decodeInto(dep, &u); err != nil {
				return nil, err
			}
			u.Message = "current state"
		case "deployment_status":
			if m["nft_token_id"] != w.nft {
				continue
			}
			if err := decodeInto(m, &u); err != nil {
				return nil, err
			}
		case "error":
			if e := frameError(m); e.Code != CodeTokenExpired {
				return nil, e
			}
			continue
		default:
			continue
		}
		for _, s := range w.opts.Until {
			if u.Status == s {
				w.ended = true
				w.Close()
			}
		}
		return &u, nil
	}
}

// Close stops watching.
func (w *DeploymentWatch) Close() {
	w.ended = true
	if w.conn != nil {
		w.conn.close()
	}
}

// WaitForStatus blocks until the deployment reaches status; an *Error when it fails first.
func (c *Client) WaitForStatus(ctx context.Context, nftTokenID, status string) (*DeploymentUpdate, error) {
	w, err := c.WatchDeployment(ctx, nftTokenID, WatchOptions{})
	if err != nil {
		return nil, err
	}
	defer w.Close()
	for {
		u, err := w.Next()
		if err == io.EOF {
			return nil, &Error{Code: CodeConflict, Message: "the deployment ended before reaching " + status}
		}
		if err != nil {
			return nil, err
		}
		if u.Status == status {
			return u, nil
		}
		if u.Status == StatusFailed {
			return nil, &Error{Code: CodeDeploymentFailed, Message: "deployment failed: " + u.Message, Details: map[string]any{}}
		}
	}
}

// ChatStreamWS sends a message and streams the answer over the WebSocket (chat_stream).
func (c *Client) ChatStreamWS(ctx context.Context, nftTokenID string, req ChatRequest) (*ChatStream, error) {
	remote, err := c.agentRoute(ctx, nftTokenID)
	if err != nil {
		return nil, err
	}
	conn, err := c.dialWSAt(ctx, remote)
	if err != nil {
		return nil, err
	}
	msg := map[string]any{"type": "chat_stream", "nft_token_id": nftTokenID, "message": req.Message}
	if req.ConversationID != "" {
		msg["conversation_id"] = req.ConversationID
	}
	if err := conn.send(msg); err != nil {
		conn.close()
		return nil, &Error{Code: CodeNetworkError, Message: err.Error()}
	}
	conv := req.ConversationID
	return &ChatStream{
		close: conn.close,
		next: func() (*ChatChunk, error) {
			for {
				m, err := conn.recv(ctx)
				if err != nil {
					if closeCode(err) == WSCloseTokenExpired {
						return nil, &Error{Code: CodeTokenExpired, Message: "the token expired during the answer"}
					}
					if ctx.Err() != nil {
						return nil, ctx.Err()
					}
					return nil, &Error{Code: CodeNetworkError, Message: fmt.Sprintf("websocket closed: %v", err)}
				}
				switch m["type"] {
				case "subscribed":
					if id, ok := m["conversation_id"].(string); ok && conv == "" && m["channel"] == "chat" {
						conv = id
					}
				case "chat_chunk":
					if id, _ := m["conversation_id"].(string); conv != "" && id != conv {
						continue
					}
					var f chatFrame
					if err := decodeInto(m, &f); err != nil {
						return nil, err
					}
					chunk, err := f.result()
					if err == nil && chunk.Done {
						conn.close()
					}
					return chunk, err
				case "error":
					return nil, frameError(m)
				}
			}
		},
	}, nil
}
