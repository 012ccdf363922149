"""Agents that `createagents mcp tests.mcp.agents:<name>` serves in the tests (offline models)."""

from __future__ import annotations

from typing import Any

from createagents import CreateAgent
from createagents.testing import FunctionModel


def _remembering(messages: list[Any], tools: list[Any]) -> str:
    users = sum(m.role == "user" for m in messages)
    return f"You said: {messages[-1].content} ({users} user messages seen)"


def _broken(messages: list[Any], tools: list[Any]) -> str:
    raise RuntimeError("the model is down")


agent = CreateAgent(provider=FunctionModel(_remembering))
broken = CreateAgent(provider=FunctionModel(_broken))
