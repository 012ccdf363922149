"""Test doubles for your own agents: offline, deterministic models that record every request.

from createagents import CreateAgent
from createagents.testing import FunctionModel, tool_call

def script(messages, tools):
    if messages[-1].role == "user":
        return [tool_call("add", a=2, b=3)]
    return f"The sum is {messages[-1].content}."

agent = CreateAgent(provider=FunctionModel(script), tools=[add])
"""

from .adapters.offline_models import FunctionModel, TestModel, sample_arguments, tool_call

__all__ = ["FunctionModel", "TestModel", "sample_arguments", "tool_call"]
