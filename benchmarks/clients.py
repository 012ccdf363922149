"""The clients compared: createagents (OpenAI and Ollama adapters), the raw SDKs, a hand-written floor, peers.

Each client offers `chat(prompt) -> (text, seconds to first token)`,
`tool_chat(prompt) -> text` (one round trip through an `add` tool),
`batch(prompts, concurrency) -> texts` (many independent, non-streamed
answers, at most `concurrency` at a time, in input order) and `aclose()`.
Peers are used only when installed (`pip install -e ".[bench]"`).

`CONSTRUCT` holds what building each client's agent costs in a fresh
process (the `construct` workload): the code that imports the package and
builds an agent for `gpt-4o-mini`, sending nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MODEL = "bench"


def peak_rss_mb() -> float:
    """This process's peak resident set size since it started its program (VmHWM), in MB.

    Not `ru_maxrss`: on Linux a child's `ru_maxrss` also counts the pages of the
    parent it was forked from (the kernel keeps the high-water mark across
    exec), so a small child of a bigger runner would report the runner's size.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # elsewhere: the nearest there is


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


ADD_SCHEMA = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two integers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    },
}


class Client:
    name = ""

    async def chat(self, prompt: str) -> tuple[str, float]:
        raise NotImplementedError

    async def tool_chat(self, prompt: str) -> str:
        raise NotImplementedError

    async def answer(self, prompt: str) -> str:
        """One non-streamed answer: what a batch is made of (the cheapest way each client offers)."""
        raise NotImplementedError

    async def batch(self, prompts: list[str], concurrency: int) -> list[str]:
        """The best a user can write without a batch API: an `asyncio.Semaphore` and `gather`."""
        limit = asyncio.Semaphore(concurrency)

        async def one(prompt: str) -> str:
            async with limit:
                return await self.answer(prompt)

        return list(await asyncio.gather(*(one(p) for p in prompts)))

    async def aclose(self) -> None:
        pass


class CreateAgentsClient(Client):
    def __init__(self, url: str, provider: str) -> None:
        from createagents import CreateAgent

        self.name = f"createagents-{provider}"
        base = f"{url}/v1" if provider == "openai" else url
        self.options = {"provider": provider, "model": MODEL, "base_url": base, "api_key": "x", "max_retries": 0}
        self.agent = CreateAgent(**self.options)
        self.tool_agent: Any = None  # built on first use, as the raw clients build nothing for tools up front
        self.n = 0

    def _conversation(self, agent: Any) -> Any:
        self.n += 1  # a fresh history per chat, as the raw clients send one message
        return agent.conversation(f"c{self.n}")

    async def chat(self, prompt: str) -> tuple[str, float]:
        start = time.perf_counter()
        first = 0.0
        parts = []
        async for token in self._conversation(self.agent).chat(prompt):
            if not parts:
                first = time.perf_counter() - start
            parts.append(token)
        return "".join(parts), first

    async def tool_chat(self, prompt: str) -> str:
        if self.tool_agent is None:
            from createagents import CreateAgent

            self.tool_agent = CreateAgent(**self.options, tools=[add])
        return str(await self._conversation(self.tool_agent).chat(prompt))

    async def answer(self, prompt: str) -> str:
        return str(await self.agent.ask(prompt))

    async def batch(self, prompts: list[str], concurrency: int) -> list[str]:
        return [str(a) for a in await self.agent.chat_many(prompts, concurrency=concurrency)]

    async def aclose(self) -> None:
        await self.agent.aclose()
        if self.tool_agent is not None:
            await self.tool_agent.aclose()


class RawOpenAIClient(Client):
    name = "openai-sdk"

    def __init__(self, url: str) -> None:
        from openai import AsyncOpenAI

        self.client = AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)

    async def chat(self, prompt: str) -> tuple[str, float]:
        start = time.perf_counter()
        first = 0.0
        parts: list[str] = []
        stream = await self.client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": prompt}],
            stream=True,
            stream_options={"include_usage": True},
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                if not parts:
                    first = time.perf_counter() - start
                parts.append(chunk.choices[0].delta.content)
        return "".join(parts), first

    async def tool_chat(self, prompt: str) -> str:
        messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
        calls: dict[int, dict[str, str]] = {}
        stream = await self.client.chat.completions.create(
            model=MODEL,
            messages=messages,
            tools=[ADD_SCHEMA],
            stream=True,  # type: ignore[list-item]
        )
        async for chunk in stream:
            for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                call = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                call["id"] = call["id"] or (tc.id or "")
                if tc.function:
                    call["name"] = call["name"] or (tc.function.name or "")
                    call["arguments"] += tc.function.arguments or ""
        messages.append(
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                    for c in calls.values()
                ],
            }
        )
        for c in calls.values():
            messages.append(
                {"role": "tool", "tool_call_id": c["id"], "content": str(add(**json.loads(c["arguments"])))}
            )
        text = ""
        stream = await self.client.chat.completions.create(
            model=MODEL, messages=messages, tools=[ADD_SCHEMA], stream=True
        )  # type: ignore[arg-type,list-item]
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
        return text

    async def answer(self, prompt: str) -> str:
        response = await self.client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": prompt}]
        )
        return response.choices[0].message.content or ""

    async def aclose(self) -> None:
        await self.client.close()


class RawOllamaClient(Client):
    name = "ollama-sdk"

    def __init__(self, url: str) -> None:
        from ollama import AsyncClient

        self.client = AsyncClient(host=url)

    async def chat(self, prompt: str) -> tuple[str, float]:
        start = time.perf_counter()
        first = 0.0
        parts: list[str] = []
        async for part in await self.client.chat(
            model=MODEL, messages=[{"role": "user", "content": prompt}], stream=True
        ):
            if part.message.content:
                if not parts:
                    first = time.perf_counter() - start
                parts.append(part.message.content)
        return "".join(parts), first

    async def tool_chat(self, prompt: str) -> str:
        messages: list[Any] = [{"role": "user", "content": prompt}]
        calls = []
        async for part in await self.client.chat(model=MODEL, messages=messages, tools=[ADD_SCHEMA], stream=True):
            calls.extend(part.message.tool_calls or [])
        messages.append({"role": "assistant", "content": "", "tool_calls": calls})
        for c in calls:
            messages.append({"role": "tool", "content": str(add(**c.function.arguments)), "tool_name": c.function.name})
        text = ""
        async for part in await self.client.chat(model=MODEL, messages=messages, tools=[ADD_SCHEMA], stream=True):
            text += part.message.content or ""
        return text

    async def answer(self, prompt: str) -> str:
        response = await self.client.chat(model=MODEL, messages=[{"role": "user", "content": prompt}], stream=False)
        return response.message.content or ""

    async def aclose(self) -> None:
        await self.client.close()


class HttpxFloorClient(Client):
    """The floor: httpx and json.loads over SSE lines, written by hand, no abstractions."""

    name = "httpx-floor"

    def __init__(self, url: str) -> None:
        import httpx

        self.url = f"{url}/v1/chat/completions"
        self.client = httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=1000))

    async def chat(self, prompt: str) -> tuple[str, float]:
        start = time.perf_counter()
        first = 0.0
        parts: list[str] = []
        body = {"model": MODEL, "messages": [{"role": "user", "content": prompt}], "stream": True}
        async with self.client.stream("POST", self.url, json=body) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    choices = json.loads(line[6:])["choices"]
                    if choices and choices[0]["delta"].get("content"):
                        if not parts:
                            first = time.perf_counter() - start
                        parts.append(choices[0]["delta"]["content"])
        return "".join(parts), first

    async def tool_chat(self, prompt: str) -> str:
        raise NotImplementedError("the floor measures streaming only")

    async def aclose(self) -> None:
        await self.client.aclose()


class PydanticAIClient(Client):
    name = "pydantic-ai"

    def __init__(self, url: str) -> None:
        from pydantic_ai import Agent
        from pydantic_ai.models.openai import OpenAIChatModel
        from pydantic_ai.providers.openai import OpenAIProvider

        model = OpenAIChatModel(MODEL, provider=OpenAIProvider(base_url=f"{url}/v1", api_key="x"))
        self.agent = Agent(model)
        self.tool_agent = Agent(model, tools=[add])

    async def chat(self, prompt: str) -> tuple[str, float]:
        start = time.perf_counter()
        first = 0.0
        parts: list[str] = []
        async with self.agent.run_stream(prompt) as result:
            async for delta in result.stream_text(delta=True, debounce_by=None):
                if not parts:
                    first = time.perf_counter() - start
                parts.append(delta)
        return "".join(parts), first

    async def tool_chat(self, prompt: str) -> str:
        result = await self.tool_agent.run(prompt)
        return str(result.output)

    async def answer(self, prompt: str) -> str:
        return str((await self.agent.run(prompt)).output)


class OpenAIAgentsClient(Client):
    name = "openai-agents"

    def __init__(self, url: str) -> None:
        from agents import Agent, OpenAIChatCompletionsModel, function_tool, set_tracing_disabled
        from openai import AsyncOpenAI

        set_tracing_disabled(True)
        model = OpenAIChatCompletionsModel(MODEL, AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0))
        self.agent = Agent(name="bench", model=model)
        self.tool_agent = Agent(name="bench", model=model, tools=[function_tool(add)])

    async def chat(self, prompt: str) -> tuple[str, float]:
        from agents import Runner
        from openai.types.responses import ResponseTextDeltaEvent

        start = time.perf_counter()
        first = 0.0
        parts: list[str] = []
        result = Runner.run_streamed(self.agent, prompt)
        async for event in result.stream_events():
            if event.type == "raw_response_event" and isinstance(event.data, ResponseTextDeltaEvent):
                if not parts:
                    first = time.perf_counter() - start
                parts.append(event.data.delta)
        return "".join(parts), first

    async def tool_chat(self, prompt: str) -> str:
        from agents import Runner

        return str((await Runner.run(self.tool_agent, prompt)).final_output)

    async def answer(self, prompt: str) -> str:
        from agents import Runner

        return str((await Runner.run(self.agent, prompt)).final_output)


CLIENTS: dict[str, Callable[[str], Client]] = {
    "createagents-openai": lambda url: CreateAgentsClient(url, "openai"),
    "createagents-ollama": lambda url: CreateAgentsClient(url, "ollama"),
    "openai-sdk": RawOpenAIClient,
    "ollama-sdk": RawOllamaClient,
    "httpx-floor": HttpxFloorClient,
    "pydantic-ai": PydanticAIClient,
    "openai-agents": OpenAIAgentsClient,
}
STREAM_ONLY = {"httpx-floor"}
PEERS = {"pydantic-ai": "pydantic_ai", "openai-agents": "agents"}

# -- construct: import the package and build an agent, in a fresh process, sending nothing ---------

_KEY = "sk-bench-0123456789abcdefghijklmnopqrstuvwxyz"
CONSTRUCT: dict[str, str] = {
    "bare-python": "",  # the interpreter alone: part of every other row
    "createagents-openai": (
        "import createagents\n"
        f"agent = createagents.CreateAgent(provider='openai', model='gpt-4o-mini', api_key='{_KEY}')\n"
    ),
    "createagents-ollama": (
        "import createagents\nagent = createagents.CreateAgent(provider='ollama', model='llama3.2')\n"
    ),
    # before: building an OpenAI agent built the SDK client
    "openai-sdk": f"import openai\nclient = openai.AsyncOpenAI(api_key='{_KEY}')\n",
    "ollama-sdk": "import ollama\nclient = ollama.AsyncClient()\n",
    "pydantic-ai": (
        "from pydantic_ai import Agent\n"
        "from pydantic_ai.models.openai import OpenAIChatModel\n"
        "from pydantic_ai.providers.openai import OpenAIProvider\n"
        f"agent = Agent(OpenAIChatModel('gpt-4o-mini', provider=OpenAIProvider(api_key='{_KEY}')))\n"
    ),
    "openai-agents": (
        "from agents import Agent, OpenAIChatCompletionsModel\n"
        "from openai import AsyncOpenAI\n"
        "agent = Agent(name='a', model=OpenAIChatCompletionsModel('gpt-4o-mini', "
        f"AsyncOpenAI(api_key='{_KEY}')))\n"
    ),
}
