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


def test_usage_adds_every_field_and_the_field_lists_derive_from_it() -> None:
    from createagents.domain.messages import TOKEN_FIELDS, USAGE_FIELDS

    assert tuple(f.name for f in dataclasses.fields(Usage)) == USAGE_FIELDS
    assert TOKEN_FIELDS == ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens")
    a = Usage(**{name: i + 1 for i, name in enumerate(USAGE_FIELDS)})  # type: ignore[arg-type]
    b = Usage(**{name: 10 * (i + 1) for i, name in enumerate(USAGE_FIELDS)})  # type: ignore[arg-type]
    total = a + b
    assert type(total) is Usage
    assert [getattr(total, name) for name in USAGE_FIELDS] == [11 * (i + 1) for i in range(len(USAGE_FIELDS))]
    assert Usage.__add__.__qualname__ == "Usage.__add__"


def test_a_model_call_record_carries_every_usage_field_under_the_same_name() -> None:
    from createagents import ModelCallRecord
    from createagents.domain.messages import USAGE_FIELDS

    record_fields = {f.name: f for f in dataclasses.fields(ModelCallRecord)}
    usage_fields = {f.name: f for f in dataclasses.fields(Usage)}
    for name in USAGE_FIELDS:
        assert record_fields[name].type == usage_fields[name].type
        assert record_fields[name].default == usage_fields[name].default


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


def test_provider_items_survive_the_codec_and_old_messages_read_without_them() -> None:
    from createagents.domain.codec import message_from_dict, message_to_dict
    from createagents.domain.messages import AssistantMessage, ProviderItem

    item = ProviderItem(api="openai-responses", data={"type": "reasoning", "id": "rs_1", "encrypted_content": "e"})
    m = AssistantMessage(content="hi", provider_items=(item,))
    encoded = message_to_dict(m)
    assert encoded["provider_items"] == [{"api": "openai-responses", "data": item.data}]
    assert message_from_dict(encoded) == m
    assert "provider_items" not in message_to_dict(AssistantMessage(content="hi"))
    assert message_from_dict({"v": 1, "role": "assistant", "content": "hi"}).provider_items == ()  # type: ignore[union-attr]
