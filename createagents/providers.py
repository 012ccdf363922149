"""Provider names -> chat models: part of the composition root, with `agent.py`.

Built-in providers are imported only when chosen, so their SDKs load only
then. Third-party providers register a factory under the
`createagents.providers` entry point group; a factory takes
`ProviderOptions` and returns a `ChatModel`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from .application.ports import ChatModel
from .domain.errors import ConfigurationError

ENTRY_POINT_GROUP = "createagents.providers"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderOptions:
    """What `CreateAgent` passes to a provider factory."""

    model: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    api_version: str | None = None
    timeout: float = 600.0
    max_retries: int = 2


ProviderFactory = Callable[[ProviderOptions], ChatModel]


def _test(options: ProviderOptions) -> ChatModel:
    from .adapters.offline_models import TestModel

    return TestModel()


_BUILTIN: dict[str, ProviderFactory] = {"test": _test}


def _entry_point_factories() -> dict[str, Callable[[], ProviderFactory]]:
    from importlib.metadata import entry_points

    return {ep.name: ep.load for ep in entry_points(group=ENTRY_POINT_GROUP)}


def provider_names() -> list[str]:
    """Every provider name `CreateAgent` accepts here."""
    return sorted({*_BUILTIN, *_entry_point_factories()})


def build_model(provider: str | ChatModel, options: ProviderOptions) -> ChatModel:
    if isinstance(provider, ChatModel):
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
