"""The one exception tree of createagents.

Every error the library raises on purpose derives from `CreateAgentsError`,
so `except CreateAgentsError` catches them all. Bugs (`TypeError`,
`AttributeError`, `KeyError`) are never wrapped and surface as they are.

    CreateAgentsError
    ├── ConfigurationError            bad argument, setting, provider or tool definition
    ├── ProviderError                 the model provider failed; carries provider, model, status, request id
    │   ├── AuthenticationError       401 / 403
    │   ├── RateLimitError            429; `retry_after` in seconds when the provider said
    │   ├── ProviderUnavailableError  5xx, connection refused or dropped, stream cut short
    │   ├── ProviderTimeoutError      no answer within the request timeout
    │   ├── BadRequestError           any other 4xx, with the provider's message
    │   │   ├── ContextLengthError    the prompt does not fit the model's context window
    │   │   └── ContentFilterError    refused by a content filter; `categories` names why
    │   ├── ModelNotFoundError        the provider does not know the model
    │   └── ResponseFormatError       the provider sent something that is not its documented format
    ├── ToolError                     a tool call failed; carries tool_name (see below)
    │   └── ToolTimeoutError          a tool ran past its timeout
    ├── MaxTurnsExceededError         the run needed more model round trips than allowed; carries the partial run
    ├── ReplyConsumedError            a reply was consumed a second time
    ├── StoreUnavailableError         the conversation store could not be reached or dropped the connection
    └── AgentClosedError              the agent was used after `aclose()`

Tool errors: calling a tool directly (`await my_tool({...})`) raises
`ToolError` for arguments its schema refuses and `ToolTimeoutError` past the
tool's own timeout. Inside a run nothing is raised: every failure becomes an
error result the model reads, and a tool that raises `ToolError("no such
city")` itself sends just that message (`"Error: no such city"`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .messages import Message


class CreateAgentsError(Exception):
    """Root of every error createagents raises on purpose; `message` is the text without context."""

    def __init__(self, message: str = "", *args: object) -> None:
        self.message = message
        super().__init__(message, *args)


class ConfigurationError(CreateAgentsError, ValueError):
    """A bad argument, setting, provider name or tool definition."""


class ProviderError(CreateAgentsError):
    """The model provider failed. Never carries secrets."""

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        model: str = "",
        status_code: int | None = None,
        request_id: str | None = None,
    ) -> None:
        self.message = message
        self.provider = provider
        self.model = model
        self.status_code = status_code
        self.request_id = request_id
        super().__init__(message)

    def __str__(self) -> str:
        where = ", ".join(
            f"{k}={v}"
            for k, v in (
                ("provider", self.provider),
                ("model", self.model),
                ("status", self.status_code),
                ("request_id", self.request_id),
            )
            if v
        )
        return f"{self.message} ({where})" if where else self.message


class AuthenticationError(ProviderError):
    """The provider rejected the credentials (401) or the access (403)."""


class RateLimitError(ProviderError):
    """Too many requests (429); wait `retry_after` seconds when it is set."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)  # type: ignore[arg-type]


class ProviderUnavailableError(ProviderError):
    """The provider could not be reached, failed (5xx) or cut the stream short."""


class ProviderTimeoutError(ProviderUnavailableError):
    """The provider did not answer within the request timeout."""


class BadRequestError(ProviderError):
    """The provider rejected the request (a 4xx other than auth and rate limits)."""


class ContextLengthError(BadRequestError):
    """The conversation does not fit the model's context window."""


class ContentFilterError(BadRequestError):
    """A content filter refused the prompt or the answer."""

    def __init__(self, message: str, *, categories: Sequence[str] = (), **kw: object) -> None:
        self.categories = tuple(categories)
        super().__init__(message, **kw)  # type: ignore[arg-type]


class ModelNotFoundError(ProviderError):
    """The provider does not serve the requested model."""


class ResponseFormatError(ProviderError):
    """The provider sent data that does not follow its wire format."""


class ToolError(CreateAgentsError):
    """A tool call failed; `tool_name` names the tool.

    Raised by a direct call of a tool (`await my_tool({...})`) for invalid
    arguments. Raise it in your own tool to tell the model what went wrong:
    inside a run its message, as it is, becomes the call's error result.
    """

    def __init__(self, message: str, *, tool_name: str = "") -> None:
        self.tool_name = tool_name
        super().__init__(message)


class ToolTimeoutError(ToolError):
    """A tool ran past its timeout: raised by a direct call; inside a run, an error result."""


class MaxTurnsExceededError(CreateAgentsError):
    """The run used all its model round trips; `messages` and `text` keep what it did."""

    def __init__(self, message: str, *, messages: Sequence[Message] = (), text: str = "") -> None:
        self.messages = tuple(messages)
        self.text = text
        super().__init__(message)


class ReplyConsumedError(CreateAgentsError):
    """A reply streams once; it was consumed already."""


class StoreUnavailableError(CreateAgentsError):
    """The conversation store could not be reached, dropped the connection or refused a command.

    `operation` names the store method. A write that fails this way wrote
    nothing, or all of it: never a part.
    """

    def __init__(self, message: str = "", *, operation: str = "") -> None:
        self.operation = operation
        super().__init__(message)


class AgentClosedError(CreateAgentsError):
    """The agent was closed and cannot run again."""


class ResumeError(CreateAgentsError):
    """A paused turn cannot be resumed as asked; nothing was changed (except that an expired turn is gone)."""


class TurnNotPausedError(ResumeError, LookupError):
    """No paused turn has this id: it never paused, was resumed already, or was deleted."""


class InvalidDecisionsError(ResumeError, ValueError):
    """The decisions do not answer the paused turn's calls: an id unknown, missing, or of the wrong kind."""


class ApprovalExpiredError(ResumeError):
    """The paused turn waited past its approval timeout; it is removed and fails, leaving the history as it was."""


# -- background runs (createagents.application.background) -----------------------------------------------------


class RunNotFoundError(CreateAgentsError, LookupError):
    """No background run has this id: it never existed, expired, or was deleted."""


class RunNotActiveError(ConfigurationError):
    """The run already ended (completed, failed or incomplete), so it cannot be cancelled."""


class InvalidSequenceError(ConfigurationError):
    """An event sequence number to start after that is not a whole number >= -1, or lies past a finished run's end."""


class OutputValidationError(CreateAgentsError):
    """The model's answer did not fit the output type, after every retry (`output_retries`).

    `raw` is the last answer as the model wrote it; `errors` are pydantic's
    validation errors of it (a list of dicts: `loc`, `msg`, `type`).
    Nothing of the turn is in the history.
    """

    def __init__(self, message: str, *, raw: str, errors: list[dict[str, Any]], attempts: int) -> None:
        super().__init__(message)
        self.raw = raw
        self.errors = errors
        self.attempts = attempts
