package panthers

// Request and response types of the API (JSON field names as on the wire).

// Challenge is the answer of POST /auth/challenge.
type Challenge struct {
	Message   string `json:"message"`
	Nonce     string `json:"nonce"`
	ExpiresAt string `json:"expires_at"`
}

// VerifyRequest is the body of POST /auth/verify.
type VerifyRequest struct {
	WalletAddress string `json:"wallet_address"`
	NFTTokenID    string `json:"nft_token_id"`
	Signature     string `json:"signature"`
	Message       string `json:"message"`
	PublicKey     string `json:"public_key,omitempty"`
}

// Session holds the tokens of POST /auth/verify. SigningKey is set when the server requires
// signed requests.
type Session struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
	SessionID    string `json:"session_id"`
	SigningKey   string `json:"signing_key,omitempty"`
}

// TokenRefresh is the answer of POST /auth/refresh (the refresh token rotates).
type TokenRefresh struct {
	AccessToken  string `json:"access_token"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

// SessionInfo is the answer of GET /auth/session.
type SessionInfo struct {
	WalletAddress        string `json:"wallet_address"`
	NFTTokenID           string `json:"nft_token_id"`
	SessionID            string `json:"session_id"`
	ExpiresAt            string `json:"expires_at"`
	AccessTokenExpiresAt string `json:"access_token_expires_at,omitempty"`
}

// Resources of a deployment; zero fields take the server's defaults.
type Resources struct {
	CPU      float64 `json:"cpu,omitempty"`
	MemoryMB int     `json:"memory_mb,omitempty"`
	DiskMB   int     `json:"disk_mb,omitempty"`
	GPU      int     `json:"gpu,omitempty"`
}

// AgentSpec is the character of a deployed agent; empty fields take the defaults.
type AgentSpec struct {
	Name         string   `json:"name,omitempty"`
	SystemPrompt string   `json:"system_prompt,omitempty"`
	Model        string   `json:"model,omitempty"`
	Capabilities []string `json:"capabilities,omitempty"`
}

// DeployRequest is the body of POST /deployments. Provider: local, akash or secret_vm.
type DeployRequest struct {
	NFTTokenID string     `json:"nft_token_id"`
	Provider   string     `json:"provider"`
	Resources  *Resources `json:"resources,omitempty"`
	Agent      *AgentSpec `json:"agent,omitempty"`
}

// DeployResult is the 202 answer of POST /deployments.
type DeployResult struct {
	DeploymentID  string  `json:"deployment_id"`
	NFTTokenID    string  `json:"nft_token_id"`
	Status        string  `json:"status"`
	Provider      string  `json:"provider"`
	EndpointURL   *string `json:"endpoint_url"`
	EstimatedTime float64 `json:"estimated_time"`
}

// Health is the last health check of a deployment.
type Health struct {
	OK        bool    `json:"ok"`
	CheckedAt string  `json:"checked_at"`
	LatencyMS float64 `json:"latency_ms"`
	Message   string  `json:"message"`
}

// Deployment statuses.
const (
	StatusPending   = "pending"
	StatusDeploying = "deploying"
	StatusRunning   = "running"
	StatusStopping  = "stopping"
	StatusStopped   = "stopped"
	StatusFailed    = "failed"
)

// Deployment is the answer of GET /deployments/{nft}.
type Deployment struct {
	DeploymentID string         `json:"deployment_id"`
	NFTTokenID   string         `json:"nft_token_id"`
	Status       string         `json:"status"`
	Provider     string         `json:"provider"`
	EndpointURL  *string        `json:"endpoint_url"`
	Progress     float64        `json:"progress"`
	CreatedAt    string         `json:"created_at"`
	UpdatedAt    string         `json:"updated_at"`
	Resources    Resources      `json:"resources"`
	Agent        AgentSpec      `json:"agent"`
	Health       *Health        `json:"health"`
	Error        *string        `json:"error"`
	Details      map[string]any `json:"details"`
}

// StopResult is the answer of DELETE /deployments/{nft}.
type StopResult struct {
	Message      string `json:"message"`
	Status       string `json:"status"`
	DeploymentID string `json:"deployment_id"`
}

// Pagination of list answers.
type Pagination struct {
	Total   int  `json:"total"`
	Limit   int  `json:"limit"`
	Offset  int  `json:"offset"`
	HasMore bool `json:"has_more"`
}

// ListOptions filter GET /deployments; zero values are left out.
type ListOptions struct {
	Status   string
	Provider string
	Limit    int
	Offset   int
	Sort     string // created_at, status, nft_token_id
	Order    string // asc, desc
}

// DeploymentList is the answer of GET /deployments.
type DeploymentList struct {
	Deployments []Deployment `json:"deployments"`
	Total       int          `json:"total"`
	Pagination  Pagination   `json:"pagination"`
}

// DeploymentUpdate is a deployment_status WebSocket frame (or the current state, first).
type DeploymentUpdate struct {
	DeploymentID string  `json:"deployment_id"`
	NFTTokenID   string  `json:"nft_token_id"`
	Status       string  `json:"status"`
	Progress     float64 `json:"progress"`
	Message      string  `json:"message"`
	EndpointURL  *string `json:"endpoint_url"`
	Timestamp    string  `json:"timestamp"`
}

// ChatRequest is a message to an agent; ConversationID continues a conversation.
type ChatRequest struct {
	Message        string `json:"message"`
	ConversationID string `json:"conversation_id,omitempty"`
}

// ChatResponse is the answer of POST chat (not streamed).
type ChatResponse struct {
	Response       string `json:"response"`
	ConversationID string `json:"conversation_id"`
	Timestamp      string `json:"timestamp"`
	TokensUsed     int    `json:"tokens_used"`
}

// ChatChunk is one piece of a streamed answer. The last has Done set and carries the whole
// Response, the ConversationID, TokensUsed and whether the answer is Incomplete.
type ChatChunk struct {
	Content        string `json:"content"`
	Done           bool   `json:"done"`
	ConversationID string `json:"conversation_id,omitempty"`
	Response       string `json:"response,omitempty"`
	Timestamp      string `json:"timestamp,omitempty"`
	TokensUsed     int    `json:"tokens_used,omitempty"`
	Incomplete     bool   `json:"incomplete,omitempty"`
}

// ChatMessage is one message of a conversation's history.
type ChatMessage struct {
	Role       string `json:"role"`
	Content    string `json:"content"`
	Timestamp  string `json:"timestamp"`
	Tokens     int    `json:"tokens"`
	Incomplete bool   `json:"incomplete"`
}

// HistoryOptions select a page of history; zero Limit and Offset take the defaults.
type HistoryOptions struct {
	ConversationID string
	Limit          int
	Offset         int
}

// ChatHistory is the answer of GET chat/history (oldest first).
type ChatHistory struct {
	Messages       []ChatMessage `json:"messages"`
	Total          int           `json:"total"`
	ConversationID string        `json:"conversation_id"`
	Pagination     Pagination    `json:"pagination"`
}

// ClearResult is the answer of POST chat/clear.
type ClearResult struct {
	Message        string `json:"message"`
	ConversationID string `json:"conversation_id"`
	Deleted        int    `json:"deleted"`
}

// AgentHealth is the answer of an agent's GET health.
type AgentHealth struct {
	Status  string  `json:"status"`
	Version string  `json:"version"`
	Uptime  float64 `json:"uptime"`
}

// AgentInfo is the answer of an agent's GET info.
type AgentInfo struct {
	Name         string   `json:"name"`
	NFTTokenID   string   `json:"nft_token_id"`
	Capabilities []string `json:"capabilities"`
	Model        string   `json:"model"`
	Status       string   `json:"status"`
}

// ServiceHealth is the answer of GET /health.
type ServiceHealth struct {
	Status            string  `json:"status"`
	Version           string  `json:"version"`
	Uptime            float64 `json:"uptime"`
	DeploymentsActive int     `json:"deployments_active"`
}

// VersionInfo is the answer of GET /v1.
type VersionInfo struct {
	Version    string `json:"version"`
	APIVersion string `json:"api_version"`
	OpenAPI    string `json:"openapi"`
}
