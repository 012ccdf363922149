"""Where and how to POST an OpenAI-style request, resolved once from our own settings, without the SDK.

Credentials (the key, an organisation, a project, the user's own headers)
are kept apart from the rest, so that a redirect to another origin can drop
them, and the endpoint's repr never shows them (a traceback that prints
locals must not print the key).
"""

from __future__ import annotations

import base64
import platform
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import SplitResult, quote, unquote, urlsplit, urlunsplit

from ..domain.errors import ConfigurationError

AsyncTokenProvider = Callable[[], Awaitable[str]]


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class Endpoint:
    """One chat-completions URL (for Azure's dated API, with a `{deployment}` placeholder) and its headers."""

    url: str
    query: Mapping[str, str] = field(default_factory=dict)
    timeout: float | None = None
    public: Mapping[str, str] = field(default_factory=dict)  # safe on any origin (User-Agent)
    credentials: Mapping[str, str] = field(default_factory=dict)  # only ever sent to the configured origin
    token: AsyncTokenProvider | None = None  # sent as `Authorization: Bearer <token>`, fetched per request
    token_header: str = "Authorization"

    def __repr__(self) -> str:
        return f"Endpoint(url={self.url!r})"

    def url_for(self, model: str) -> str:
        return self.url.replace("{deployment}", quote(model, safe="")) if "{deployment}" in self.url else self.url

    async def request_headers(self) -> dict[str, str]:
        headers = Headers(self.public)
        headers.update(self.credentials)
        if self.token is not None:
            headers[self.token_header] = f"Bearer {await self.token()}"
        return headers

    def public_headers(self) -> dict[str, str]:
        return dict(self.public)


class Headers(dict[str, str]):
    """Request headers whose repr shows only the names: they are a local of the request function."""

    def __repr__(self) -> str:
        return f"Headers({sorted(self)})"


def public_headers() -> dict[str, str]:
    """Sent with every request, to any origin: what the body is (FastAPI-based servers refuse JSON sent as
    anything else) and who asks."""
    return {"Content-Type": "application/json", "Accept": "text/event-stream", "User-Agent": user_agent()}


def user_agent() -> str:
    from .. import __version__

    return f"createagents/{__version__} Python/{platform.python_version()}"


def checked_url(url: str, what: str = "base_url") -> tuple[str, str | None, str | None]:
    """`url` without user info, and the user and password it carried; a URL we cannot use is refused now."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"{what} must be an http:// or https:// URL with a host, got {_without_userinfo(parts)!r}"
        )
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return _without_userinfo(parts), user, password


def _without_userinfo(p: SplitResult) -> str:
    host = p.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = p.port
    except ValueError:
        raise ConfigurationError(f"the URL {p.scheme}://{host}... has a port that is not a number") from None
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((p.scheme, netloc, p.path, p.query, p.fragment))


def basic_auth(user: str | None, password: str | None) -> dict[str, str]:
    if user is None and password is None:
        return {}
    token = base64.b64encode(f"{user or ''}:{password or ''}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def openai_endpoint(
    *,
    base_url: str,
    api_key: str | None,
    token: AsyncTokenProvider | None,
    headers: Mapping[str, str] | None,
    organization: str | None,
    project: str | None,
    timeout: float,
    path: str = "chat/completions",
) -> Endpoint:
    """`path` is the API's: "chat/completions" or "responses"."""
    url, user, password = checked_url(base_url)
    credentials: dict[str, str] = basic_auth(user, password)
    if api_key:
        credentials["Authorization"] = f"Bearer {api_key}"
    if organization:
        credentials["OpenAI-Organization"] = organization
    if project:
        credentials["OpenAI-Project"] = project
    credentials.update(headers or {})
    return Endpoint(
        url=f"{url.rstrip('/')}/{path}",
        timeout=timeout,
        public=public_headers(),
        credentials=credentials,
        token=token,
    )


def azure_endpoint(
    *,
    endpoint: str,
    api_key: str | None,
    token: AsyncTokenProvider | None,
    api_version: str | None,
    headers: Mapping[str, str] | None,
    timeout: float,
    path: str = "chat/completions",
) -> Endpoint:
    """The v1 endpoint (`{endpoint}/openai/v1/`) by default; the dated path with `api_version`.

    Chat Completions' dated path names the deployment in the URL; the
    Responses API's (`/openai/responses`) takes it as the body's model.
    """
    url, _, _ = checked_url(endpoint, "the Azure endpoint")
    root = url.rstrip("/")
    credentials = {"api-key": api_key} if api_key else {}
    credentials.update(headers or {})
    if api_version:
        root = root.removesuffix("/openai/v1").removesuffix("/openai")
        dated = f"{root}/openai/{path}" if path == "responses" else f"{root}/openai/deployments/{{deployment}}/{path}"
        return Endpoint(
            url=dated,
            query={"api-version": api_version},
            timeout=timeout,
            public=public_headers(),
            credentials=credentials,
            token=token,
        )
    base = root if root.endswith("/openai/v1") else f"{root}/openai/v1"
    return Endpoint(
        url=f"{base}/{path}",
        timeout=timeout,
        public=public_headers(),
        credentials=credentials,
        token=token,
    )


def async_token(provider: Callable[[], object]) -> AsyncTokenProvider:
    """Entra ID token providers come sync (azure.identity) or async (azure.identity.aio)."""

    async def token() -> str:
        value = provider()
        if isinstance(value, Awaitable):
            value = await value
        return str(value)

    return token
