"""Output types: a Python type -> the JSON schema a model answers in, and the answer -> a validated value.

Pydantic does the work (a `TypeAdapter` takes models, dataclasses,
`TypedDict`s, lists of them, `Literal`s and enums alike), imported when an
output type is first used. A schema that is not an object is wrapped as
`{"response": ...}`, because tools and OpenAI's strict mode take objects only.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from ..domain.errors import ConfigurationError
from ..domain.output import ANSWER_TOOL, OUTPUT_MODES, OutputFormat, OutputMode

_NAME = re.compile(r"[^a-zA-Z0-9_-]+")
_FENCE = re.compile(r"^\s*```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)
_MAX_ERRORS = 10  # validation errors told to the model on a retry
_NUMBER_END = frozenset("0123456789.eE+-")
_OPEN_NUMBER = re.compile(r"([:\[,]\s*)-?(?:\d[\d.eE+-]*)?$")  # a number at the end may still be growing


class OutputInvalid(Exception):
    """An answer that does not fit: `errors` as pydantic reports them."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(summarise(errors))
        self.errors = errors


class OutputSpec:
    """One output type for one model: how it is asked for (`asked`), its validator and its partial parser.

    `supported` are the model's modes, best first (`ChatModel.output_modes`):
    the asked `mode` must be one of them; without one, the best is taken.
    """

    def __init__(
        self,
        output_type: Any,
        *,
        mode: OutputMode | None = None,
        retries: int = 1,
        supported: tuple[OutputMode, ...] = OUTPUT_MODES,
        provider: str = "this model",
    ) -> None:
        from pydantic import TypeAdapter

        check_options(mode, retries)
        try:
            self.adapter: Any = TypeAdapter(output_type)
            schema = self.adapter.json_schema()
        except Exception as e:  # pydantic's PydanticSchemaGenerationError, a TypeError for a non-type...
            raise ConfigurationError(
                f"output_type {output_type!r} cannot be an answer's type: {e}; use a pydantic model, a dataclass, "
                "a TypedDict, a list of those, a Literal or an enum"
            ) from None
        self.type = output_type
        self.retries = retries
        self.wrapped = schema.get("type") != "object" or "properties" not in schema
        if self.wrapped:
            defs = schema.pop("$defs", None)
            schema = {"type": "object", "properties": {"response": schema}, "required": ["response"]}
            if defs:
                schema["$defs"] = defs
        self.schema = schema
        self.strict_schema = _strict(schema)
        self.name = _NAME.sub("_", _type_name(output_type)).strip("_")[:64] or "answer"
        self.description = "" if self.wrapped else _docstring(output_type)
        self.asked = self.format(_resolve_mode(mode, supported, provider))

    def __repr__(self) -> str:
        return f"OutputSpec({self.name}, mode={self.asked.mode!r})"

    def format(self, mode: OutputMode) -> OutputFormat:
        strict = self.strict_schema is not None
        return OutputFormat(
            name=self.name,
            schema=self.strict_schema if strict else self.schema,  # type: ignore[arg-type]
            mode=mode,
            strict=strict,
            description=self.description,
        )

    def answer_tool_description(self) -> str:
        what = f"{self.name}: {self.description}" if self.description else self.name
        return f"Give your final answer ({what}) with this tool, once you have everything you need."

    def validate(self, text: str) -> Any:
        """The value `text` (JSON, fenced or not) stands for; `OutputInvalid` when it does not fit."""
        from pydantic import ValidationError

        match = _FENCE.match(text)
        if match:
            text = match.group(1)
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as e:
            raise OutputInvalid([{"type": "json_invalid", "loc": (), "msg": f"the answer is not JSON: {e}"}]) from None
        if self.wrapped and isinstance(data, dict) and set(data) == {"response"}:
            data = data["response"]
        try:
            return self.adapter.validate_python(data)
        except ValidationError as e:
            raise OutputInvalid(
                [dict(d) for d in e.errors(include_url=False, include_context=False, include_input=False)]
            ) from None

    def partial(self, text: str) -> Any:
        """The value so far of a JSON answer still arriving, or None while nothing valid can be made of it."""
        from pydantic_core import from_json

        if text.lstrip().startswith("```"):  # a fenced answer, still arriving: what follows the fence's first line
            _, _, text = text.lstrip().partition("\n")
            text = text.rstrip().removesuffix("```")
        try:
            if text[-1:] in _NUMBER_END:  # only then can a number at the end still be growing
                text = text[:-64] + _OPEN_NUMBER.sub(r"\1", text[-64:])  # the tail: a number is short
            data = from_json(text, allow_partial="trailing-strings")
            if self.wrapped:
                if not isinstance(data, dict) or "response" not in data:
                    return None
                data = data["response"]
            return self.adapter.validate_python(data, experimental_allow_partial="trailing-strings")
        except Exception:  # a prefix that cannot be a value yet
            return None

    def dump(self, value: Any) -> str:
        """The answer as JSON text: what the history keeps, so the next turn sees it."""
        return str(self.adapter.dump_json(value).decode())


def check_options(mode: Any, retries: Any) -> None:
    """`output_mode` and `output_retries`, checked when an agent is built (without importing pydantic)."""
    if mode is not None and mode not in OUTPUT_MODES:
        raise ConfigurationError(f"output_mode must be one of {', '.join(map(repr, OUTPUT_MODES))}, got {mode!r}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigurationError(f"output_retries must be a whole number >= 0, got {retries!r}")


def _resolve_mode(mode: OutputMode | None, supported: tuple[OutputMode, ...], provider: str) -> OutputMode:
    """The mode asked for, if the model supports it; else the model's best."""
    if mode is None:
        return supported[0] if supported else "tool"
    if mode not in supported:
        raise ConfigurationError(
            f"output_mode {mode!r} is not supported by {provider!r}; it supports {', '.join(supported)}"
        )
    return mode


def summarise(errors: list[dict[str, Any]]) -> str:
    lines = []
    for error in errors[:_MAX_ERRORS]:
        loc = ".".join(str(part) for part in error.get("loc", ()))
        lines.append(f"{loc}: {error.get('msg', '')}" if loc else str(error.get("msg", "")))
    if len(errors) > _MAX_ERRORS:
        lines.append(f"... and {len(errors) - _MAX_ERRORS} more")
    return "; ".join(lines)


def retry_prompt(errors: list[dict[str, Any]], mode: OutputMode) -> str:
    how = f"call the {ANSWER_TOOL} tool with it" if mode == "tool" else "answer with only the JSON"
    return f"Your answer does not fit the required format ({summarise(errors)}). Fix it and {how}."


def _docstring(t: Any) -> str:
    """The type's own docstring: not the one dataclasses make up (`City(name: str)`), nor an inherited one."""
    doc = (vars(t).get("__doc__") if isinstance(t, type) else None) or ""
    if dataclasses.is_dataclass(t) and doc.startswith(f"{getattr(t, '__name__', '')}("):
        return ""
    return str(doc).strip()


def _type_name(t: Any) -> str:
    """`City`, `list_City`, `Literal_yes_no`: a name for the schema (OpenAI shows it to the model)."""
    args = getattr(t, "__args__", None)
    origin = getattr(t, "__origin__", None)
    if args and origin is not None:
        head = getattr(origin, "__name__", None) or getattr(t, "_name", None) or "answer"
        return "_".join(
            [head, *(_type_name(a) if isinstance(a, type) or hasattr(a, "__args__") else str(a) for a in args)]
        )
    return str(getattr(t, "__name__", None) or "answer")


def _strict(schema: dict[str, Any]) -> dict[str, Any] | None:
    """`schema` under OpenAI's strict rules (no extra properties), or None when it cannot be: a property
    that is optional, a default, or an open dict."""
    out = json.loads(json.dumps(schema))
    stack: list[Any] = [out]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        if "default" in node:
            return None
        if node.get("type") == "object":
            properties = node.get("properties")
            if not isinstance(properties, dict) or set(node.get("required", ())) != set(properties):
                return None
            if node.get("additionalProperties") not in (None, False):
                return None
            node["additionalProperties"] = False
        for key, value in node.items():
            if key in ("properties", "$defs"):
                stack.extend(value.values() if isinstance(value, dict) else ())
            elif isinstance(value, dict | list) and key not in ("required", "enum", "const"):
                stack.append(value)
    return out  # type: ignore[no-any-return]
