"""Targets (`module.path:attribute`) and agents from flags: what loads, and the one-line errors when it cannot."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from createagents import ConfigurationError, CreateAgent
from createagents.cli import main
from createagents.cli._agents import AgentOptions, close_all, load_agents, select

from .conftest import cli

APP = """
    from createagents import CreateAgent
    from createagents.testing import FunctionModel


    def answering(tag):
        return CreateAgent(provider=FunctionModel(lambda messages, tools: f"{tag}: {messages[-1].content}"))


    support = answering("support")
    agents = {"support": support, "sales": answering("sales")}
    single = {"only": answering("only")}


    def make():
        return answering("made")


    def make_many():
        return {"x": answering("x"), "y": answering("y")}


    async def make_async():
        return answering("async")


    class Holder:
        inner = answering("inner")


    number = 42
    empty = {}
    mixed = {"ok": support, "bad": 3}


    def wrong():
        return "not an agent"


    def failing():
        raise RuntimeError("database\\nis down")


    def needs_an_argument(x):
        return answering("x")
"""


async def _answer(target: str, agent: str | None = None) -> str:
    agents = await load_agents(AgentOptions(target=target))
    try:
        return await select(agents, agent).ask("hi")
    finally:
        await close_all(agents)


@pytest.mark.parametrize(
    ("attribute", "agent", "expected"),
    [
        ("support", None, "support: hi"),  # a CreateAgent
        ("agents", "sales", "sales: hi"),  # a dict, one chosen by name
        ("single", None, "only: hi"),  # a dict of one needs no name
        ("make", None, "made: hi"),  # a factory
        ("make_many", "y", "y: hi"),  # a factory returning a dict
        ("make_async", None, "async: hi"),  # an async factory
        ("Holder.inner", None, "inner: hi"),  # a dotted attribute
    ],
)
async def test_a_target_loads_an_agent_a_dict_or_a_factory(
    app_module: Callable[[str], str], attribute: str, agent: str | None, expected: str
) -> None:
    module = app_module(APP)
    assert await _answer(f"{module}:{attribute}", agent) == expected


async def test_a_dict_target_is_loaded_whole(app_module: Callable[[str], str]) -> None:
    module = app_module(APP)
    agents = await load_agents(AgentOptions(target=f"{module}:agents"))
    assert isinstance(agents, dict) and list(agents) == ["support", "sales"]
    assert all(isinstance(a, CreateAgent) for a in agents.values())
    await close_all(agents)
    assert all(a.closed for a in agents.values())


@pytest.mark.parametrize(
    ("target", "agent", "message"),
    [
        ("no_colon_here", None, "must be module.path:attribute"),
        ("two words:x", None, "must be module.path:attribute"),
        ("cli_no_such_module_xyz:agent", None, "no module named 'cli_no_such_module_xyz'"),
        ("{module}:nothing", None, "has no attribute 'nothing'"),
        ("{module}:number", None, "is an int; it must be a CreateAgent, a dict of name -> CreateAgent"),
        ("{module}:empty", None, "is an empty dict"),
        ("{module}:mixed", None, "every entry must be a name (a non-empty str) -> CreateAgent, got 'bad' -> an int"),
        ("{module}:wrong", None, "returned a str; it must return a CreateAgent"),
        ("{module}:failing", None, "calling it failed: RuntimeError: database is down"),
        ("{module}:needs_an_argument", None, "calling it failed: TypeError"),
        ("{module}:agents", None, "several agents (support, sales); choose one with --agent NAME"),
        ("{module}:agents", "nobody", "no agent named 'nobody'; the target has: support, sales"),
        ("{module}:support", "support", "--agent chooses among the agents of a dict target"),
    ],
)
async def test_a_bad_target_is_a_configuration_error_saying_what_is_wrong(
    app_module: Callable[[str], str], target: str, agent: str | None, message: str
) -> None:
    module = app_module(APP)
    with pytest.raises(ConfigurationError) as e:
        await _answer(target.format(module=module), agent)
    assert message in str(e.value)


async def test_an_import_error_inside_the_module_is_not_called_a_missing_module(
    app_module: Callable[[str], str],
) -> None:
    broken = app_module("import cli_missing_dependency_xyz\n")
    with pytest.raises(ConfigurationError, match=r"importing '\w+' failed: ModuleNotFoundError: .*dependency_xyz"):
        await load_agents(AgentOptions(target=f"{broken}:agent"))
    raising = app_module("raise RuntimeError('boom at import')\n")
    with pytest.raises(ConfigurationError, match=r"importing '\w+' failed: RuntimeError: boom at import"):
        await load_agents(AgentOptions(target=f"{raising}:agent"))


async def test_a_target_excludes_the_agent_flags(app_module: Callable[[str], str]) -> None:
    module = app_module(APP)
    with pytest.raises(ConfigurationError, match="--provider, --tools cannot be combined with the target"):
        await load_agents(AgentOptions(target=f"{module}:support", provider="test", tools=("currentdate",)))


async def test_flags_build_an_agent_with_built_in_and_imported_tools(app_module: Callable[[str], str]) -> None:
    module = app_module(
        """
        from createagents import tool

        def add(a: int, b: int) -> int:
            '''Add two integers.'''
            return a + b

        @tool(name="shout")
        def loud(text: str) -> str:
            return text.upper() + "!"
        """
    )
    agent = await load_agents(
        AgentOptions(
            provider="test",
            model="m",
            instructions="Be brief.",
            tools=("currentdate", f"{module}:add", f"{module}:loud"),
        )
    )
    assert isinstance(agent, CreateAgent)
    assert (agent.provider, agent.model, agent.instructions) == ("test", "m", "Be brief.")
    assert [t.name for t in agent.tools] == ["currentdate", "add", "shout"]
    answer = await agent.ask("go")
    assert "add -> 2" in answer and "shout -> A!" in answer  # the test model calls each with sample arguments
    await agent.aclose()


async def test_without_a_provider_the_environment_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match=r"no agent: pass --provider openai\|azure\|ollama\|test"):
        await load_agents(AgentOptions())
    monkeypatch.setenv("CREATEAGENTS_PROVIDER", "test")
    monkeypatch.setenv("CREATEAGENTS_MODEL", "from-env")
    agent = await load_agents(AgentOptions())
    assert isinstance(agent, CreateAgent) and (agent.provider, agent.model) == ("test", "from-env")
    await agent.aclose()


def test_a_bad_target_on_the_command_line_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    (tmp_path / "cli_shop.py").write_text(
        "from createagents import CreateAgent\nagent = CreateAgent(provider='test')\n"
    )
    found = cli("run", "cli_shop:agent", "hi", cwd=tmp_path)  # the current directory is on the import path
    assert (found.returncode, found.stdout) == (0, "You said: hi\n"), found.stderr
    for target, message in [
        (
            "cli_shop:nothing",
            "error: ConfigurationError: target 'cli_shop:nothing': module 'cli_shop' has no attribute",
        ),
        ("cli_nowhere:agent", "error: ConfigurationError: target 'cli_nowhere:agent': no module named 'cli_nowhere'"),
    ]:
        failed = cli("chat", target, cwd=tmp_path)
        assert failed.returncode == 2
        assert failed.stderr.startswith(message) and failed.stderr.count("\n") == 1, failed.stderr
        assert "Traceback" not in failed.stderr


def test_a_target_and_agent_flags_together_are_refused(app_module: Callable[[str], str]) -> None:
    module = app_module(APP)
    assert main(["chat", f"{module}:support", "--model", "x"]) == 2


def test_importing_createagents_loads_no_command_line() -> None:
    import subprocess
    import sys

    code = "import sys, createagents; print(sorted(m for m in sys.modules if m.startswith('createagents.cli')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
