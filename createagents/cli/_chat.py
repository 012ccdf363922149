"""`createagents chat`: an interactive conversation with one agent, streamed.

The REPL reads lines on the main thread and runs each turn on one event loop
(an `asyncio.Runner`, kept for the whole session so provider connections stay
on one loop). While an answer streams, Ctrl-C cancels that turn only: the
runner cancels its task, the conversation keeps nothing of it, and the prompt
comes back. At the prompt, Ctrl-C is ignored and Ctrl-D (end of input) quits.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable
from typing import Any, TextIO

from ..agent import CreateAgent
from ._agents import AgentOptions, close_all, load_agents, one_line, select
from ._render import render

PROMPT = "you> "
COMMANDS = {
    "/help": "this list",
    "/clear": "forget the conversation so far",
    "/tools": "the agent's tools",
    "/metrics": "model calls, tokens, latency and tool calls so far",
    "/configs": "the agent's configuration",
    "/exit": "quit (so does Ctrl-D; Ctrl-C stops an answer)",
}
_ALIASES = {"/quit": "/exit", "/?": "/help", "exit": "/exit", "quit": "/exit"}  # createagents 0.3 quit so


def run_chat(
    options: AgentOptions,
    agent_name: str | None,
    *,
    read: Callable[[str], str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> None:
    out = out or sys.stdout
    err = err or sys.stderr
    if read is None:
        read = _read_line
        if sys.stdin.isatty():
            with contextlib.suppress(ImportError):
                import readline  # noqa: F401 - line editing and history for input(), where the platform has it
    with asyncio.Runner() as runner:
        agents = runner.run(load_agents(options))
        try:
            Repl(select(agents, agent_name), runner, read=read, out=out, err=err).loop()
        finally:
            runner.run(close_all(agents))


class Repl:
    def __init__(
        self, agent: CreateAgent[Any], runner: asyncio.Runner, *, read: Callable[[str], str], out: TextIO, err: TextIO
    ) -> None:
        self.agent = agent
        self.runner = runner
        self.read = read
        self.out = out
        self.err = err

    def loop(self) -> None:
        agent = self.agent
        tools = ", ".join(t.name for t in agent.tools) or "none"
        self.say(f"createagents chat: provider={agent.provider} model={agent.model}, tools: {tools}")
        self.say("/help lists the commands; Ctrl-C stops an answer; Ctrl-D or /exit quits.")
        while True:
            try:
                line = self.read(PROMPT)
            except EOFError:
                self.say("")
                return
            except KeyboardInterrupt:
                self.say("\n(Ctrl-D or /exit quits)")
                continue
            line = line.strip()
            if not line:
                continue
            if (line.startswith("/") and " " not in line) or line.lower() in _ALIASES:
                if not self.command(_ALIASES.get(line.lower(), line)):
                    return
                continue
            self.turn(line)

    def command(self, name: str) -> bool:
        """Run a /command; False to quit."""
        if name == "/exit":
            return False
        if name == "/help":
            for command, what in COMMANDS.items():
                self.say(f"  {command:<9} {what}")
        elif name == "/clear":
            self.runner.run(_awaited(self.agent.clear_history()))
            self.say("(history cleared)")
        elif name == "/tools":
            for t in self.agent.tools:
                self.say(f"  {t.name}: {t.description}" if t.description else f"  {t.name}")
            if not self.agent.tools:
                self.say("(no tools)")
        elif name == "/metrics":
            for text in metrics_lines(self.agent.metrics_summary()):
                self.say(text)
        elif name == "/configs":
            for key, value in self.agent.get_configs().items():
                if key == "history" and isinstance(value, list):
                    value = f"{len(value)} messages"
                self.say(f"  {key}: {value}")
        else:
            self.say(f"unknown command {name}; /help lists the commands")
        return True

    def turn(self, message: str) -> None:
        try:
            self.runner.run(render(self.agent.chat(message), self.out))
        except KeyboardInterrupt:  # the runner cancelled the turn: nothing of it is kept
            self.say("[stopped]")
        except Exception as e:  # a failed turn is reported and the conversation goes on
            self.out.flush()
            self.err.write(f"error: {one_line(e)}\n")
            self.err.flush()

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()


def _read_line(prompt: str) -> str:
    """`input(prompt)`; a line piped in (not typed) is echoed, so the transcript reads as a conversation."""
    line = input(prompt)
    if not sys.stdin.isatty():
        sys.stdout.write(line + "\n")
    return line


async def _awaited(awaitable: Any) -> None:
    await awaitable


def metrics_lines(summary: dict[str, Any]) -> list[str]:
    tokens, latency, ttft, tools = (
        summary["tokens"],
        summary["latency"],
        summary["time_to_first_token"],
        summary["tool_duration"],
    )
    return [
        f"model calls: {summary['model_calls']} ({summary['model_errors']} failed)",
        f"tokens: {tokens['prompt']} prompt + {tokens['completion']} completion = {tokens['total']}",
        f"latency: p50 {_ms(latency['p50'])}, p95 {_ms(latency['p95'])}; "
        f"first token: p50 {_ms(ttft['p50'])}, p95 {_ms(ttft['p95'])}",
        f"tool calls: {summary['tool_calls']} ({summary['tool_errors']} failed), "
        f"p50 {_ms(tools['p50'])}, p95 {_ms(tools['p95'])}",
    ]


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1000
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms"
