"""`createagents run`: one prompt, from the argument and/or stdin, answered on stdout as it streams."""

from __future__ import annotations

from typing import TextIO

from ..domain.errors import ConfigurationError
from ._agents import AgentOptions, close_all, load_agents, select


def read_prompt(argument: str | None, stdin: TextIO | None) -> str:
    """The argument, then a blank line, then stdin; stdin alone without an argument.

    A terminal is never read (the command would wait for typing); piped bytes
    that are not UTF-8 are replaced, not refused.
    """
    piped = ""
    if stdin is not None and not stdin.isatty():
        buffer = getattr(stdin, "buffer", None)
        piped = buffer.read().decode("utf-8", errors="replace") if buffer is not None else stdin.read()
    if not piped.strip():
        piped = ""
    if argument is not None and argument.strip():
        return f"{argument}\n\n{piped}" if piped else argument
    if piped:
        return piped
    raise ConfigurationError('run needs a prompt: an argument (createagents run ... "Summarise this") or piped stdin')


async def run_once(options: AgentOptions, agent_name: str | None, prompt: str, out: TextIO) -> None:
    """Stream the answer of the agent to `prompt` to `out`; a one-shot call (`ask`), so no history is kept."""
    agents = await load_agents(options)
    try:
        agent = select(agents, agent_name)
        last = ""
        reply = agent.ask(prompt)
        async with reply:  # closed here, whatever stops us (a broken pipe, Ctrl-C)
            async for token in reply:
                out.write(token)
                out.flush()
                last = token or last
        if not last.endswith("\n"):
            out.write("\n")
        out.flush()
    finally:
        await close_all(agents)
