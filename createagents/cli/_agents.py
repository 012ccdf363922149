"""The agent a command runs: built from flags (or the `CREATEAGENTS_*` environment), or loaded from a target.

A target is `module.path:attribute`, as uvicorn takes an app: the attribute is a
`CreateAgent`, a dict of them by name, or a zero-argument function (plain or
async) returning one of those. The current directory is on `sys.path`, so
`myapp/agents.py` is `myapp.agents` when the command runs next to `myapp/`.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

from ..agent import MODEL_VARIABLE, PROVIDER_VARIABLE, CreateAgent
from ..domain.errors import ConfigurationError

Agents: TypeAlias = CreateAgent | dict[str, CreateAgent]

_TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
_EXPECTED = "a CreateAgent, a dict of name -> CreateAgent, or a zero-argument function returning one of those"


def looks_like_target(text: str) -> bool:
    """True for `module.path:attribute` (letters, digits, '_' and '.'; no spaces)."""
    return _TARGET.fullmatch(text) is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentOptions:
    """What the command line says about the agent."""

    target: str | None = None
    provider: str | None = None
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    instructions: str | None = None
    tools: tuple[str, ...] = field(default_factory=tuple)

    def flags(self) -> list[str]:
        """The agent flags that were given (they build an agent, so they exclude a target)."""
        given = {
            "--provider": self.provider,
            "--model": self.model,
            "--base-url": self.base_url,
            "--provider-api-key": self.api_key,
            "--instructions": self.instructions,
            "--tools": self.tools or None,
        }
        return [name for name, value in given.items() if value is not None]


def split_tools(values: list[str] | None) -> tuple[str, ...]:
    """`--tools a,b --tools c` -> ("a", "b", "c")."""
    return tuple(name.strip() for value in values or () for name in value.split(",") if name.strip())


async def load_agents(options: AgentOptions) -> Agents:
    """The target's agent(s), or one agent built from the flags and the environment."""
    if options.target is not None:
        flags = options.flags()
        if flags:
            raise ConfigurationError(
                f"{', '.join(flags)} cannot be combined with the target {options.target!r}: "
                "the target defines its agent"
            )
        return await _resolve(import_object(options.target, "target"), options.target)
    if options.provider is None and not os.environ.get(PROVIDER_VARIABLE):
        raise ConfigurationError(
            "no agent: pass --provider openai|azure|ollama|test (or set "
            f"{PROVIDER_VARIABLE}, and {MODEL_VARIABLE}), or a target module.path:attribute"
        )
    tools = [import_object(name, "tool") if ":" in name else name for name in options.tools]
    return CreateAgent(
        provider=options.provider,  # None: CreateAgent reads CREATEAGENTS_PROVIDER and CREATEAGENTS_MODEL
        model=options.model,
        base_url=options.base_url,
        api_key=options.api_key,
        instructions=options.instructions,
        tools=tools,
    )


def import_object(path: str, what: str) -> object:
    """The object `module.path:attribute` names, with the current directory on `sys.path` (as uvicorn does)."""
    if not looks_like_target(path):
        example = "myapp.agents:support" if what == "target" else "myapp.tools:lookup_order"
        raise ConfigurationError(f"{what} {path!r} must be module.path:attribute (as in {example})")
    module_name, attribute = path.split(":")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
            raise ConfigurationError(
                f"{what} {path!r}: no module named {e.name!r} (looked in the current directory {cwd} and sys.path)"
            ) from None
        raise ConfigurationError(f"{what} {path!r}: importing {module_name!r} failed: {one_line(e)}") from None
    except Exception as e:  # the user's module raised while importing: say what, without a traceback
        raise ConfigurationError(f"{what} {path!r}: importing {module_name!r} failed: {one_line(e)}") from None
    found: object = module
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise ConfigurationError(
                f"{what} {path!r}: module {module_name!r} has no attribute {attribute!r}"
            ) from None
    return found


async def _resolve(found: object, path: str) -> Agents:
    if isinstance(found, CreateAgent | Mapping):
        return _agents(found, path)
    if not callable(found):
        raise ConfigurationError(f"target {path!r} is {_kind(found)}; it must be {_EXPECTED}")
    try:
        made = found()
        if inspect.isawaitable(made):
            made = await made
    except ConfigurationError:
        raise
    except Exception as e:  # the factory's own failure, on one line
        raise ConfigurationError(f"target {path!r}: calling it failed: {one_line(e)}") from None
    if isinstance(made, CreateAgent | Mapping):
        return _agents(made, path)
    raise ConfigurationError(f"target {path!r} returned {_kind(made)}; it must return {_EXPECTED}")


def _agents(found: CreateAgent | Mapping[object, object], path: str) -> Agents:
    if isinstance(found, CreateAgent):
        return found
    if not found:
        raise ConfigurationError(f"target {path!r} is an empty dict; it must name at least one agent")
    agents: dict[str, CreateAgent] = {}
    for name, agent in found.items():
        if not isinstance(name, str) or not name or not isinstance(agent, CreateAgent):
            raise ConfigurationError(
                f"target {path!r}: every entry must be a name (a non-empty str) -> CreateAgent, "
                f"got {name!r} -> {_kind(agent)}"
            )
        agents[name] = agent
    return agents


def select(agents: Agents, name: str | None) -> CreateAgent:
    """One agent of a target, by `--agent NAME` when the target holds several."""
    if isinstance(agents, CreateAgent):
        if name is not None:
            raise ConfigurationError("--agent chooses among the agents of a dict target; this target is one agent")
        return agents
    if name is not None:
        if name not in agents:
            raise ConfigurationError(f"no agent named {name!r}; the target has: {', '.join(agents)}")
        return agents[name]
    if len(agents) == 1:
        return next(iter(agents.values()))
    raise ConfigurationError(f"the target has several agents ({', '.join(agents)}); choose one with --agent NAME")


async def close_all(agents: Agents) -> None:
    for agent in agents.values() if isinstance(agents, dict) else (agents,):
        await agent.aclose()


def _kind(value: object) -> str:
    if value is None:
        return "None"
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiouAEIOU' else 'a'} {name}"


def one_line(error: BaseException) -> str:
    """`Type: message` on one line, whatever the message holds."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
