"""`createagents demo`: an agent with tools, streamed, on a scripted offline model unless a provider is named.

The offline model is a `FunctionModel` scripted for the demo's two questions:
it calls the tools with the arguments the question implies, then answers with
their results in a sentence, word by word, as a real model would.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from typing import TextIO

from .. import __version__
from ..agent import MODEL_VARIABLE, PROVIDER_VARIABLE, CreateAgent
from ..application.tools import tool
from ..domain.events import ResponseDone, ToolCallDelta, ToolCallReady
from ..domain.messages import Message, ToolMessage, ToolSpec, Usage, UserMessage
from ..testing import FunctionModel, tool_call
from ._agents import AgentOptions
from ._render import render

QUESTION = "What is 2 + 3, what's the weather in Lisbon, and what time is it there?"
FOLLOW_UP = "Thanks! Summarise that in one line."
INSTRUCTIONS = "You are concise. Use the tools when they help."
WORD_DELAY = 0.03  # seconds between the offline model's words: a visible stream


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool(description="The current weather for a city.")
async def get_weather(city: str, unit: str = "C") -> str:
    await asyncio.sleep(0.05)  # a pretend network call
    return f"22 {unit} and sunny in {city}"


def demo_model(delay: float = WORD_DELAY) -> FunctionModel:
    """The demo's offline model: scripted for `QUESTION` and `FOLLOW_UP`."""

    async def script(messages: list[Message], tools: list[ToolSpec]) -> AsyncIterator[object]:
        question, results = _turn(messages)
        prompt_tokens = sum(len(m.content.split()) for m in messages)
        if question == QUESTION and not results:
            available = {spec.name for spec in tools}
            calls = [
                call
                for call in (
                    tool_call("add", a=2, b=3),
                    tool_call("get_weather", city="Lisbon"),
                    tool_call("currentdate", timezone="Europe/Lisbon"),
                )
                if call.name in available
            ]
            if calls:
                for i, call in enumerate(calls):
                    yield ToolCallDelta(index=i, id=call.id, name=call.name, arguments_delta=call.arguments)
                    yield ToolCallReady(call=call)
                completion = sum(len(c.arguments.split()) + 2 for c in calls)
                yield ResponseDone(
                    finish_reason="tool_calls", usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=completion)
                )
                return
        if question == QUESTION:
            text = _answer(results)
        elif question == FOLLOW_UP:
            text = _summary([m for m in messages if isinstance(m, ToolMessage)])
        else:
            text = (
                "I am the demo's scripted offline model, so I only know the demo's two questions. "
                f"Set {PROVIDER_VARIABLE} and {MODEL_VARIABLE} to talk to a real model."
            )
        for word in re.findall(r"\S+\s*", text):
            if delay:
                await asyncio.sleep(delay)
            yield word
        yield ResponseDone(
            finish_reason="stop", usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=len(text.split()))
        )

    return FunctionModel(script)


def _turn(messages: list[Message]) -> tuple[str, list[ToolMessage]]:
    """The last user message and the tool results that came after it."""
    results: list[ToolMessage] = []
    for m in reversed(messages):
        if isinstance(m, ToolMessage):
            results.insert(0, m)
        elif isinstance(m, UserMessage):
            return m.content.strip(), results
    return "", results


def _by_name(results: list[ToolMessage]) -> dict[str, str]:
    return {m.name: m.content for m in results}  # the last result of each tool wins


def _clock(result: str | None) -> tuple[str, str] | None:
    """("15:04", "Tuesday") from currentdate's "Tuesday, 2025-01-14T15:04:05+00:00 (Europe/Lisbon)"."""
    found = re.match(r"(\w+), \d{4}-\d{2}-\d{2}T(\d{2}:\d{2})", result or "")
    return (found.group(2), found.group(1)) if found else None


def _answer(results: list[ToolMessage]) -> str:
    got = _by_name(results)
    parts = []
    if "add" in got:
        parts.append(f"2 + 3 is {got['add']}.")
    if "get_weather" in got:
        parts.append(f"In Lisbon it is {got['get_weather'].removesuffix(' in Lisbon')}")
    clock = _clock(got.get("currentdate"))
    if clock:
        if "get_weather" in got:
            parts[-1] += f", and the local time is {clock[0]} ({clock[1]})."
        else:
            parts.append(f"In Lisbon the local time is {clock[0]} ({clock[1]}).")
    elif "get_weather" in got:
        parts[-1] += "."
    return " ".join(parts) or "I could not get any of that: no tool answered."


def _summary(results: list[ToolMessage]) -> str:
    got = _by_name(results)
    if not got:
        return "There is nothing to summarise yet."
    parts = []
    if "add" in got:
        parts.append(f"2 + 3 = {got['add']}")
    if "get_weather" in got:
        weather = got["get_weather"].removesuffix(" in Lisbon")
        clock = _clock(got.get("currentdate"))
        parts.append(f"Lisbon: {weather}" + (f" at {clock[0]} local time" if clock else ""))
    return "; ".join(parts) + "."


async def run_demo(options: AgentOptions, out: TextIO) -> None:
    # offline unless a provider is named; --model or a key without one is CreateAgent's "needs a provider" error
    offline = options.provider is None and not os.environ.get(PROVIDER_VARIABLE) and not options.flags()
    async with CreateAgent(
        provider=demo_model() if offline else options.provider,  # None: CREATEAGENTS_PROVIDER and _MODEL
        model="scripted-demo" if offline else options.model,
        base_url=options.base_url,
        api_key=options.api_key,
        instructions=INSTRUCTIONS,
        tools=[add, get_weather, "currentdate"],
        config={"temperature": 0.2},
    ) as agent:
        if offline:
            out.write(
                f"createagents {__version__} demo: offline, on a scripted model "
                f"(--provider and --model, or {PROVIDER_VARIABLE} and {MODEL_VARIABLE}, name a real one)\n"
            )
        else:
            out.write(f"createagents {__version__} demo: provider={agent.provider} model={agent.model}\n")
        for question in (QUESTION, FOLLOW_UP):
            out.write(f"\nuser> {question}\n")
            await render(agent.chat(question), out, show_figures=True)
        out.write(f"\n[history: {len(await agent.history())} messages]\n")
        out.flush()
