"""Request bodies -> what the agent takes: domain messages, the last user message, per-call settings.

Every refusal is an `ApiError` 400 naming the field (`param`), as OpenAI's
API does; nothing here touches an agent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from ...application.tools import ClientTool
from ...domain.errors import ConfigurationError
from ...domain.messages import AssistantMessage, Message, SystemMessage, ToolCall, ToolMessage, UserMessage
from ...domain.pending import Decision, Deny
from ...domain.settings import ModelSettings
from .errors import ApiError, bad_request

RESPONSE_ID = re.compile(r"resp_[0-9a-f]{32}")
SNAPSHOT_PREFIX = "resp:"  # the store ids of response snapshots; a named conversation may not use them
APPROVAL_PREFIX = "mcpr_"  # an mcp_approval_request's id is this + the tool call's id

_CHAT_TEXT_PARTS = ("text",)
_RESPONSES_TEXT_PARTS = ("input_text", "output_text", "text")


def parse_json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise bad_request(
            "We could not parse the JSON body of your request. Send a JSON object.", code="invalid_json"
        ) from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", code="invalid_json")
    return body


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatCall:
    """A parsed chat completion request."""

    model: str
    history: tuple[Message, ...]
    message: str | None  # None: the messages end with the client's tool results, and the turn goes on from them
    config: dict[str, Any]
    stream: bool = False
    include_usage: bool = False
    client_tools: tuple[ClientTool, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseCall:
    """A parsed Responses request."""

    model: str
    items: tuple[Message, ...]  # the input before the last user message
    message: str | None  # the last user message; None when the input ends with tool results, or holds decisions
    config: dict[str, Any]
    instructions: str | None = None
    previous_response_id: str | None = None
    conversation: str | None = None
    stream: bool = False
    store: bool = True
    background: bool = False
    metadata: dict[str, str] = field(default_factory=dict)
    echo: dict[str, Any] = field(default_factory=dict)  # request settings the response object repeats
    client_tools: tuple[ClientTool, ...] = ()
    tools: tuple[dict[str, Any], ...] = ()  # the request's tools, as the response object repeats them
    tool_choice: str = "auto"
    approvals: dict[str, Decision] = field(default_factory=dict)  # call id -> decision (mcp_approval_response)
    outputs: dict[str, str] = field(default_factory=dict)  # call id -> output (function_call_output, paused call)

    @property
    def decisions(self) -> bool:
        """Whether the input answers a paused response rather than starting a turn."""
        return bool(self.approvals or self.outputs)


# -- shared ---------------------------------------------------------------------


def model_name(body: Mapping[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("you must provide a model parameter (a served agent's name; see GET /v1/models)", "model")
    return model


def _bool(body: Mapping[str, Any], key: str, default: bool) -> bool:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise bad_request(f"{key} must be a boolean, got {type(value).__name__}", key)
    return value


def _settings(body: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """Request fields -> `config` for this call only, each checked as the agent checks its own."""
    config: dict[str, Any] = {}
    for field_name, setting in names.items():
        value = body.get(field_name)
        if value is None:
            continue
        if setting == "think":
            value = _think(value, field_name)
        try:
            ModelSettings.from_mapping({setting: value})
        except ConfigurationError as e:
            raise bad_request(e.message.replace(f"setting {setting!r}", field_name), field_name) from None
        config[setting] = value
    return config


def _think(value: Any, param: str) -> Any:
    effort = value.get("effort") if isinstance(value, Mapping) else value
    if effort in ("none", "minimal"):
        return False
    if effort in ("low", "medium", "high"):
        return effort
    raise bad_request(f"{param} must be one of none, minimal, low, medium, high", param)


def _unsupported(key: str, why: str) -> NoReturn:
    raise bad_request(f"{key} is not supported by this server: {why}", key, "unsupported_parameter")


def _text(content: Any, param: str, parts: tuple[str, ...], *, allow_none: bool = False) -> str:
    if isinstance(content, str):
        return content
    if content is None and allow_none:
        return ""
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            if not isinstance(part, Mapping) or part.get("type") not in parts or not isinstance(part.get("text"), str):
                kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
                raise bad_request(f"content part of type {kind!r} is not supported; send text", f"{param}[{i}]")
            texts.append(part["text"])
        return "\n".join(texts)
    raise bad_request(f"content must be a string or a list of text parts, got {type(content).__name__}", param)


def _str(value: Any, param: str) -> str:
    if not isinstance(value, str) or not value:
        raise bad_request(f"{param} must be a non-empty string", param)
    return value


def _split_last_user(messages: list[Message], param: str) -> tuple[tuple[Message, ...], str | None]:
    """The messages before the turn, and its user message; None for it when they end with tool results."""
    if messages and isinstance(messages[-1], ToolMessage):
        return tuple(messages), None
    if not messages or not isinstance(messages[-1], UserMessage):
        raise bad_request("the last message must be a user message, or tool results that answer tool calls", param)
    last = messages[-1].content
    if not last.strip():
        raise bad_request("the last user message is empty", param)
    return tuple(messages[:-1]), last


def _find_tool_name(messages: list[Message], call_id: str) -> str | None:
    for m in reversed(messages):
        if isinstance(m, AssistantMessage):
            for call in m.tool_calls:
                if call.id == call_id:
                    return call.name
    return None


def _tool_name(messages: list[Message], call_id: str, param: str) -> str:
    name = _find_tool_name(messages, call_id)
    if name is None:
        raise bad_request(f"no earlier assistant message has a tool call with id {call_id!r}", param)
    return name


def _client_tool(name: Any, description: Any, parameters: Any, param: str) -> ClientTool:
    """One client-side tool, as the function declarations of both APIs describe it."""
    if description is not None and not isinstance(description, str):
        raise bad_request("description must be a string", f"{param}.description")
    if parameters is not None and not isinstance(parameters, Mapping):
        raise bad_request("parameters must be a JSON schema object", f"{param}.parameters")
    try:
        return ClientTool(_str(name, f"{param}.name"), description or "", parameters)
    except ConfigurationError as e:
        raise bad_request(e.message, param, "invalid_value") from None


def _unique(tools: list[ClientTool], param: str) -> tuple[ClientTool, ...]:
    seen: set[str] = set()
    for i, t in enumerate(tools):
        if t.name in seen:
            raise bad_request(f"two tools are named {t.name!r}; tool names must be unique", f"{param}[{i}]")
        seen.add(t.name)
    return tuple(tools)


def _tool_list(body: Mapping[str, Any]) -> list[Any]:
    raw = body.get("tools")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise bad_request("tools must be an array of tools", "tools")
    return raw


def _tool_choice(body: Mapping[str, Any]) -> str:
    """Only "auto" and "none": forcing a call ("required", one named function) is not something the loop does."""
    choice = body.get("tool_choice")
    if choice is None:
        return "auto"
    if choice in ("auto", "none"):
        return str(choice)
    _unsupported("tool_choice", 'only "auto" and "none" are supported; the model decides which tools to call')


# -- chat completions --------------------------------------------------------------

_CHAT_SETTINGS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "max_tokens": "max_tokens",
    "max_completion_tokens": "max_tokens",  # after max_tokens: the newer name wins
    "stop": "stop",
    "seed": "seed",
    "reasoning_effort": "think",
}


def chat_call(body: Mapping[str, Any]) -> ChatCall:
    model = model_name(body)
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise bad_request("messages must be a non-empty array of messages", "messages")
    messages: list[Message] = []
    for i, item in enumerate(raw):
        messages.append(_chat_message(item, f"messages[{i}]", messages))
    history, message = _split_last_user(messages, "messages")
    if body.get("n") not in (None, 1):
        _unsupported("n", "one choice per request")
    if body.get("functions") is not None or body.get("function_call") is not None:
        _unsupported("functions", "declare client functions in tools")
    client_tools = _chat_tools(body)
    if _tool_choice(body) == "none":
        client_tools = ()  # the model is not offered them (the agent's own tools stay)
    fmt = body.get("response_format")
    if fmt is not None and (not isinstance(fmt, Mapping) or fmt.get("type") != "text"):
        _unsupported("response_format", "the agent answers in text")
    if body.get("logprobs"):
        _unsupported("logprobs", "log probabilities are not relayed")
    stream = _bool(body, "stream", False)
    options = body.get("stream_options")
    include_usage = False
    if options is not None:
        if not isinstance(options, Mapping):
            raise bad_request("stream_options must be an object", "stream_options")
        include_usage = _bool(options, "include_usage", False)
    return ChatCall(
        model=model,
        history=history,
        message=message,
        config=_settings(body, _CHAT_SETTINGS),
        stream=stream,
        include_usage=include_usage,
        client_tools=client_tools,
    )


def _chat_tools(body: Mapping[str, Any]) -> tuple[ClientTool, ...]:
    """`tools: [{"type": "function", "function": {...}}]` -> client tools; the client runs them."""
    tools = []
    for i, item in enumerate(_tool_list(body)):
        param = f"tools[{i}]"
        if not isinstance(item, Mapping):
            raise bad_request("each tool must be an object", param)
        if item.get("type") != "function":
            raise bad_request(
                f"tools of type {item.get('type')!r} are not supported; declare functions (type 'function')",
                f"{param}.type",
                "unsupported_parameter",
            )
        function = item.get("function")
        if not isinstance(function, Mapping):
            raise bad_request("a function tool needs a function object", f"{param}.function")
        if function.get("strict") is not None and not isinstance(function.get("strict"), bool):
            raise bad_request("strict must be a boolean", f"{param}.function.strict")
        tools.append(
            _client_tool(
                function.get("name"), function.get("description"), function.get("parameters"), f"{param}.function"
            )
        )
    return _unique(tools, "tools")


def _chat_message(item: Any, param: str, before: list[Message]) -> Message:
    if not isinstance(item, Mapping):
        raise bad_request("each message must be an object", param)
    role = item.get("role")
    content = item.get("content")
    if role in ("system", "developer"):
        return SystemMessage(content=_text(content, f"{param}.content", _CHAT_TEXT_PARTS))
    if role == "user":
        return UserMessage(content=_text(content, f"{param}.content", _CHAT_TEXT_PARTS))
    if role == "assistant":
        calls = item.get("tool_calls") or []
        if not isinstance(calls, list):
            raise bad_request("tool_calls must be an array", f"{param}.tool_calls")
        return AssistantMessage(
            content=_text(content, f"{param}.content", (*_CHAT_TEXT_PARTS, "refusal"), allow_none=True),
            tool_calls=tuple(_chat_tool_call(c, f"{param}.tool_calls[{j}]") for j, c in enumerate(calls)),
        )
    if role == "tool":
        call_id = _str(item.get("tool_call_id"), f"{param}.tool_call_id")
        return ToolMessage(
            tool_call_id=call_id,
            name=_tool_name(before, call_id, f"{param}.tool_call_id"),
            content=_text(content, f"{param}.content", _CHAT_TEXT_PARTS),
        )
    raise bad_request(
        f"unknown role {role!r}; use system, developer, user, assistant or tool", f"{param}.role", "invalid_value"
    )


def _chat_tool_call(call: Any, param: str) -> ToolCall:
    function = call.get("function") if isinstance(call, Mapping) else None
    if not isinstance(function, Mapping):
        raise bad_request("a tool call needs a function object", param)
    arguments = function.get("arguments", "{}")
    if not isinstance(arguments, str):
        raise bad_request("function.arguments must be a JSON string", f"{param}.function.arguments")
    return ToolCall(
        id=_str(call.get("id"), f"{param}.id"),
        name=_str(function.get("name"), f"{param}.function.name"),
        arguments=arguments,
    )


# -- responses -----------------------------------------------------------------------

_RESPONSE_SETTINGS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "max_output_tokens": "max_tokens",
    "reasoning": "think",
}


def response_call(body: Mapping[str, Any]) -> ResponseCall:
    model = model_name(body)
    previous = body.get("previous_response_id")
    if previous is not None:
        previous = _str(previous, "previous_response_id")
    conversation = _conversation(body.get("conversation"))
    if previous is not None and conversation is not None:
        raise bad_request("previous_response_id and conversation cannot be used together", "conversation")
    answers = _Answers(allowed=previous is not None or conversation is not None)
    messages = _response_input(body.get("input"), answers)
    items: tuple[Message, ...] = ()
    message: str | None = None
    if answers.given:
        if messages:
            raise bad_request(
                "an input that answers a paused response holds only mcp_approval_response and "
                "function_call_output items",
                "input",
                "invalid_value",
            )
    else:
        items, message = _split_last_user(messages, "input")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise bad_request("instructions must be a string", "instructions")
    if conversation is not None and not answers.given:
        if items or message is None:
            raise bad_request("with a conversation, input must be one user message", "input")
        if instructions:
            raise bad_request("instructions cannot be used with a conversation on this server", "instructions")
    tools, echoed = _response_tools(body)
    tool_choice = _tool_choice(body)
    background = _bool(body, "background", False)
    if background and not _bool(body, "store", True):
        raise bad_request("background responses must be stored: send store true (or leave it out)", "store")
    text = body.get("text")
    fmt = text.get("format") if isinstance(text, Mapping) else None
    if fmt is not None and (not isinstance(fmt, Mapping) or fmt.get("type") != "text"):
        _unsupported("text.format", "the agent answers in text")
    config = _settings(body, _RESPONSE_SETTINGS)
    return ResponseCall(
        model=model,
        items=items,
        message=message,
        config=config,
        instructions=instructions or None,
        previous_response_id=previous,
        conversation=conversation,
        stream=_bool(body, "stream", False),
        background=background,
        store=_bool(body, "store", True),
        metadata=_metadata(body.get("metadata")),
        echo={k: body.get(k) for k in ("temperature", "top_p", "max_output_tokens", "user")},
        client_tools=() if tool_choice == "none" else tools,
        tools=echoed,
        tool_choice=tool_choice,
        approvals=answers.approvals,
        outputs=answers.outputs,
    )


def _response_tools(body: Mapping[str, Any]) -> tuple[tuple[ClientTool, ...], tuple[dict[str, Any], ...]]:
    """`tools: [{"type": "function", "name": ..., ...}]` -> client tools, and the echo the response repeats."""
    tools, echoed = [], []
    for i, item in enumerate(_tool_list(body)):
        param = f"tools[{i}]"
        if not isinstance(item, Mapping):
            raise bad_request("each tool must be an object", param)
        kind = item.get("type")
        if kind != "function":
            raise bad_request(
                f"tools of type {kind!r} are not supported by this server: the agent's own tools run on the "
                "server, and a client declares its own as functions (type 'function')",
                f"{param}.type",
                "unsupported_parameter",
            )
        strict = item.get("strict")
        if strict is not None and not isinstance(strict, bool):
            raise bad_request("strict must be a boolean", f"{param}.strict")
        declared = _client_tool(item.get("name"), item.get("description"), item.get("parameters"), param)
        tools.append(declared)
        echoed.append(
            {
                "type": "function",
                "name": declared.name,
                "description": item.get("description"),
                "parameters": declared.spec.parameters,
                "strict": strict,
            }
        )
    return _unique(tools, "tools"), tuple(echoed)


@dataclass(slots=True)
class _Answers:
    """The decision items of an input: what a paused response waits for."""

    allowed: bool  # the request names a response or conversation they could answer
    approvals: dict[str, Decision] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def given(self) -> bool:
        return bool(self.approvals or self.outputs)

    def check(self, call_id: str, param: str) -> None:
        if not self.allowed:
            raise bad_request(
                "an mcp_approval_response answers a paused response: send it with that response's id as "
                "previous_response_id (or with its conversation)",
                param,
                "invalid_value",
            )
        if call_id in self.approvals or call_id in self.outputs:
            raise bad_request(f"the call {call_id!r} is answered twice", param, "invalid_value")

    def approval(self, item: Mapping[str, Any], param: str) -> None:
        request_id = _str(item.get("approval_request_id"), f"{param}.approval_request_id")
        approve = item.get("approve")
        if not isinstance(approve, bool):
            raise bad_request("approve must be a boolean", f"{param}.approve")
        reason = item.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise bad_request("reason must be a string", f"{param}.reason")
        call_id = request_id.removeprefix(APPROVAL_PREFIX)
        self.check(call_id, param)
        self.approvals[call_id] = True if approve else (Deny(reason) if reason else False)

    def output(self, call_id: str, output: str, param: str) -> None:
        self.check(call_id, param)
        self.outputs[call_id] = output


def _conversation(value: Any) -> str | None:
    if value is None:
        return None
    conversation_id = value.get("id") if isinstance(value, Mapping) else value
    conversation_id = _str(conversation_id, "conversation")
    if conversation_id.startswith(SNAPSHOT_PREFIX):
        raise bad_request(f"conversation ids starting with {SNAPSHOT_PREFIX!r} are reserved", "conversation")
    return conversation_id


def _metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if (
        not isinstance(value, Mapping)
        or len(value) > 16
        or not all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512 for k, v in value.items()
        )
    ):
        raise bad_request(
            "metadata must be an object of at most 16 string pairs (keys <= 64, values <= 512)", "metadata"
        )
    return dict(value)


def _response_input(raw: Any, answers: _Answers) -> list[Message]:
    """The input's messages; its decision items (answers to a paused response) go to `answers`."""
    if isinstance(raw, str):
        return [UserMessage(content=raw)]
    if not isinstance(raw, list) or not raw:
        raise bad_request("input must be a string or a non-empty array of input items", "input")
    messages: list[Message] = []
    for i, item in enumerate(raw):
        param = f"input[{i}]"
        if not isinstance(item, Mapping):
            raise bad_request("each input item must be an object", param)
        kind = item.get("type", "message")
        if kind == "message":
            messages.append(_response_message(item, param))
        elif kind == "function_call":
            arguments = item.get("arguments", "{}")
            if not isinstance(arguments, str):
                raise bad_request("arguments must be a JSON string", f"{param}.arguments")
            call = ToolCall(
                id=_str(item.get("call_id"), f"{param}.call_id"),
                name=_str(item.get("name"), f"{param}.name"),
                arguments=arguments,
            )
            last = messages[-1] if messages else None
            if isinstance(last, AssistantMessage):
                messages[-1] = AssistantMessage(
                    content=last.content, tool_calls=(*last.tool_calls, call), thinking=last.thinking
                )
            else:
                messages.append(AssistantMessage(tool_calls=(call,)))
        elif kind == "function_call_output":
            call_id = _str(item.get("call_id"), f"{param}.call_id")
            output = _text(item.get("output"), f"{param}.output", _RESPONSES_TEXT_PARTS)
            name = _find_tool_name(messages, call_id)
            if name is not None:
                messages.append(ToolMessage(tool_call_id=call_id, name=name, content=output))
            elif answers.allowed:  # the output of a call the previous response (or conversation) waits for
                answers.output(call_id, output, param)
            else:
                raise bad_request(
                    f"no earlier function_call in input has the call_id {call_id!r}; to answer a response's "
                    "function_call, send that response's id as previous_response_id",
                    f"{param}.call_id",
                )
        elif kind == "mcp_approval_response":
            answers.approval(item, param)
        elif kind == "reasoning":
            continue  # a reasoning item a client echoes back: nothing the agent can use
        else:
            raise bad_request(f"input items of type {kind!r} are not supported", f"{param}.type", "invalid_value")
    return messages


def _response_message(item: Mapping[str, Any], param: str) -> Message:
    role = item.get("role")
    content = _text(item.get("content"), f"{param}.content", _RESPONSES_TEXT_PARTS)
    if role == "user":
        return UserMessage(content=content)
    if role in ("system", "developer"):
        return SystemMessage(content=content)
    if role == "assistant":
        return AssistantMessage(content=content)
    raise bad_request(
        f"unknown role {role!r}; use user, system, developer or assistant", f"{param}.role", "invalid_value"
    )


def check_response_id(response_id: str) -> bool:
    return RESPONSE_ID.fullmatch(response_id) is not None


def not_found_response(response_id: str) -> ApiError:
    return ApiError(404, f"No response found with id '{response_id}'.", param="response_id", code="not_found")
