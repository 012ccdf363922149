"""Offline models for demos and tests: deterministic, no network, streamed like a real provider."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing
from typing import Any

from ..application.ports import ChatModel, ChatRequest
from ..domain.events import ModelEvent, ResponseDone, TextDelta, ToolCallDelta, ToolCallReady
from ..domain.messages import (
    AssistantMessage,
    Message,
    ToolCall,
    ToolMessage,
    ToolSpec,
    Usage,
    UserMessage,
)
from ..domain.output import ANSWER_TOOL, OUTPUT_MODES

_WORDS = re.compile(r"\S+\s*|\s+")


def _turn_tail(messages: Sequence[Message]) -> tuple[str, list[ToolMessage]]:
    """The last user message's text and the tool results that came after it."""
    results: list[ToolMessage] = []
    for m in reversed(messages):
        if isinstance(m, ToolMessage):
            results.append(m)
        elif isinstance(m, UserMessage):
            return m.content, results[::-1]
    return "", results[::-1]


def _words(messages: Sequence[Message]) -> int:
    return sum(len(getattr(m, "content", "").split()) for m in messages)


async def _stream_text(text: str, delay: float) -> AsyncIterator[TextDelta]:
    for word in _WORDS.findall(text):
        if delay:
            await asyncio.sleep(delay)
        yield TextDelta(word)


class TestModel(ChatModel):
    """The `provider="test"` model.

    On a user message it calls every tool once with arguments valid for the
    tool's schema; once the results are in (or when there are no tools) it
    answers with text naming them, streamed word by word. `text` replaces
    that answer; `delay` sleeps before each word, to test slow streams. Asked
    for structured output, it answers with `text` (your scripted JSON) or
    else the simplest JSON valid for the schema.
    """

    __test__ = False  # not a pytest class
    provider = "test"
    output_modes = OUTPUT_MODES

    def __init__(self, *, text: str | None = None, delay: float = 0.0, call_tools: bool = True) -> None:
        self.text = text
        self.delay = delay
        self.call_tools = call_tools
        self.requests: list[ChatRequest] = []

    async def stream(self, request: ChatRequest) -> AsyncIterator[ModelEvent]:
        self.requests.append(request)
        user_text, results = _turn_tail(request.messages)
        output = request.output
        tools = [t for t in request.tools if t.name != ANSWER_TOOL] if output is not None else request.tools
        if self.call_tools and tools and not results:
            calls = [
                ToolCall(id=f"call_{i}", name=spec.name, arguments=json.dumps(sample_arguments(spec)))
                for i, spec in enumerate(tools)
            ]
            for i, call in enumerate(calls):
                yield ToolCallDelta(index=i, id=call.id, name=call.name, arguments_delta=call.arguments)
            for call in calls:
                yield ToolCallReady(call=call)
            completion = sum(len(c.arguments.split()) for c in calls)
            finish = "tool_calls"
        elif output is not None:
            answer = (
                self.text
                if self.text is not None
                else json.dumps(_sample(output.schema, output.schema.get("$defs", {})))
            )
            if output.mode == "tool":
                call = ToolCall(id="call_answer", name=ANSWER_TOOL, arguments=answer)
                yield ToolCallDelta(index=0, id=call.id, name=call.name, arguments_delta=answer)
                yield ToolCallReady(call=call)
                finish = "tool_calls"
            else:
                async for delta in _stream_text(answer, self.delay):
                    yield delta
                finish = "stop"
            completion = len(answer.split())
        else:
            text = self.text
            if text is None:
                text = (
                    "Tool results: " + "; ".join(f"{r.name} -> {r.content}" for r in results) + "."
                    if results
                    else f"You said: {user_text}"
                )
            async for delta in _stream_text(text, self.delay):
                yield delta
            completion = len(text.split())
            finish = "stop"
        yield ResponseDone(
            finish_reason=finish,
            usage=Usage(prompt_tokens=_words(request.messages), completion_tokens=completion),
        )


ModelFunction = Callable[[list[Message], list[ToolSpec]], Any]


class FunctionModel(ChatModel):
    """A model whose answers come from your own function, for scripting exact behaviour in tests.

    The function gets the messages and the tool specs of each call. It may be
    sync or async and return a `str` (the answer), an `AssistantMessage` (text
    and/or tool calls), or a list of `ToolCall`; or it may be an async
    generator yielding `str` chunks and model events, to script a stream.
    Every request is kept in `requests`.
    """

    provider = "function"
    output_modes = OUTPUT_MODES

    def __init__(self, function: ModelFunction, *, delay: float = 0.0) -> None:
        if not callable(function):
            raise TypeError("FunctionModel takes a callable")
        self.function = function
        self.delay = delay
        self.requests: list[ChatRequest] = []

    async def stream(self, request: ChatRequest) -> AsyncIterator[ModelEvent]:
        self.requests.append(request)
        messages, tools = list(request.messages), list(request.tools)
        if inspect.isasyncgenfunction(self.function):
            saw_done = False
            async with aclosing(self.function(messages, tools)) as items:
                async for item in items:
                    if isinstance(item, str):
                        yield TextDelta(item)
                    else:
                        saw_done = saw_done or isinstance(item, ResponseDone)
                        yield item
            if not saw_done:
                yield ResponseDone(finish_reason="stop")
            return
        result = self.function(messages, tools)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, str):
            result = AssistantMessage(content=result)
        elif isinstance(result, list | tuple):
            result = AssistantMessage(tool_calls=tuple(result))
        if not isinstance(result, AssistantMessage):
            raise TypeError(
                f"the FunctionModel function returned {type(result).__name__}; "
                "return a str, an AssistantMessage or a list of ToolCall"
            )
        async for delta in _stream_text(result.content, self.delay):
            yield delta
        for i, call in enumerate(result.tool_calls):
            yield ToolCallDelta(index=i, id=call.id, name=call.name, arguments_delta=call.arguments)
            yield ToolCallReady(call=call)
        yield ResponseDone(finish_reason="tool_calls" if result.tool_calls else "stop")


_counter = itertools.count(1)


def tool_call(name: str, /, **arguments: Any) -> ToolCall:
    """A `ToolCall` for scripted models: `tool_call("add", a=1, b=2)`."""
    return ToolCall(id=f"call_{next(_counter)}", name=name, arguments=json.dumps(arguments))


def sample_arguments(spec: ToolSpec) -> dict[str, Any]:
    """Arguments valid for a tool's JSON schema: required properties only, simplest values."""
    value = _sample(spec.parameters, spec.parameters.get("$defs", {}))
    return value if isinstance(value, dict) else {}


def _sample(schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    if "$ref" in schema:
        return _sample(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "default" in schema:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return _sample(options[0], defs)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: _sample(props[name], defs) for name in schema.get("required", []) if name in props}
    if kind == "array":
        return [_sample(schema["items"], defs)] * schema.get("minItems", 0) if "items" in schema else []
    return {
        "string": "a" * max(1, schema.get("minLength", 1)),
        "integer": max(1, schema.get("minimum", 1)),
        "number": float(max(1, schema.get("minimum", 1))),
        "boolean": True,
        "null": None,
    }.get(kind)
