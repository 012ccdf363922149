"""The import direction is a rule: domain <- application <- adapters <- facade."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import createagents

PACKAGE = Path(createagents.__file__).parent


def _imports(path: Path) -> set[str]:
    """Absolute names of the createagents modules and third-party packages a module imports."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.add(name)
    return found


def _modules(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


def _violations(layer: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in _modules(layer)
        for name in _imports(path)
        if name.startswith(forbidden)
    ]


FACADE = (
    "createagents.agent",
    "createagents.providers",
    "createagents.stores",
    "createagents.testing",
    "createagents.__main__",
    "createagents.cli",
    "createagents.serving",
    "createagents.mcp",
    "createagents.openai_tools",
)
SDKS = ("openai", "ollama", "aiohttp", "httpx", "structlog", "prometheus_client", "opentelemetry", "mcp")


def test_domain_imports_no_other_layer_and_no_io() -> None:
    forbidden = ("createagents.application", "createagents.adapters", *FACADE, *SDKS, "asyncio", "socket")
    assert _violations("domain", forbidden) == []


def test_application_imports_no_adapter_and_no_sdk() -> None:
    assert _violations("application", ("createagents.adapters", *FACADE, *SDKS)) == []


def test_adapters_do_not_import_the_facade() -> None:
    assert _violations("adapters", FACADE) == []


def test_adapters_do_not_import_each_other() -> None:
    shared = ("createagents.adapters._",)  # private shared helpers are allowed
    bad = []
    for path in _modules("adapters"):
        own = "createagents.adapters." + path.relative_to(PACKAGE / "adapters").parts[0].removesuffix(".py")
        for name in _imports(path):
            if name.startswith("createagents.adapters.") and not name.startswith((own, *shared)):
                bad.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert bad == []


def test_import_createagents_loads_no_provider_sdk() -> None:
    heavy = ("openai", "ollama", "httpx", "aiohttp", "pydantic", "structlog", "mcp")
    code = f"import sys, createagents; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_surface() -> None:
    assert sorted(createagents.__all__) == sorted(set(createagents.__all__))
    for name in createagents.__all__:
        assert getattr(createagents, name) is not None, name
    assert {"CreateAgent", "tool", "BaseTool", "EventHandler", "Reply", "CreateAgentsError"} <= set(
        createagents.__all__
    )
    assert (PACKAGE / "py.typed").exists()
