import dataclasses

import pytest

from createagents import (
    AuthenticationError,
    ConfigurationError,
    CreateAgentsError,
    ProviderError,
    RateLimitError,
    TextDelta,
    Usage,
    UserMessage,
)


def test_usage_adds_up() -> None:
    total = Usage(prompt_tokens=3, completion_tokens=2, eval_duration=0.5) + Usage(
        prompt_tokens=1, completion_tokens=1, cached_tokens=1
    )
    assert (total.prompt_tokens, total.completion_tokens, total.total_tokens) == (4, 3, 7)
    assert total.cached_tokens == 1 and total.eval_duration == 0.5


def test_messages_and_events_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        UserMessage(content="hi").content = "x"  # type: ignore[misc]
    assert TextDelta("a").kind == "text_delta"


def test_one_error_root() -> None:
    assert issubclass(RateLimitError, ProviderError) and issubclass(ProviderError, CreateAgentsError)
    assert issubclass(ConfigurationError, ValueError)
    e = RateLimitError("slow down", retry_after=1.5, provider="openai", model="m", status_code=429)
    assert e.retry_after == 1.5
    assert str(e) == "slow down (provider=openai, model=m, status=429)"
    assert str(AuthenticationError("no")) == "no"
