"""OpenAI's Responses API (OpenAI and Azure OpenAI): reasoning kept across turns, hosted tools.

The same adapter as Chat Completions (`openai_chat`): one transport, one
retry policy, one error map, one SSE parser; this API adds only its request
shaping (`_responses_wire`) and its event parsing (`_responses_stream`).
"""

from __future__ import annotations

from typing import Any

from ..application.ports import ChatRequest
from ..domain.settings import ModelSettings
from . import _responses_wire as wire
from ._openai_errors import ErrorContext
from ._openai_model import EventReader, OpenAIModel
from ._responses_stream import ResponsesReader


class OpenAIResponsesModel(OpenAIModel):
    """The chat-model port over `POST /responses`, streamed, with the history kept here (`store: false`).

    Built by `CreateAgent(provider="openai" | "azure", api="responses")`, or
    from your own `openai.AsyncOpenAI` / `AsyncAzureOpenAI` client:
    `OpenAIResponsesModel(client)`. Hosted tools (`createagents.openai_tools`)
    pass through to OpenAI, which runs them.
    """

    api = "responses"
    hosted_tool_types = wire.HOSTED_TOOL_TYPES
    output_modes = ("native", "tool", "prompted")

    def check_settings(self, settings: ModelSettings) -> None:
        wire.check(settings, self.provider)

    def body(self, request: ChatRequest) -> dict[str, Any]:
        return wire.params(
            request.model, request.messages, request.tools, request.hosted_tools, request.settings, request.output
        )

    def reader(self, context: ErrorContext) -> EventReader:
        return ResponsesReader(context)
