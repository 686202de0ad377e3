"""Secret Panthers SDK for Python: wallet sign-in, deployments, streaming chat.

    from secret_panthers import PanthersClient, Wallet
    client = PanthersClient("http://127.0.0.1:3000")
    client.sign_in(Wallet.generate(), "42")
"""

from .client import PanthersClient
from .errors import PanthersError
from .signing import sign_request, signing_string
from .types import (
    AgentHealth, AgentInfo, AgentSpec, AgentToken, Challenge, ChatChunk, ChatHistory, ChatMessage, ChatResponse,
    ClearResult, DeployResult, Deployment, DeploymentList, DeploymentUpdate, Health, Pagination,
    Resources, ServiceHealth, Session, SessionInfo, StopResult, TokenRefresh, VersionInfo,
)
from .wallet import Wallet, keccak256, to_checksum_address

__version__ = "0.1.0"

__all__ = [
    "PanthersClient", "PanthersError", "Wallet", "keccak256", "to_checksum_address", "sign_request", "signing_string",
    "AgentHealth", "AgentInfo", "AgentSpec", "AgentToken", "Challenge", "ChatChunk", "ChatHistory", "ChatMessage", "ChatResponse",
    "ClearResult", "DeployResult", "Deployment", "DeploymentList", "DeploymentUpdate", "Health", "Pagination",
    "Resources", "ServiceHealth", "Session", "SessionInfo", "StopResult", "TokenRefresh", "VersionInfo",
]
