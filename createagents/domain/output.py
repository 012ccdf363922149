"""Structured output: what a model is asked to answer in, and how it is asked.

`OutputFormat` travels on the chat request to the adapter, which asks in its
provider's strongest way: a JSON schema the provider enforces ("native":
OpenAI's `response_format`, the Responses API's `text.format`, Ollama's
`format`), a final tool whose arguments are the answer ("tool"), or the
schema in the instructions with JSON mode where the provider has one
("prompted").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

OutputMode: TypeAlias = Literal["native", "tool", "prompted"]
OUTPUT_MODES: tuple[OutputMode, ...] = ("native", "tool", "prompted")
ANSWER_TOOL = "final_answer"  # the tool of "tool" mode: its arguments are the answer


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputFormat:
    """An answer's JSON schema (always an object: other types are wrapped as `{"response": ...}`).

    `strict` says the schema meets OpenAI's strict rules (every property
    required, no extra ones), so a provider may enforce it exactly.
    """

    name: str
    schema: dict[str, Any]
    mode: OutputMode
    strict: bool = False
    description: str = ""

    def instructions(self) -> str:
        """What "prompted" mode adds to the system prompt."""
        import json

        return (
            "Answer with one JSON object, and nothing else (no prose, no code fences), "
            f"matching this JSON schema:\n{json.dumps(self.schema, separators=(',', ':'))}"
        )
