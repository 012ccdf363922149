"""The HTTP server: any agent as an OpenAI-compatible API (a driving adapter).

It uses the agent objects it is given (duck-typed, see `ServedAgent`) and
their store port; it imports no provider and not the facade.
`createagents.serving` is the public entry point.
"""

from .agents import ServedAgent, served_names
from .app import build_app, state_of
from .server import check_bind, run
from .state import MiB, ServerOptions

__all__ = ["MiB", "ServedAgent", "ServerOptions", "build_app", "check_bind", "run", "served_names", "state_of"]
