import asyncio
import json
import threading
from typing import Literal

import pytest
from pydantic import BaseModel

from createagents import BaseTool, ConfigurationError, ToolCall, ToolError, ToolTimeoutError, tool
from createagents.application.tools import Tool, ToolBox, to_tool, to_tools


def add(a: int, b: int = 1) -> int:
    """Add two integers.

    Args:
        a: The first number.
        b (int): The second number.

    Returns:
        The sum.
    """
    return a + b


class Point(BaseModel):
    x: float
    y: float


async def run(box: ToolBox, *calls: ToolCall) -> dict[str, tuple[str, str | None]]:
    return {f.call.id: (f.result, f.error) async for f in box.run_calls(calls)}


def call(name: str, args: object, id: str = "1") -> ToolCall:
    return ToolCall(id=id, name=name, arguments=args if isinstance(args, str) else json.dumps(args))


def test_schema_comes_from_hints_and_docstring() -> None:
    spec = to_tool(add).spec
    assert spec.name == "add"
    assert spec.description == "Add two integers."
    assert spec.parameters["required"] == ["a"]
    props = spec.parameters["properties"]
    assert props["a"]["type"] == "integer" and props["a"]["description"] == "The first number."
    assert props["b"]["default"] == 1 and props["b"]["description"] == "The second number."
    assert spec.parameters["additionalProperties"] is False


def test_schemas_carry_no_generated_titles_but_keep_an_argument_named_title() -> None:
    def publish(title: str, address: Point) -> str:
        """Publish."""
        return title

    def title_keys(schema: object) -> int:
        if isinstance(schema, dict):
            return sum((key == "title" and isinstance(value, str)) + title_keys(value) for key, value in schema.items())
        return sum(title_keys(item) for item in schema) if isinstance(schema, list) else 0

    spec = to_tool(publish).spec
    assert title_keys(spec.parameters) == 0
    assert spec.parameters["required"] == ["title", "address"]
    assert spec.parameters["properties"]["title"] == {"type": "string"}
    assert spec.parameters["$defs"]["Point"] == {
        "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
        "required": ["x", "y"],
        "type": "object",
    }


def test_decorator_overrides_and_nested_models() -> None:
    @tool(name="distance", description="Distance from the origin.", timeout=3)
    def dist(p: Point, unit: Literal["m", "km"] = "m") -> float:
        return float((p.x**2 + p.y**2) ** 0.5)

    assert isinstance(dist, Tool) and dist.timeout == 3
    assert dist.spec.name == "distance" and dist.spec.description == "Distance from the origin."
    assert dist.spec.parameters["properties"]["unit"]["enum"] == ["m", "km"]
    assert "$defs" in dist.spec.parameters


def test_base_tool_subclass() -> None:
    class Greeter(BaseTool):
        """Greets people."""

        def __init__(self, greeting: str) -> None:
            self.greeting = greeting

        async def run(self, name: str) -> str:
            return f"{self.greeting}, {name}"

    t = to_tool(Greeter("Hi"))
    assert t.name == "greeter" and t.description == "Greets people."
    assert asyncio.run(t({"name": "Ana"})) == "Hi, Ana"


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (42, "cannot use 42 as a tool"),
        (lambda *args: None, r"\*args"),
    ],
)
def test_bad_tool_definitions(bad: object, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        to_tool(tool(name="variadic")(bad) if callable(bad) else bad)


def test_bad_names_and_duplicates() -> None:
    with pytest.raises(ConfigurationError, match="tool name"):
        tool(name="has space")(add)
    with pytest.raises(ConfigurationError, match=r"@tool\(name=...\)"):
        to_tool(lambda: 1)
    with pytest.raises(ConfigurationError, match="unique"):
        ToolBox([to_tool(add), to_tool(add)], default_timeout=1)
    with pytest.raises(ConfigurationError, match="timeout"):
        tool(timeout=0)(add)


async def test_failures_become_error_results() -> None:
    def boom() -> str:
        raise RuntimeError("disk on fire")

    box = ToolBox([to_tool(add), to_tool(boom)], default_timeout=5)
    results = await run(
        box,
        call("add", {"a": "x"}, "1"),
        call("add", "{not json", "2"),
        call("nope", {}, "3"),
        call("boom", {}, "4"),
        call("add", {"a": 1, "zzz": 2}, "5"),
        call("add", [1, 2], "6"),
        call("add", {"a": 2, "b": 3}, "7"),
    )
    assert results["1"][1] == "InvalidArgumentsError" and "a: Input should be a valid integer" in results["1"][0]
    assert results["2"][1] == "InvalidArgumentsError" and "not valid JSON" in results["2"][0]
    assert results["3"] == ("Error: unknown tool 'nope'; available tools: add, boom", "UnknownToolError")
    assert results["4"] == ("Error: tool 'boom' failed: RuntimeError: disk on fire", "RuntimeError")
    assert results["5"][1] == "InvalidArgumentsError" and "zzz" in results["5"][0]
    assert results["6"][1] == "InvalidArgumentsError"
    assert results["7"] == ("5", None)


async def test_a_hanging_tool_times_out() -> None:
    @tool(timeout=0.05)
    async def hang() -> str:
        await asyncio.Event().wait()
        return "never"

    results = await run(ToolBox([hang], default_timeout=60), call("hang", {}))
    assert results["1"] == ("Error: tool 'hang' timed out after 0.05 s", "ToolTimeoutError")


async def test_calls_of_one_turn_run_concurrently_async_and_sync() -> None:
    barrier = asyncio.Barrier(2)
    thread_barrier = threading.Barrier(2, timeout=5)

    async def meet_async(n: int) -> int:
        await asyncio.wait_for(barrier.wait(), 5)  # deadlocks unless both run at once
        return n

    def meet_sync(n: int) -> int:
        thread_barrier.wait()  # raises BrokenBarrierError unless both threads run at once
        return n

    box = ToolBox([to_tool(meet_async), to_tool(meet_sync)], default_timeout=10)
    results = await run(
        box,
        call("meet_async", {"n": 1}, "a"),
        call("meet_async", {"n": 2}, "b"),
        call("meet_sync", {"n": 3}, "c"),
        call("meet_sync", {"n": 4}, "d"),
    )
    assert results == {"a": ("1", None), "b": ("2", None), "c": ("3", None), "d": ("4", None)}


async def test_sync_tools_do_not_block_the_event_loop() -> None:
    release = threading.Event()

    def blocking() -> str:
        release.wait(5)
        return "done"

    async def releaser() -> None:
        await asyncio.sleep(0.01)  # runs only if the loop is free while `blocking` waits
        release.set()

    box = ToolBox([to_tool(blocking)], default_timeout=10)
    results, _ = await asyncio.gather(run(box, call("blocking", {})), releaser())
    assert results["1"] == ("done", None)


async def test_return_values_become_text() -> None:
    def point() -> Point:
        return Point(x=1, y=2)

    def data() -> dict[str, object]:
        return {"ok": True, "n": [1, 2]}

    box = ToolBox([to_tool(point), to_tool(data)], default_timeout=5)
    results = await run(box, call("point", {}, "p"), call("data", {}, "d"))
    assert results["p"] == ('{"x":1.0,"y":2.0}', None)
    assert results["d"] == ('{"ok": true, "n": [1, 2]}', None)


async def test_stopping_early_cancels_running_calls() -> None:
    cancelled = asyncio.Event()

    async def slow() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "late"

    async def quick() -> str:
        return "fast"

    box = ToolBox([to_tool(slow), to_tool(quick)], default_timeout=60)
    gen = box.run_calls([call("slow", {}, "s"), call("quick", {}, "q")])
    first = await anext(gen)
    assert first.result == "fast"
    await gen.aclose()
    assert cancelled.is_set()


# -- ToolError and ToolTimeoutError -------------------------------------------


async def test_a_direct_call_with_invalid_arguments_raises_tool_error() -> None:
    t = to_tool(add)
    with pytest.raises(ToolError) as e:
        await t({"a": "x"})
    assert type(e.value) is ToolError and e.value.tool_name == "add"
    assert str(e.value).startswith("invalid arguments for 'add': a: Input should be a valid integer")
    for bad in ({"a": 1, "zzz": 2}, {}, [1, 2], None):
        with pytest.raises(ToolError, match="invalid arguments for 'add'"):
            await t(bad)  # type: ignore[arg-type]
    assert await t({"a": 2, "b": 3}) == 5


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_a_direct_call_past_the_tools_timeout_raises_tool_timeout_error(kind: str) -> None:
    release = threading.Event()

    async def hang_async() -> str:
        await asyncio.sleep(10)
        return "never"

    def hang_sync() -> str:
        release.wait(10)
        return "late"

    t = tool(name="hang", timeout=0.05)(hang_async if kind == "async" else hang_sync)
    try:
        with pytest.raises(ToolTimeoutError) as e:
            await t({})
    finally:
        release.set()
    assert e.value.tool_name == "hang" and str(e.value) == "tool 'hang' timed out after 0.05 s"
    assert isinstance(e.value, ToolError)


async def test_a_direct_call_lets_the_functions_own_exceptions_through() -> None:
    @tool(timeout=5)
    async def own_timeout() -> None:
        raise TimeoutError("the socket's, not ours")

    @tool
    def broken() -> None:
        raise RuntimeError("disk on fire")

    @tool
    def refuses(city: str) -> str:
        raise ToolError(f"no such city: {city}")

    with pytest.raises(TimeoutError, match="the socket's") as timeout_error:
        await own_timeout({})
    assert not isinstance(timeout_error.value, ToolError)
    with pytest.raises(RuntimeError, match="disk on fire"):
        await broken({})
    with pytest.raises(ToolError, match="no such city: Atlantis") as e:
        await refuses({"city": "Atlantis"})
    assert e.value.tool_name == "refuses"  # filled in when the tool left it empty


async def test_a_tool_error_raised_by_a_tool_reaches_the_model_as_its_message() -> None:
    @tool(secret_args=["token"])
    def weather(city: str, token: str) -> str:
        raise ToolError(f"no such city: {city} (token {token})")

    def slow() -> str:
        raise ToolTimeoutError("the weather service took too long")

    def silent() -> str:
        raise ToolError("")

    def other() -> str:
        raise RuntimeError("disk on fire")

    box = ToolBox([weather, to_tool(slow), to_tool(silent), to_tool(other)], default_timeout=5)
    results = await run(
        box,
        call("weather", {"city": "Atlantis", "token": "s3cret"}, "1"),
        call("slow", {}, "2"),
        call("silent", {}, "3"),
        call("other", {}, "4"),
    )
    assert results["1"] == ("Error: no such city: Atlantis (token ***)", "ToolError")
    assert results["2"] == ("Error: the weather service took too long", "ToolTimeoutError")
    assert results["3"] == ("Error: tool 'silent' failed", "ToolError")
    assert results["4"] == ("Error: tool 'other' failed: RuntimeError: disk on fire", "RuntimeError")  # unchanged


def test_to_tools_normalises_a_users_list() -> None:
    def builtin(name: str) -> Tool:
        return tool(name=name)(add)

    assert to_tools(None, builtin) == ()
    assert [t.name for t in to_tools([add, "clock"], builtin)] == ["add", "clock"]
    for bad in ("currentdate", b"x", 42):
        with pytest.raises(ConfigurationError, match="tools must be a list"):
            to_tools(bad, builtin)  # type: ignore[arg-type]
