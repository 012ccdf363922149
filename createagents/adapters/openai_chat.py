"""OpenAI Chat Completions: OpenAI, Azure OpenAI and every OpenAI-compatible server.

The model asks a transport (`_transport`) for an opened response, retries as
the shared policy says (`_retry`), maps statuses and transport failures to
our errors (`_openai_errors`) and parses the event stream (`_sse`,
`_openai_stream`): each of these once (`_openai_model`), whichever transport
carried the bytes. Two transports exist: our pooled aiohttp one
(`_openai_http`), used for every agent built with `provider="openai"` /
`"azure"`, which never imports the `openai` SDK; and the SDK one
(`_openai_sdk`), for a client the user built.
"""

from __future__ import annotations

from typing import Any

from ..application.ports import ChatRequest
from ..domain.output import OutputMode
from ..domain.settings import ModelSettings
from ._openai_errors import ErrorContext
from ._openai_model import EventReader, OpenAIModel
from ._openai_stream import StreamReader


class OpenAIChatModel(OpenAIModel):
    """The chat-model port over the Chat Completions API.

    Give it an `openai.AsyncOpenAI` / `AsyncAzureOpenAI` client you built
    (`OpenAIChatModel(client)`): requests then go through the client (which
    stays yours: closing the agent does not close it). `provider` names it in
    errors and metrics; the wire profile (which token-limit field, whether
    `top_k` is allowed) comes from the client's base URL unless `profile`
    says otherwise; `secrets` are masked in every error message.
    """

    def __init__(self, client: Any = None, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self.output_modes: tuple[OutputMode, ...] = self.profile.output_modes

    def check_settings(self, settings: ModelSettings) -> None:
        self.profile.check(settings, self.provider)

    def body(self, request: ChatRequest) -> dict[str, Any]:
        return self.profile.params(request.model, request.messages, request.tools, request.settings, request.output)

    def reader(self, context: ErrorContext) -> EventReader:
        return StreamReader(context)
