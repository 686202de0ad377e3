package panthers

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// ChatStream is a streamed answer, read chunk by chunk:
//
//	for {
//		chunk, err := s.Next()
//		if err == io.EOF { break }
//		if err != nil { return err }
//		fmt.Print(chunk.Content)
//	}
//
// The last chunk has Done set and the whole Response; Next then returns io.EOF. A turn that
// fails returns an *Error (Details carry the partial "response"). Close releases the connection.
type ChatStream struct {
	next  func() (*ChatChunk, error)
	close func()
	ended bool
}

// Next returns the next chunk, io.EOF after the final one.
func (s *ChatStream) Next() (*ChatChunk, error) {
	if s.ended {
		return nil, io.EOF
	}
	chunk, err := s.next()
	if err != nil || chunk.Done {
		s.ended = true
		if err != nil {
			s.Close()
		}
	}
	return chunk, err
}

// Close ends the stream early (safe to call more than once).
func (s *ChatStream) Close() {
	s.ended = true
	if s.close != nil {
		s.close()
		s.close = nil
	}
}

// Collect reads the stream to its end and returns every chunk (the last one is final).
func (s *ChatStream) Collect() ([]ChatChunk, error) {
	var out []ChatChunk
	defer s.Close()
	for {
		c, err := s.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, *c)
	}
}

// chatFrame is an SSE data payload or a chat_chunk WS frame.
type chatFrame struct {
	ChatChunk
	Type  string         `json:"type"`
	Error map[string]any `json:"error"`
}

func (f *chatFrame) result() (*ChatChunk, error) {
	if f.Done && f.Error != nil {
		raw, _ := json.Marshal(map[string]any{"error": f.Error})
		e, ok := errorFromBody(raw, 0)
		if !ok {
			e = &Error{Code: CodeInvalidResponse, Message: "bad error in final chunk", Details: map[string]any{}}
		}
		e.Details["response"] = f.Response
		e.Details["conversation_id"] = f.ConversationID
		return nil, e
	}
	c := f.ChatChunk
	return &c, nil
}

// ChatStream sends a message and streams the answer over Server-Sent Events (POST chat,
// stream: true). The context bounds the whole stream.
func (c *Client) ChatStream(ctx context.Context, nftTokenID string, req ChatRequest) (*ChatStream, error) {
	body := struct {
		ChatRequest
		Stream bool `json:"stream"`
	}{req, true}
	p, o, err := c.agentCall(ctx, nftTokenID, "chat", callOpts{stream: true})
	if err != nil {
		return nil, err
	}
	resp, err := c.send(ctx, "POST", p, nil, body, o)
	if err != nil {
		return nil, err
	}
	return sseChatStream(resp), nil
}

func sseChatStream(resp *http.Response) *ChatStream {
	r := bufio.NewReaderSize(resp.Body, 64*1024)
	return &ChatStream{
		close: func() { resp.Body.Close() },
		next: func() (*ChatChunk, error) {
			for {
				data, err := readSSEData(r)
				if err != nil {
					if err == io.EOF {
						return nil, &Error{Code: CodeNetworkError, Message: "the chat stream ended before its final event"}
					}
					return nil, &Error{Code: CodeNetworkError, Message: err.Error()}
				}
				var f chatFrame
				if json.Unmarshal([]byte(data), &f) != nil {
					continue
				}
				chunk, err := f.result()
				if err == nil && chunk.Done {
					resp.Body.Close()
				}
				return chunk, err
			}
		},
	}
}

// readSSEData returns the data of the next event (comments and other fields skipped).
func readSSEData(r *bufio.Reader) (string, error) {
	var data []string
	for {
		line, err := r.ReadString('\n')
		if err != nil && (err != io.EOF || line == "") {
			if len(data) > 0 && err == io.EOF {
				return strings.Join(data, "\n"), nil
			}
			return "", err
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			if len(data) > 0 {
				return strings.Join(data, "\n"), nil
			}
		case strings.HasPrefix(line, ":"):
		default:
			name, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			if name == "data" {
				data = append(data, value)
			}
		}
	}
}
