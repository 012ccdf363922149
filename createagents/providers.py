"""Provider names -> chat models: part of the composition root, with `agent.py`.

Built-in providers are imported only when chosen, so their SDKs load only
then. Third-party providers register a factory under the
`createagents.providers` entry point group; a factory takes
`ProviderOptions` and returns a `ChatModel`.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from .application.ports import ChatModel
from .domain.errors import ConfigurationError

ENTRY_POINT_GROUP = "createagents.providers"
OPENAI_API = "https://api.openai.com/v1"

ApiKey: TypeAlias = str | Callable[[], str | Awaitable[str]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderOptions:
    """What `CreateAgent` passes to a provider factory."""

    model: str | None = None
    base_url: str | None = None
    api_key: ApiKey | None = None  # a callable is a token provider (Microsoft Entra ID)
    api_version: str | None = None
    timeout: float = 600.0
    max_retries: int = 2
    api: str = "chat"  # which of the provider's APIs: "chat" (Chat Completions) or "responses" (OpenAI, Azure)
    extra: Mapping[str, Any] = field(default_factory=dict)  # provider-specific, see each factory


ProviderFactory = Callable[[ProviderOptions], ChatModel]


APIS = ("chat", "responses")


def _chat_only(provider: str, options: ProviderOptions) -> None:
    if options.api != "chat":
        raise ConfigurationError(
            f"provider {provider!r} has one API, api='chat'; api={options.api!r} is for 'openai' and 'azure'"
        )


def _test(options: ProviderOptions) -> ChatModel:
    from .adapters.offline_models import TestModel

    _chat_only("test", options)
    _allow_extra("test", options, ("text", "delay"))
    return TestModel(**options.extra)


def _require_model(provider: str, options: ProviderOptions) -> str:
    if not options.model:
        raise ConfigurationError(f"provider {provider!r} needs a model: CreateAgent(provider={provider!r}, model=...)")
    return options.model


def _secrets(api_key: ApiKey | None, url: str | None = None) -> tuple[str, ...]:
    """Keys to mask in errors and logs, wherever they came from (an argument, the environment, a URL's password)."""
    from urllib.parse import unquote, urlsplit

    from .adapters._secrets import register_secret

    found = [api_key] if isinstance(api_key, str) else []
    password = urlsplit(url).password if url else None
    if password:
        found.append(unquote(password))
    for secret in found:
        register_secret(secret)
    return tuple(found)


def _openai(options: ProviderOptions) -> ChatModel:
    from .adapters._openai_endpoint import async_token, openai_endpoint
    from .adapters._openai_wire import WireProfile

    _require_model("openai", options)
    _allow_extra("openai", options, ("headers",))
    base_url = (options.base_url or env("OPENAI_BASE_URL") or OPENAI_API).rstrip("/")
    api_key = options.api_key or env("OPENAI_API_KEY")
    profile = WireProfile.for_url(base_url)
    if profile.name == "openai" and not api_key:
        raise ConfigurationError(
            "provider 'openai' needs an API key: set OPENAI_API_KEY or pass api_key=...; "
            "for a local OpenAI-compatible server, pass base_url=..."
        )
    endpoint = openai_endpoint(
        base_url=base_url,
        api_key=api_key if isinstance(api_key, str) else None,
        token=async_token(api_key) if callable(api_key) else None,
        headers=options.extra.get("headers"),
        organization=env("OPENAI_ORG_ID"),
        project=env("OPENAI_PROJECT_ID"),
        timeout=options.timeout,
        path=_OPENAI_PATHS[options.api],
    )
    return _openai_adapter(options.api)(
        provider="openai",
        profile=profile,
        secrets=_secrets(api_key, base_url),
        max_retries=options.max_retries,
        transport=_transport(endpoint),
    )


def _azure(options: ProviderOptions) -> ChatModel:
    from .adapters._openai_endpoint import async_token, azure_endpoint
    from .adapters._openai_wire import AZURE

    _require_model("azure", options)
    _allow_extra("azure", options, ("headers",))
    resource = options.base_url or env("AZURE_OPENAI_ENDPOINT")
    if not resource:
        raise ConfigurationError(
            "provider 'azure' needs the resource endpoint: set AZURE_OPENAI_ENDPOINT or pass "
            "base_url='https://<resource>.openai.azure.com'"
        )
    api_key = options.api_key or env("AZURE_OPENAI_API_KEY")
    if not api_key:
        raise ConfigurationError(
            "provider 'azure' needs credentials: set AZURE_OPENAI_API_KEY, pass api_key=..., "
            "or pass api_key=<a Microsoft Entra ID token provider>"
        )
    endpoint = azure_endpoint(
        endpoint=resource,
        api_key=api_key if isinstance(api_key, str) else None,
        token=async_token(api_key) if callable(api_key) else None,
        api_version=options.api_version or env("AZURE_OPENAI_API_VERSION"),
        headers=options.extra.get("headers"),
        timeout=options.timeout,
        path=_OPENAI_PATHS[options.api],
    )
    return _openai_adapter(options.api)(
        provider="azure",
        profile=AZURE,
        secrets=_secrets(api_key, resource),
        max_retries=options.max_retries,
        transport=_transport(endpoint),
    )


_OPENAI_PATHS = {"chat": "chat/completions", "responses": "responses"}


def _openai_adapter(api: str) -> Callable[..., ChatModel]:
    """The OpenAI-family model class of an API ("chat" or "responses"): they share everything else."""
    if api == "responses":
        from .adapters.openai_responses import OpenAIResponsesModel

        return OpenAIResponsesModel
    from .adapters.openai_chat import OpenAIChatModel

    return OpenAIChatModel


def _transport(endpoint: Any) -> Any:
    """Our pooled aiohttp transport; the one seam tests swap for the SDK's (`tests/adapters/test_openai_chat.py`)."""
    from .adapters._openai_http import AiohttpTransport

    return AiohttpTransport(endpoint)


def _ollama(options: ProviderOptions) -> ChatModel:
    from .adapters.ollama_chat import DEFAULT_HOST, OllamaChatModel, ollama_client

    _require_model("ollama", options)
    _chat_only("ollama", options)
    _allow_extra("ollama", options, ("keep_alive", "headers"))
    host = options.base_url or env("OLLAMA_HOST") or DEFAULT_HOST
    if "://" not in host:
        host = f"http://{host}"
    headers = dict(options.extra.get("headers") or {})
    api_key = options.api_key or env("OLLAMA_API_KEY")
    secrets = _secrets(api_key, host)
    if isinstance(api_key, str):
        headers.setdefault("authorization", f"Bearer {api_key}")
    client = ollama_client(host=host, timeout=options.timeout, headers=headers)
    return OllamaChatModel(
        client,
        host=host,
        keep_alive=options.extra.get("keep_alive"),
        max_retries=options.max_retries,
        secrets=secrets,
    )


def _allow_extra(provider: str, options: ProviderOptions, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(options.extra) - set(allowed))
    if unknown:
        raise ConfigurationError(
            f"unknown provider_options {unknown} for {provider!r}; allowed: {', '.join(allowed) or 'none'}"
        )


_BUILTIN: dict[str, ProviderFactory] = {"test": _test, "openai": _openai, "azure": _azure, "ollama": _ollama}


def _entry_point_factories() -> dict[str, Callable[[], ProviderFactory]]:
    from importlib.metadata import entry_points

    return {ep.name: ep.load for ep in entry_points(group=ENTRY_POINT_GROUP)}


def provider_names() -> list[str]:
    """Every provider name `CreateAgent` accepts here."""
    return sorted({*_BUILTIN, *_entry_point_factories()})


def build_model(provider: str | ChatModel, options: ProviderOptions) -> ChatModel:
    if options.api not in APIS:
        raise ConfigurationError(f"api must be 'chat' or 'responses', got {options.api!r}")
    if isinstance(provider, ChatModel):
        if options.api != "chat":
            raise ConfigurationError("api= chooses a built-in provider's API; a ChatModel object speaks its own")
        return provider
    if not isinstance(provider, str):
        raise ConfigurationError(
            f"provider must be a provider name or a ChatModel object, got {type(provider).__name__}"
        )
    factory = _BUILTIN.get(provider)
    if factory is None:
        loader = _entry_point_factories().get(provider)
        if loader is None:
            raise ConfigurationError(
                f"unknown provider {provider!r}; valid providers: {', '.join(provider_names())}, "
                "or pass a ChatModel object"
            )
        factory = loader()
    model = factory(options)
    if not isinstance(model, ChatModel):
        raise ConfigurationError(f"the factory of provider {provider!r} returned {model!r}, not a ChatModel")
    return model


def env(name: str) -> str | None:
    """An environment variable, `None` when unset or empty."""
    return os.environ.get(name) or None
