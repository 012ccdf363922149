"""Printing a reply as it streams: text token by token, tool calls and their results, the run's figures."""

from __future__ import annotations

import json
from contextlib import aclosing
from typing import TextIO

from ..application.reply import Reply
from ..domain.events import RunFinished, TextDelta, ToolCallFinished, ToolCallStarted
from ..domain.messages import ToolCall

RESULT_WIDTH = 300  # a tool result longer than this is cut in the transcript (the model gets all of it)


def format_call(call: ToolCall) -> str:
    """`get_weather(city="Lisbon")`: the arguments as keywords with JSON values; raw when they are not an object."""
    try:
        arguments = json.loads(call.arguments or "{}")
    except ValueError:
        return f"{call.name}({call.arguments})"
    if not isinstance(arguments, dict):
        return f"{call.name}({call.arguments})"
    shown = ", ".join(f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in arguments.items())
    return f"{call.name}({shown})"


def shorten(text: str, width: int = RESULT_WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def figures(finished: RunFinished) -> str:
    """`[3 tool calls, 120 prompt + 40 completion tokens, 310 ms]`."""
    u = finished.usage
    calls = len(finished.tool_calls)
    return (
        f"[{calls} tool call{'' if calls == 1 else 's'}, {u.prompt_tokens} prompt + "
        f"{u.completion_tokens} completion tokens, {finished.duration * 1000:.0f} ms]"
    )


async def render(reply: Reply, out: TextIO, *, prefix: str = "agent> ", show_figures: bool = False) -> RunFinished:
    """Stream `reply` to `out`: the text as it arrives after `prefix`, each tool call and result on a line of its own.

    The output ends with a newline (then the run's figures, when `show_figures`).
    A failure or a cancellation ends the line, then propagates.
    """
    finished: RunFinished | None = None
    in_text = False  # a line of answer text is open

    def line(text: str) -> None:
        nonlocal in_text
        out.write(("\n" if in_text else "") + text + "\n")
        out.flush()
        in_text = False

    try:
        async with aclosing(reply.events()) as events:  # closed here, whatever stops us (a broken pipe, Ctrl-C)
            async for event in events:
                if isinstance(event, TextDelta):
                    if not in_text:
                        out.write(prefix)
                        in_text = True
                    out.write(event.text)
                    out.flush()
                elif isinstance(event, ToolCallStarted):
                    line(f"  [calling] {format_call(event.call)}")
                elif isinstance(event, ToolCallFinished):
                    tag = "[result]" if event.ok else "[failed]"
                    line(f"  {tag}  {event.call.name} -> {shorten(event.result)}")
                elif isinstance(event, RunFinished):
                    finished = event
                    if not in_text and not event.text:
                        out.write(prefix)  # an empty answer is still an answer
                        in_text = True
    finally:
        if in_text:
            out.write("\n")
            out.flush()
    if finished is None:  # events() ends with RunFinished or raises
        raise RuntimeError("the reply ended without finishing")
    if show_figures:
        out.write(f"{figures(finished)}\n")
        out.flush()
    return finished
