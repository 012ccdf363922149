"""createagents: build an LLM agent once, run it on OpenAI, Azure OpenAI, Ollama or any OpenAI-compatible server."""

import logging as _logging

from .adapters.memory_store import InMemoryConversationStore
from .adapters.structured_logging import configure_logging
from .agent import CreateAgent
from .application.conversation import Conversation
from .application.ports import ChatModel, ChatRequest, ConversationStore, MetricsSink, RunObserver
from .application.reply import Answer, EventHandler, Reply
from .application.tools import BaseTool, Tool, tool
from .domain.errors import (
    AgentClosedError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ContentFilterError,
    ContextLengthError,
    CreateAgentsError,
    MaxTurnsExceededError,
    ModelNotFoundError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
    ReplyConsumedError,
    ResponseFormatError,
    StoreUnavailableError,
    ToolError,
    ToolTimeoutError,
)
from .domain.events import (
    ModelCallFinished,
    ModelEvent,
    ResponseDone,
    RunEvent,
    RunFailed,
    RunFinished,
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
from .domain.settings import ModelSettings
from .providers import ProviderOptions

__version__ = "0.1.0"

_logging.getLogger("createagents").addHandler(_logging.NullHandler())  # a library is silent unless asked

__all__ = [
    "AgentClosedError",
    "Answer",
    "AssistantMessage",
    "AuthenticationError",
    "BadRequestError",
    "BaseTool",
    "ChatModel",
    "ChatRequest",
    "ConfigurationError",
    "ContentFilterError",
    "ContextLengthError",
    "Conversation",
    "ConversationStore",
    "CreateAgent",
    "CreateAgentsError",
    "EventHandler",
    "InMemoryConversationStore",
    "MaxTurnsExceededError",
    "MetricsRecord",
    "MetricsSink",
    "ModelCallRecord",
    "Message",
    "ModelCallFinished",
    "ModelEvent",
    "ModelNotFoundError",
    "ModelSettings",
    "ProviderError",
    "ProviderOptions",
    "ProviderTimeoutError",
    "ProviderUnavailableError",
    "RateLimitError",
    "Reply",
    "ReplyConsumedError",
    "ResponseDone",
    "ResponseFormatError",
    "RunEvent",
    "RunFailed",
    "RunFinished",
    "RunLimits",
    "RunObserver",
    "RunStarted",
    "StoreUnavailableError",
    "SystemMessage",
    "TextDelta",
    "ThinkingDelta",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallFinished",
    "ToolCallRecord",
    "ToolCallReady",
    "ToolCallStarted",
    "ToolError",
    "ToolMessage",
    "ToolSpec",
    "ToolTimeoutError",
    "Usage",
    "UserMessage",
    "__version__",
    "configure_logging",
    "tool",
]
