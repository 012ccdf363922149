"""`createagents mcp`: an MCP client from the `mcp` SDK starts the command and calls the agent's `chat` tool."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from createagents.adapters.mcp_client import result_text
from createagents.cli import main, parse_args

from .conftest import ROOT


async def _session_calls(target: str, calls: list[dict[str, Any]], errlog: Path) -> tuple[list[str], list[dict]]:
    params = StdioServerParameters(command=sys.executable, args=["-m", "createagents", "mcp", target], cwd=ROOT)
    with errlog.open("w") as err:
        async with stdio_client(params, errlog=err) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            listed = await session.list_tools()
            tools = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in listed.tools]
            results = []
            for arguments in calls:
                result = await session.call_tool("chat", arguments)
                data = result.model_dump(mode="json", by_alias=True, exclude_none=True)
                results.append(("error: " if data.get("isError") else "") + result_text(data))
    return results, tools


async def test_an_mcp_client_gets_the_agents_answers(tmp_path: Path) -> None:
    results, tools = await _session_calls(
        "tests.mcp.agents:agent",
        [
            {"message": "hello"},
            {"message": "first", "conversation_id": "c1"},
            {"message": "second", "conversation_id": "c1"},
            {"message": "again"},  # stateless: sees only itself
        ],
        tmp_path / "stderr",
    )
    assert [t["name"] for t in tools] == ["chat"]
    assert tools[0]["inputSchema"]["required"] == ["message"]
    assert "conversation_id" in tools[0]["inputSchema"]["properties"]
    assert results == [
        "You said: hello (1 user messages seen)",
        "You said: first (1 user messages seen)",
        "You said: second (2 user messages seen)",
        "You said: again (1 user messages seen)",
    ]


async def test_a_failing_agent_is_an_error_result_and_logs_go_to_stderr(tmp_path: Path) -> None:
    errlog = tmp_path / "stderr"
    results, _ = await _session_calls("tests.mcp.agents:broken", [{"message": "hi"}, {"message": "again"}], errlog)
    assert results[0].startswith("error: ") and "the model is down" in results[0]
    assert len(results) == 2  # the server lives on after a failed call
    assert "MCP chat failed" in errlog.read_text()  # the log line went to stderr; stdout stayed the protocol


def test_the_mcp_command_has_help_and_its_documented_lines_parse(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mcp", "--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: createagents mcp ")
    assert all(flag in text for flag in ("TARGET", "--provider", "--model", "--tools", "--agent", "--log-level"))
    page = (ROOT / "docs" / "mcp.md").read_text()
    lines = [
        line[line.index("createagents ") :]
        for block in re.findall(r"^```bash\n(.*?)^```", page, re.S | re.M)
        for line in block.splitlines()
        if line.startswith("createagents ")
    ]
    assert len(lines) == 2
    for line in lines:
        assert parse_args(shlex.split(line)[1:]).command == "mcp"


def test_a_bad_target_is_a_configuration_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mcp", "tests.mcp.no_such_module:agent"]) == 2
    assert "no module named 'tests.mcp.no_such_module'" in capsys.readouterr().err
