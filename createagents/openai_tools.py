"""OpenAI's hosted tools: they run on OpenAI's side, beside your function tools, with `api="responses"`.

    from createagents import CreateAgent, openai_tools
    agent = CreateAgent(provider="openai", model="gpt-5-mini", api="responses",
                        tools=[get_weather, openai_tools.web_search()])

Their progress and results show as `HostedToolCall` events; nothing runs
here. An agent whose provider cannot run a hosted tool (Chat Completions,
Ollama, the test model) refuses it when it is built.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from .domain.messages import HostedTool

__all__ = ["HostedTool", "code_interpreter", "file_search", "hosted_tool", "image_generation", "web_search"]


def web_search(
    *,
    search_context_size: Literal["low", "medium", "high"] | None = None,
    user_location: Mapping[str, Any] | None = None,
    allowed_domains: Sequence[str] | None = None,
) -> HostedTool:
    """Search the web; `allowed_domains` limits the sources (OpenAI's `filters.allowed_domains`)."""
    options: dict[str, Any] = {}
    if search_context_size is not None:
        options["search_context_size"] = search_context_size
    if user_location is not None:
        options["user_location"] = {"type": "approximate", **user_location}
    if allowed_domains is not None:
        options["filters"] = {"allowed_domains": list(allowed_domains)}
    return HostedTool(type="web_search", options=options)


def file_search(
    vector_store_ids: Sequence[str],
    *,
    max_num_results: int | None = None,
    filters: Mapping[str, Any] | None = None,
) -> HostedTool:
    """Search your files in OpenAI vector stores."""
    if isinstance(vector_store_ids, str) or not vector_store_ids:
        from .domain.errors import ConfigurationError

        raise ConfigurationError("file_search needs a list of vector store ids, e.g. ['vs_123']")
    options: dict[str, Any] = {"vector_store_ids": list(vector_store_ids)}
    if max_num_results is not None:
        options["max_num_results"] = max_num_results
    if filters is not None:
        options["filters"] = dict(filters)
    return HostedTool(type="file_search", options=options)


def code_interpreter(container: str | Mapping[str, Any] | None = None) -> HostedTool:
    """Run Python in an OpenAI container; by default a new one each time (`{"type": "auto"}`)."""
    box = {"type": "auto"} if container is None else container if isinstance(container, str) else dict(container)
    return HostedTool(type="code_interpreter", options={"container": box})


def image_generation(**options: Any) -> HostedTool:
    """Generate images (options as OpenAI documents them: size, quality, background...)."""
    return HostedTool(type="image_generation", options=dict(options))


def hosted_tool(type: str, **options: Any) -> HostedTool:
    """Any other hosted tool type, passed through as `{"type": type, **options}`."""
    return HostedTool(type=type, options=dict(options))
