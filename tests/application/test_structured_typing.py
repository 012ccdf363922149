"""A type checker sees structured output: `await agent.chat(...)` is the output type, not `Answer`.

One mypy run (strict) over a small typed example; its `reveal_type` notes are
checked line by line, and one deliberate mismatch must be reported.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

EXAMPLE = textwrap.dedent(
    """
    from pydantic import BaseModel

    from createagents import CreateAgent


    class City(BaseModel):
        name: str
        population: int


    async def main() -> None:
        agent = CreateAgent(provider="test", output_type=City)
        reveal_type(await agent.chat("The largest city in Portugal?"))  # REVEAL awaited
        reveal_type(await agent.chat("Three cities", output_type=list[City]))  # REVEAL override
        reveal_type(agent.chat("The largest city in Portugal?"))  # REVEAL reply
        reveal_type(await agent.conversation("x").chat("Where?"))  # REVEAL conversation
        reveal_type(await agent.ask("Where?"))  # REVEAL ask
        reveal_type(await agent.ask("Which?", output_type=list[City]))  # REVEAL ask_override
        async for partial in agent.chat("Where?").partial():
            reveal_type(partial)  # REVEAL partial

        plain = CreateAgent(provider="test")
        reveal_type(await plain.chat("hi"))  # REVEAL plain
        reveal_type(await plain.chat("Where?", output_type=City))  # REVEAL plain_override
        reveal_type(plain.chat_sync("Where?", output_type=City))  # REVEAL sync_override
        reveal_type(plain.call("Where?", output_type=City))  # REVEAL call_override
        reveal_type(await plain.acall("Where?", output_type=City))  # REVEAL acall_override
        reveal_type(agent.chat_sync("Where?"))  # REVEAL sync
        reveal_type(plain.conversation("y").chat_sync("Where?", output_type=City))  # REVEAL conversation_sync
        reveal_type(plain.get_metrics()[0].latency_ms)  # REVEAL metric_alias

        wrong: int = await agent.chat("The largest city in Portugal?")  # ERROR assignment
    """
)

EXPECTED = {
    "awaited": "example.City",
    "override": "list[example.City]",
    "reply": "createagents.application.reply.Reply[example.City]",
    "conversation": "example.City",
    "ask": "example.City",
    "ask_override": "list[example.City]",
    "partial": "example.City",
    "plain": "createagents.application.reply.Answer",
    "plain_override": "example.City",
    "sync_override": "example.City",
    "call_override": "example.City",
    "acall_override": "example.City",
    "sync": "example.City",
    "conversation_sync": "example.City",
    "metric_alias": "float",
}

NOTE = re.compile(r'^example\.py:(\d+): note: Revealed type is "(.*)"$')
ERROR = re.compile(r"^example\.py:(\d+): error: (.*)$")


def _marked_lines(tag: str) -> dict[int, str]:
    """Line number -> label of every `# <tag> label` comment in the example."""
    lines = {}
    for number, line in enumerate(EXAMPLE.splitlines(), start=1):
        match = re.search(rf"# {tag} (\w+)$", line)
        if match:
            lines[number] = match.group(1)
    return lines


def test_mypy_sees_the_output_type(tmp_path: Path) -> None:
    (tmp_path / "example.py").write_text(EXAMPLE)
    (tmp_path / "mypy.ini").write_text("[mypy]\npython_version = 3.11\n")  # not the project's config
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--config-file",
            str(tmp_path / "mypy.ini"),
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            "--no-error-summary",
            "--show-error-codes",
            "example.py",
        ],
        cwd=tmp_path,
        env={**os.environ, "MYPYPATH": str(ROOT)},  # `createagents` from this checkout
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    revealed: dict[str, str] = {}
    errors: dict[int, str] = {}
    for line in result.stdout.splitlines():
        if match := NOTE.match(line):
            label = _marked_lines("REVEAL").get(int(match.group(1)))
            assert label is not None, f"an unexpected note:\n{output}"
            revealed[label] = match.group(2).replace("builtins.", "")  # older mypy: "builtins.list[...]"
        elif match := ERROR.match(line):
            errors[int(match.group(1))] = match.group(2)

    assert revealed == EXPECTED, output
    assert list(errors) == list(_marked_lines("ERROR")), output  # the mismatch, and nothing else
    message = next(iter(errors.values()))
    assert '"City"' in message and '"int"' in message and "[assignment]" in message, output
    assert result.returncode == 1, output
