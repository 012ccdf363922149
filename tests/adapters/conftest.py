from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import SECRET  # noqa: F401 - the adapter tests import it from here; the fixtures are there too


def sdk_transport_like(endpoint: Any) -> Any:
    """An `openai` client configured as our endpoint is: what a user who built their own client sends.

    The endpoint's path names the API ("/chat/completions" or "/responses").
    """
    from openai import AsyncAzureOpenAI, AsyncOpenAI, DefaultAioHttpClient

    from createagents.adapters._openai_sdk import SdkTransport

    api = "responses" if endpoint.url.endswith("/responses") else "chat"
    common: dict[str, Any] = {
        "http_client": DefaultAioHttpClient(),
        "timeout": endpoint.timeout,
        "max_retries": 0,
        "default_headers": {**endpoint.public, **endpoint.credentials},
    }
    if "api-version" in endpoint.query:
        client: Any = AsyncAzureOpenAI(
            azure_endpoint=endpoint.url.split("/openai/")[0],
            api_version=endpoint.query["api-version"],
            api_key=None if endpoint.token else endpoint.credentials["api-key"],
            azure_ad_token_provider=endpoint.token,
            **common,
        )
    else:
        base_url = endpoint.url.removesuffix("/chat/completions").removesuffix("/responses")
        client = AsyncOpenAI(base_url=base_url, api_key=endpoint.token or "unused", **common)
    return SdkTransport(client, owns_client=True, api=api)


@pytest.fixture(params=["lean", "sdk"])
def both_transports(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test on both transports: our pooled aiohttp one, and an SDK client built the same way."""
    if request.param == "sdk":
        from createagents import providers

        monkeypatch.setattr(providers, "_transport", sdk_transport_like)
    return str(request.param)
