"""`python -m createagents demo`: an agent with tools, streamed, on the offline test model
unless CREATEAGENTS_PROVIDER (and CREATEAGENTS_MODEL) name a real one."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from . import CreateAgent, __version__, tool
from .agent import PROVIDER_VARIABLE
from .domain.events import RunFinished, TextDelta, ToolCallFinished, ToolCallStarted


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool(description="The current weather for a city.")
async def get_weather(city: str, unit: str = "C") -> str:
    await asyncio.sleep(0.05)  # a pretend network call
    return f"22 {unit} and sunny in {city}"


async def demo(provider: str | None) -> None:
    async with CreateAgent(
        provider=provider,  # None: CreateAgent reads CREATEAGENTS_PROVIDER and CREATEAGENTS_MODEL
        instructions="You are concise. Use the tools when they help.",
        tools=[add, get_weather, "currentdate"],
        config={"temperature": 0.2},
    ) as agent:
        print(f"createagents {__version__} demo: provider={agent.provider} model={agent.model}")
        question = "What is 2 + 3, what's the weather in Lisbon, and what time is it there?"
        print(f"\nuser> {question}\nagent> ", end="", flush=True)
        after_tools = False
        async with agent.chat(question) as reply:
            async for event in reply.events():
                if isinstance(event, TextDelta):
                    if after_tools:
                        print("\nagent> ", end="")
                        after_tools = False
                    print(event.text, end="", flush=True)
                elif isinstance(event, ToolCallStarted):
                    print(f"\n  [calling] {event.call.name}({event.call.arguments})", end="", flush=True)
                elif isinstance(event, ToolCallFinished):
                    print(f"\n  [result]  {event.call.name} -> {event.result}", end="", flush=True)
                    after_tools = True
                elif isinstance(event, RunFinished):
                    u = event.usage
                    print(
                        f"\n\n[{len(event.tool_calls)} tool calls, {u.prompt_tokens} prompt + "
                        f"{u.completion_tokens} completion tokens, {event.duration * 1000:.0f} ms]"
                    )
        follow_up = "Thanks! Summarise that in one line."
        print(f"\nuser> {follow_up}\nagent> {await agent.chat(follow_up)}")
        history = await agent.history()
        print(f"\n[history: {len(history)} messages]")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m createagents")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="run an agent with tools, streaming")
    parser.parse_args(argv)
    provider = None if os.environ.get(PROVIDER_VARIABLE) else "test"  # offline unless one is configured
    try:
        asyncio.run(demo(provider))
    except Exception as e:  # a demo prints the error, not a traceback
        print(f"\nerror: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
