"""MCP servers as tools: a real server (the SDK's own server API, in a subprocess) called by agents end to end."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from createagents import ConfigurationError, CreateAgent, RunEvent, ToolError
from createagents.adapters.mcp_client import result_text, tool_name
from createagents.mcp import MCPServer, MCPServerError
from tests.fakes.openai_server import FakeOpenAIServer, FakeToolCall, Script

from .conftest import ROOT, agent_for, alive, free_port
from .server_app import PNG

Servers = Callable[..., MCPServer]


def call(name: str, arguments: dict[str, object], id: str = "call_1") -> Script:
    return Script(tool_calls=[FakeToolCall(name, [json.dumps(arguments)], id=id)])


def tool_messages(server: FakeOpenAIServer, request: int) -> list[str]:
    return [m["content"] for m in server.requests[request].body["messages"] if m["role"] == "tool"]


async def by_name(server: MCPServer) -> dict[str, object]:
    return {t.name: t for t in await server.list_tools()}


async def test_an_agent_calls_a_stdio_server_tool_end_to_end(openai_server: FakeOpenAIServer, servers: Servers) -> None:
    openai_server.add(call("echo", {"text": "hi"}), Script(text=["done"]))
    async with agent_for(openai_server, tools=[servers(allow=["echo", "add"])]) as agent:
        assert await agent.chat("Echo hi") == "done"
    offered = {t["function"]["name"]: t["function"] for t in openai_server.requests[0].body["tools"]}
    assert sorted(offered) == ["add", "echo"]
    assert offered["echo"]["description"] == "Echo the text back."
    schema = offered["echo"]["parameters"]  # the server's own input schema, as it listed it
    assert schema["type"] == "object"
    assert schema["properties"]["text"]["type"] == "string"
    assert schema["required"] == ["text"]
    assert tool_messages(openai_server, 1) == ["echo: hi"]


async def test_an_agent_calls_a_streamable_http_server_end_to_end(
    openai_server: FakeOpenAIServer, http_url: str
) -> None:
    server = MCPServer.http(http_url, headers={"Authorization": "Bearer t"}, allow=["add"])
    openai_server.add(call("add", {"a": 2, "b": 3}), Script(text=["5"]))
    async with agent_for(openai_server, tools=[server]) as agent:
        assert await agent.chat("2 + 3?") == "5"
    assert [t["function"]["name"] for t in openai_server.requests[0].body["tools"]] == ["add"]
    assert json.loads(tool_messages(openai_server, 1)[0]) == {"sum": 5}
    assert repr(server) == f"MCPServer.http({http_url!r})"


async def test_results_map_text_structured_content_and_images(servers: Servers) -> None:
    server = servers(allow=["add", "picture"])
    tools = await by_name(server)
    assert json.loads(await tools["add"]({"a": 1, "b": 4})) == {"sum": 5}  # type: ignore[operator]
    assert await tools["picture"]({}) == f"a red dot\n[image: image/png, {len(PNG)} bytes]"  # type: ignore[operator]
    # structured content alone is written as JSON; other blocks become placeholders
    assert result_text({"content": [], "structuredContent": {"a": [1, "é"]}}) == '{"a": [1, "é"]}'
    assert result_text(
        {
            "content": [
                {"type": "audio", "data": "AAAA", "mimeType": "audio/wav"},
                {"type": "resource", "resource": {"uri": "file:///a.txt", "text": "hello"}},
                {"type": "resource", "resource": {"uri": "file:///b.bin", "blob": "AAE=", "mimeType": "x/y"}},
                {"type": "resource_link", "uri": "file:///c", "name": "c"},
            ]
        }
    ) == (
        "[audio: audio/wav, 3 bytes]\n[resource: file:///a.txt]\nhello\n"
        "[resource: file:///b.bin, x/y, 2 bytes]\n[resource link: file:///c (c)]"
    )
    assert tool_name("files.read/v2") == "files_read_v2"


async def test_an_is_error_result_is_the_calls_error_and_the_run_goes_on(
    openai_server: FakeOpenAIServer, servers: Servers
) -> None:
    openai_server.add(call("fail", {"reason": "no disk"}), Script(text=["sorry"]))
    events: list[RunEvent] = []
    async with agent_for(openai_server, tools=[servers(allow=["fail"])], observers=[events.append]) as agent:
        assert await agent.chat("go") == "sorry"
    assert tool_messages(openai_server, 1) == ["Error: Error executing tool fail: refused: no disk"]
    finished = [e for e in events if e.kind == "tool_call_finished"]
    assert [e.error for e in finished] == ["ToolError"]  # type: ignore[union-attr]


async def test_a_slow_tool_times_out_and_the_run_goes_on(openai_server: FakeOpenAIServer, servers: Servers) -> None:
    openai_server.add(call("slow", {"seconds": 30}), call("echo", {"text": "still here"}, "c2"), Script(text=["ok"]))
    started = time.monotonic()
    async with agent_for(openai_server, tools=[servers(allow=["slow", "echo"], timeout=0.5)]) as agent:
        assert await agent.chat("go") == "ok"
    assert time.monotonic() - started < 10
    assert tool_messages(openai_server, 1) == ["Error: tool 'slow' timed out after 0.5 s"]
    assert tool_messages(openai_server, 2)[-1] == "echo: still here"  # the same server answers the next call


async def test_a_name_taken_by_another_tool_gets_the_servers_prefix(
    openai_server: FakeOpenAIServer, servers: Servers
) -> None:
    def get_weather(city: str) -> str:
        """The local weather."""
        return f"local sun in {city}"

    remote = servers(allow=["get_weather", "echo"], prefix="remote")
    openai_server.add(call("remote_get_weather", {"city": "Porto"}), Script(text=["rain"]))
    async with agent_for(openai_server, tools=[get_weather, remote]) as agent:
        assert await agent.chat("Weather?") == "rain"
    names = [t["function"]["name"] for t in openai_server.requests[0].body["tools"]]
    assert names == ["get_weather", "echo", "remote_get_weather"]
    assert tool_messages(openai_server, 1) == ["MCP weather: rain in Porto"]
    assert servers(allow=["get_weather"]).prefix == "mcp"  # the default


async def test_allow_and_deny_lists_filter_the_servers_tools(servers: Servers) -> None:
    assert sorted(await by_name(servers(allow=["echo", "add", "fail"], deny=["fail"]))) == ["add", "echo"]
    everything = await by_name(servers(deny=["crash", "slow"]))
    assert "crash" not in everything and "slow" not in everything and "echo" in everything
    with pytest.raises(ConfigurationError, match="allow must be a list"):
        servers(allow="echo")


async def test_the_tool_list_is_cached_and_refreshed_when_the_server_says_it_changed(
    openai_server: FakeOpenAIServer, servers: Servers
) -> None:
    server = servers(deny=["crash"])
    first = await server.list_tools()
    assert await server.list_tools() is first  # cached: no new listing, the same objects
    assert "extra" not in {t.name for t in first}
    tools = {t.name: t for t in first}
    assert await tools["grow"]({}) == "grown"  # adds `extra` and sends notifications/tools/list_changed
    for _ in range(1000):  # up to 10 s: the notification comes on the server's own time, under load too
        now = await server.list_tools()
        if now is not first:
            break
        await asyncio.sleep(0.01)
    assert "extra" in {t.name for t in now}
    assert {t.name: t for t in now}["echo"] is tools["echo"]  # unchanged tools stay the same objects
    openai_server.add(call("extra", {"word": "hey"}), Script(text=["done"]))
    async with agent_for(openai_server, tools=[server]) as agent:
        assert await agent.chat("go") == "done"
    assert "extra" in [t["function"]["name"] for t in openai_server.requests[0].body["tools"]]
    assert tool_messages(openai_server, 1) == ["HEY"]


async def test_a_crashed_server_is_restarted_once_then_gives_a_clear_error(
    openai_server: FakeOpenAIServer, servers: Servers, tmp_path: Path
) -> None:
    refuse = tmp_path / "refuse"
    server = servers(allow=["crash", "pid", "echo"], env={"SERVER_APP_REFUSE": str(refuse)})
    openai_server.add(call("crash", {}), call("echo", {"text": "back"}, "c2"), Script(text=["done"]))
    async with agent_for(openai_server, tools=[server]) as agent:
        tools = await by_name(server)
        first_pid = int(await tools["pid"]({}))  # type: ignore[operator]
        assert await agent.chat("go") == "done"  # the crash is the call's error; the next call restarts the server
        assert tool_messages(openai_server, 1)[0].startswith(
            f"Error: MCP server '{sys.executable} -m tests.mcp.server_app' stopped before answering the call"
        )
        assert "started again on the next call" in tool_messages(openai_server, 1)[0]
        assert tool_messages(openai_server, 2)[-1] == "echo: back"
        second_pid = int(await tools["pid"]({}))  # type: ignore[operator]
        assert second_pid != first_pid and not alive(first_pid)

        with pytest.raises(MCPServerError, match="stopped before answering the call"):
            await tools["crash"]({})  # type: ignore[operator]
        refuse.touch()  # it cannot start again now
        with pytest.raises(MCPServerError, match=r"could not be restarted: .*could not start") as e:
            await tools["pid"]({})  # type: ignore[operator]
        assert "tests.mcp.server_app" in e.value.server
        started = time.monotonic()
        with pytest.raises(MCPServerError, match="could not be restarted"):
            await tools["pid"]({})  # type: ignore[operator]
        assert time.monotonic() - started < 1  # no new attempt: the error is immediate


async def test_a_server_that_cannot_start_is_a_clear_error_naming_the_command(servers: Servers, tmp_path: Path) -> None:
    missing = MCPServer.stdio(str(tmp_path / "no-such-server"), ["--flag"])
    with pytest.raises(MCPServerError, match=r"no-such-server --flag' could not start: FileNotFoundError"):
        async with agent_for_test(tools=[missing]):
            pass

    refuse = tmp_path / "refuse"
    refuse.touch()
    exits = servers(env={"SERVER_APP_REFUSE": str(refuse)})
    with pytest.raises(MCPServerError, match=r"tests\.mcp\.server_app' could not start: it closed the connection"):
        await agent_for_test(tools=[exits]).chat("hi")  # a run fails at its start, clearly

    nobody = MCPServer.http(f"http://127.0.0.1:{free_port()}/mcp", connect_timeout=5)
    with pytest.raises(MCPServerError, match=r"/mcp' could not connect: "):
        await nobody.start()
    await nobody.aclose()


async def test_a_server_that_never_answers_fails_within_the_connect_timeout(servers: Servers, tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    hangs = servers(env={"SERVER_APP_HANG": "1", "SERVER_APP_PIDFILE": str(pidfile)}, connect_timeout=1)
    started = time.monotonic()
    with pytest.raises(MCPServerError, match=r"did not start within 1 s"):
        await hangs.start()
    assert time.monotonic() - started < 8
    assert not alive(int(pidfile.read_text().split()[0]))  # the hung process was ended


async def test_one_connection_is_shared_and_aclose_leaves_no_process(servers: Servers, tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    server = servers(allow=["pid"], env={"SERVER_APP_PIDFILE": str(pidfile)})
    agent = agent_for_test(tools=[server])
    listed = await asyncio.gather(*(server.list_tools() for _ in range(5)))
    assert all(tools is listed[0] for tools in listed)
    await asyncio.gather(agent.conversation("a").chat("x"), agent.conversation("b").chat("y"), agent.chat("z"))
    pids = [int(p) for p in pidfile.read_text().split()]
    assert len(pids) == 1 and alive(pids[0])  # one process for every conversation
    await agent.aclose()
    assert not alive(pids[0])


async def test_a_cancelled_run_cancels_the_call_and_keeps_the_server(servers: Servers) -> None:
    server = servers(allow=["slow", "echo"])
    tools = await by_name(server)
    task = asyncio.ensure_future(tools["slow"]({"seconds": 30}))  # type: ignore[arg-type]
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await tools["echo"]({"text": "x"}) == "echo: x"  # type: ignore[operator]


def test_the_sdk_is_not_imported_until_a_server_is_used_and_its_absence_is_clear(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code = "import sys, createagents.mcp; print('mcp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"
    monkeypatch.setitem(sys.modules, "mcp", None)  # as if it were not installed
    with pytest.raises(ConfigurationError, match=r"pip install 'createagents\[mcp\]'"):
        MCPServer.stdio("python", ["-m", "server"])


def test_bad_arguments_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="args must be a list of str"):
        MCPServer.stdio("python", "-m server")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="url must start with http"):
        MCPServer.http("localhost:8000/mcp")
    with pytest.raises(ConfigurationError, match="timeout must be a finite number"):
        MCPServer.http("http://x/mcp", timeout=0)
    with pytest.raises(ConfigurationError, match="prefix must be"):
        MCPServer.http("http://x/mcp", prefix="a b")
    assert MCPServer.http("https://user:pw@host:8443/mcp?key=secret").label == "https://host:8443/mcp"
    assert isinstance(MCPServerError("x"), ToolError)


def agent_for_test(**kw: Any) -> CreateAgent:
    return CreateAgent(provider="test", **kw)
