"""createagents: build an LLM agent once, run it on OpenAI, Azure OpenAI, Ollama or any OpenAI-compatible server."""

import logging as _logging

from .adapters.memory_store import InMemoryConversationStore
from .adapters.structured_logging import configure_logging
from .agent import CreateAgent
from .application.conversation import Conversation
from .application.ports import ChatModel, ChatRequest, ConversationStore, MetricsSink, RunObserver
from .application.reply import Answer, EventHandler, Reply
from .application.tools import BaseTool, ClientTool, Tool, client_tool, tool
from .domain.errors import (
    AgentClosedError,
    ApprovalExpiredError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ContentFilterError,
    ContextLengthError,
    CreateAgentsError,
    InvalidDecisionsError,
    MaxTurnsExceededError,
    ModelNotFoundError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
    ReplyConsumedError,
    ResponseFormatError,
    ResumeError,
    StoreUnavailableError,
    ToolError,
    ToolTimeoutError,
    TurnNotPausedError,
)
from .domain.events import (
    ApprovalRequested,
    ModelCallFinished,
    ModelEvent,
    ResponseDone,
    RunEvent,
    RunFailed,
    RunFinished,
    RunPaused,
    RunStarted,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallFinished,
    ToolCallReady,
    ToolCallStarted,
)
from .domain.limits import RunLimits
from .domain.messages import (
    AssistantMessage,
    Message,
    SystemMessage,
    ToolCall,
    ToolMessage,
    ToolSpec,
    Usage,
    UserMessage,
)
from .domain.metrics import MetricsRecord, ModelCallRecord, ToolCallRecord
from .domain.pending import Decision, Deny, Paused, PendingCall
from .domain.settings import ModelSettings
from .providers import ProviderOptions

__version__ = "0.1.0"

_logging.getLogger("createagents").addHandler(_logging.NullHandler())  # a library is silent unless asked

__all__ = [
    "AgentClosedError",
    "Answer",
    "ApprovalExpiredError",
    "ApprovalRequested",
    "AssistantMessage",
    "AuthenticationError",
    "BadRequestError",
    "BaseTool",
    "ChatModel",
    "ChatRequest",
    "ClientTool",
    "ConfigurationError",
    "ContentFilterError",
    "ContextLengthError",
    "Conversation",
    "ConversationStore",
    "CreateAgent",
    "CreateAgentsError",
    "Decision",
    "Deny",
    "EventHandler",
    "InMemoryConversationStore",
    "InvalidDecisionsError",
    "MaxTurnsExceededError",
    "Message",
    "MetricsRecord",
    "MetricsSink",
    "ModelCallFinished",
    "ModelCallRecord",
    "ModelEvent",
    "ModelNotFoundError",
    "ModelSettings",
    "Paused",
    "PendingCall",
    "ProviderError",
    "ProviderOptions",
    "ProviderTimeoutError",
    "ProviderUnavailableError",
    "RateLimitError",
    "Reply",
    "ReplyConsumedError",
    "ResponseDone",
    "ResponseFormatError",
    "ResumeError",
    "RunEvent",
    "RunFailed",
    "RunFinished",
    "RunLimits",
    "RunObserver",
    "RunPaused",
    "RunStarted",
    "StoreUnavailableError",
    "SystemMessage",
    "TextDelta",
    "ThinkingDelta",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallFinished",
    "ToolCallReady",
    "ToolCallRecord",
    "ToolCallStarted",
    "ToolError",
    "ToolMessage",
    "ToolSpec",
    "ToolTimeoutError",
    "TurnNotPausedError",
    "Usage",
    "UserMessage",
    "__version__",
    "client_tool",
    "configure_logging",
    "tool",
]
