"""The command line: `createagents serve | chat | run | demo | mcp` (also `python -m createagents ...`).

Part of the facade: it builds agents through `createagents.agent` and is never
imported by `import createagents`. Exit codes: 0 done, 1 a provider or other
runtime error, 2 a configuration error (bad flag, unknown provider, bad
target), 130 interrupted. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import sys
from collections.abc import Callable, Sequence

from .. import __version__
from ..agent import MODEL_VARIABLE, PROVIDER_VARIABLE
from ..domain.errors import ConfigurationError
from ._agents import AgentOptions, looks_like_target, one_line, split_tools
from ._serve import LOG_LEVELS, SERVER_KEYS_VARIABLE, ServeOptions

__all__ = ["build_parser", "main", "parse_args"]

_TARGET_HELP = (
    "module.path:attribute naming a CreateAgent, a dict of name -> CreateAgent, or a zero-argument function "
    "(plain or async) returning one of those; the current directory is on the import path"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    _tolerant_output()
    parser = build_parser()
    try:
        args = parse_args(argv, parser)
    except SystemExit as e:  # --help (0) or a bad flag (2, the message is printed)
        return e.code if isinstance(e.code, int) else 2
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        return 130
    except BrokenPipeError:  # `createagents run ... | head`: the reader left; stop quietly
        _silence_stdout()
        return 1
    except ConfigurationError as e:
        _error(e)
        return 2
    except Exception as e:  # a provider error, or any other: one line, no traceback
        _error(e)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="createagents",
        description="Serve, chat with, or run an LLM agent: from flags, the environment, or your own Python object.",
        epilog="Run `createagents COMMAND --help` for a command's options. Documentation: docs/cli.md",
    )
    parser.add_argument("--version", action="version", version=f"createagents {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = _subcommand(
        commands,
        "serve",
        "serve agents over HTTP until SIGTERM or Ctrl-C",
        """\
examples:
  createagents serve myapp.agents:support --host 127.0.0.1 --port 8080 --api-key "$SERVER_KEY"
  createagents serve --provider ollama --model llama3.2 --tools currentdate
  createagents serve --provider test --model test --tools currentdate --api-key k   # offline""",
    )
    serve.add_argument("target", nargs="?", metavar="TARGET", help=_TARGET_HELP)
    _agent_flags(serve, key_flags=("--provider-api-key",))
    server = serve.add_argument_group("the server")
    server.add_argument("--host", default="127.0.0.1", help="the interface to listen on (default: 127.0.0.1)")
    server.add_argument("--port", type=_port, default=8080, help="the TCP port; 0 picks a free one (default: 8080)")
    server.add_argument(
        "--api-key",
        dest="api_keys",
        action="append",
        metavar="KEY",
        help=f"a key clients must send as a Bearer token (repeatable; the keys in ${SERVER_KEYS_VARIABLE}, "
        "comma-separated, are accepted too)",
    )
    server.add_argument(
        "--max-concurrent-per-key", type=_positive_int, metavar="N", help="requests one key may run at once"
    )
    server.add_argument(
        "--cors-origin", dest="cors_origins", action="append", metavar="ORIGIN", help="a browser origin (repeatable)"
    )
    server.add_argument(
        "--shutdown-grace",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="how long running requests may finish after SIGTERM (default: 30)",
    )
    server.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="serve without API keys on a host other than loopback (only on a network you trust)",
    )
    server.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default="warning",
        help="createagents' logs on stderr: info adds a line per model and tool call (default: warning)",
    )
    server.add_argument("--log-json", action="store_true", help="log JSON lines instead of key=value")
    serve.set_defaults(handler=_serve_command)

    chat = _subcommand(
        commands,
        "chat",
        "talk with an agent in the terminal, streamed",
        """\
commands in the chat: /help /clear /tools /metrics /exit
Ctrl-C stops the answer being written; Ctrl-D or /exit quits.

examples:
  createagents chat --provider test
  createagents chat --provider openai --model gpt-4o-mini --tools currentdate
  createagents chat myapp.agents:agents --agent support""",
    )
    chat.add_argument("target", nargs="?", metavar="TARGET", help=_TARGET_HELP)
    _agent_flags(chat, key_flags=("--api-key", "--provider-api-key"))
    chat.add_argument("--agent", metavar="NAME", help="which agent of a dict target")
    chat.set_defaults(handler=_chat_command)

    run = _subcommand(
        commands,
        "run",
        "answer one prompt (argument and/or stdin) on stdout",
        """\
The prompt is the argument, then a blank line, then stdin when both are given;
stdin alone when there is no argument. A single positional that looks like
module.path:attribute (and no agent flags) is a target.

exit codes: 0 answered, 1 provider error, 2 configuration error, 130 interrupted

examples:
  createagents run --provider openai --model gpt-4o-mini "Summarise this" < notes.txt
  echo "What is 2 + 3?" | createagents run --provider test
  createagents run myapp.agents:agents --agent support "Hello"
""",
    )
    run.add_argument("first", nargs="?", metavar="TARGET", help=f"optional: {_TARGET_HELP}")
    run.add_argument("second", nargs="?", metavar="PROMPT", help="the prompt (stdin follows it, after a blank line)")
    _agent_flags(run, key_flags=("--api-key", "--provider-api-key"))
    run.add_argument("--agent", metavar="NAME", help="which agent of a dict target")
    run.set_defaults(handler=_run_command)

    mcp = _subcommand(
        commands,
        "mcp",
        "serve an agent as an MCP server on stdio (one tool: chat)",
        """\
MCP clients (desktop apps, IDEs, other agents) start this command and call the
agent's `chat` tool with a message and an optional conversation_id. stdout is
the protocol; logs go to stderr.

examples:
  createagents mcp myapp.agents:support
  createagents mcp --provider ollama --model llama3.2 --tools currentdate
  createagents mcp --provider test   # offline""",
    )
    mcp.add_argument("target", nargs="?", metavar="TARGET", help=_TARGET_HELP)
    _agent_flags(mcp, key_flags=("--api-key", "--provider-api-key"))
    mcp.add_argument("--agent", metavar="NAME", help="which agent of a dict target")
    mcp.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default="warning",
        help="createagents' logs on stderr (default: warning)",
    )
    mcp.set_defaults(handler=_mcp_command)

    demo = _subcommand(
        commands,
        "demo",
        "an agent with tools, streamed: offline unless a provider is named",
        f"""\
Offline, a scripted model answers the demo's questions; --provider and --model
(or {PROVIDER_VARIABLE} and {MODEL_VARIABLE}) run it on a real one.

examples:
  createagents demo
  createagents demo --provider ollama --model llama3.2""",
    )
    _agent_flags(demo, key_flags=("--api-key", "--provider-api-key"), tools=False)
    demo.set_defaults(handler=_demo_command)
    return parser


def parse_args(argv: Sequence[str] | None, parser: argparse.ArgumentParser | None = None) -> argparse.Namespace:
    """`parse_args`, except that `run`'s prompt may also follow its flags (`run TARGET --agent a "prompt"`).

    argparse gives both optional positionals the words before the first flag
    and calls a word after it unrecognized; for `run`, such words are the
    positionals it did not fill.
    """
    parser = parser or build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        words = [w for w in (args.first, args.second) if w is not None] if args.command == "run" else []
        if args.command != "run" or any(w.startswith("-") for w in extra) or len(words) + len(extra) > 2:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.first, args.second = [*words, *extra, None][:2]
    return args


def _subcommand(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, summary: str, epilog: str
) -> argparse.ArgumentParser:
    return commands.add_parser(
        name,
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
        epilog=epilog.strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _agent_flags(parser: argparse.ArgumentParser, *, key_flags: tuple[str, ...], tools: bool = True) -> None:
    group = parser.add_argument_group(
        "the agent, when there is no target",
        f"Without --provider, {PROVIDER_VARIABLE} names the provider (and {MODEL_VARIABLE} the model).",
    )
    group.add_argument("--provider", help="openai, azure, ollama, test, or an installed provider")
    group.add_argument("--model", help="the model name")
    group.add_argument("--base-url", metavar="URL", help="an OpenAI-compatible server, Ollama host or Azure resource")
    group.add_argument(
        *key_flags,
        dest="provider_api_key",
        metavar="KEY",
        help="the provider's API key (default: its own variable, such as OPENAI_API_KEY)",
    )
    if tools:
        group.add_argument("--instructions", metavar="TEXT", help="the system prompt")
        group.add_argument(
            "--tools",
            action="append",
            metavar="NAMES",
            help="comma-separated or repeated: built-in tools (currentdate) or module:function",
        )


def _options(args: argparse.Namespace, target: str | None) -> AgentOptions:
    return AgentOptions(
        target=target,
        provider=args.provider,
        model=args.model,
        base_url=args.base_url,
        api_key=args.provider_api_key,
        instructions=getattr(args, "instructions", None),
        tools=split_tools(getattr(args, "tools", None)),
    )


def _serve_command(args: argparse.Namespace) -> int:
    from ._serve import run_server

    if any(not key.strip() for key in args.api_keys or ()):
        raise ConfigurationError('an --api-key is empty (an unset variable in --api-key "$SERVER_KEY"?)')
    serve_options = ServeOptions(
        host=args.host,
        port=args.port,
        api_keys=tuple(args.api_keys or ()),
        max_concurrent_per_key=args.max_concurrent_per_key,
        cors_origins=tuple(args.cors_origins or ()),
        shutdown_grace=args.shutdown_grace,
        allow_insecure_no_auth=args.insecure_no_auth,
        log_level=args.log_level,
        log_json=args.log_json,
    )
    asyncio.run(run_server(_options(args, args.target), serve_options))
    return 0


def _chat_command(args: argparse.Namespace) -> int:
    from ._chat import run_chat

    run_chat(_options(args, args.target), args.agent)
    return 0


def _run_command(args: argparse.Namespace) -> int:
    from ._run import read_prompt, run_once

    options = _options(args, None)
    target, prompt = None, args.first
    if args.second is not None:
        target, prompt = args.first, args.second
    elif args.first is not None and looks_like_target(args.first) and not options.flags():
        target, prompt = args.first, None
    options = _options(args, target)
    text = read_prompt(prompt, sys.stdin)
    asyncio.run(run_once(options, args.agent, text, sys.stdout))
    return 0


def _mcp_command(args: argparse.Namespace) -> int:
    from ._mcp import run_mcp

    asyncio.run(run_mcp(_options(args, args.target), args.agent, args.log_level))
    return 0


def _demo_command(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    asyncio.run(run_demo(_options(args, None), sys.stdout))
    return 0


def _port(text: str) -> int:
    value = _int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _error(error: BaseException) -> None:
    sys.stdout.flush()
    sys.stderr.write(f"error: {one_line(error)}\n")
    sys.stderr.flush()


def _tolerant_output() -> None:
    """A character the terminal's encoding lacks is replaced, not a crash in the middle of an answer."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="replace")


def _silence_stdout() -> None:
    """After a broken pipe, send what is left of stdout nowhere, so that exiting does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
