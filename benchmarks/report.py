"""docs/performance.md and its chart, written from a benchmark run's results (never typed in)."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any

# (workload, client, metric, baseline, limit, goal): a ratio to the baseline in the same run, ≤ limit;
# a baseline of None: the value itself (ms), < limit.
TARGETS: list[tuple[str, str, str, str | None, float | None, float | None]] = [
    ("stream", "createagents-openai", "cpu_per_token_us", "openai-sdk", 0.20, 0.15),
    ("stream", "createagents-ollama", "cpu_per_token_us", "ollama-sdk", 1.10, None),
    ("concurrent", "createagents-openai", "wall_s", "openai-sdk", 0.30, None),
    ("concurrent", "createagents-openai", "peak_rss_mb", "openai-sdk", 0.75, None),
    ("first_token", "createagents-openai", "ttft_median_ms", "openai-sdk", 1.00, None),
    ("tools", "createagents-openai", "wall_per_chat_ms", "openai-sdk", 0.70, None),
    ("batch", "createagents-openai", "wall_s", "openai-sdk", None, None),
    ("batch", "createagents-openai", "peak_rss_mb", "openai-sdk", None, None),
    ("construct", "createagents-openai", "wall_ms", "openai-sdk", 0.40, None),
    ("construct", "createagents-openai", "peak_rss_mb", "openai-sdk", 0.40, None),
    ("store_turn", "redis", "overhead_p50_ms", None, 1.0, None),
    ("store_turn", "sqlite", "overhead_p50_ms", None, 2.0, None),
]

# Per workload: the columns of its table, as (source, key, label, digits); source "median" or a baseline name.
Column = tuple[str, str, str, int]
TABLES: dict[str, list[Column]] = {
    "stream": [
        ("median", "cpu_per_token_us", "client CPU per token (µs)", 2),
        ("openai-sdk", "cpu_per_token_us", "ratio to openai-sdk", 3),
        ("ollama-sdk", "cpu_per_token_us", "ratio to ollama-sdk", 3),
        ("median", "server_cpu_s", "server CPU (s)", 2),
    ],
    "concurrent": [
        ("median", "wall_s", "wall time (s)", 2),
        ("openai-sdk", "wall_s", "ratio to openai-sdk", 3),
        ("ollama-sdk", "wall_s", "ratio to ollama-sdk", 3),
        ("median", "cpu_s", "client CPU (s)", 2),
        ("median", "peak_rss_mb", "peak RSS (MB)", 1),
        ("openai-sdk", "peak_rss_mb", "RSS ratio to openai-sdk", 3),
        ("median", "server_cpu_s", "server CPU (s)", 2),
    ],
    "first_token": [
        ("median", "ttft_median_ms", "median time to first token (ms)", 2),
        ("openai-sdk", "ttft_median_ms", "ratio to openai-sdk", 3),
        ("ollama-sdk", "ttft_median_ms", "ratio to ollama-sdk", 3),
        ("median", "end_median_ms", "median time to the end (ms)", 2),
    ],
    "tools": [
        ("median", "wall_per_chat_ms", "wall time per chat (ms)", 2),
        ("openai-sdk", "wall_per_chat_ms", "ratio to openai-sdk", 3),
        ("ollama-sdk", "wall_per_chat_ms", "ratio to ollama-sdk", 3),
        ("median", "cpu_per_chat_ms", "client CPU per chat (ms)", 2),
    ],
    "batch": [
        ("median", "wall_s", "wall time (s)", 2),
        ("openai-sdk", "wall_s", "ratio to openai-sdk", 3),
        ("ollama-sdk", "wall_s", "ratio to ollama-sdk", 3),
        ("median", "cpu_s", "client CPU (s)", 2),
        ("openai-sdk", "cpu_s", "CPU ratio to openai-sdk", 3),
        ("median", "peak_rss_mb", "peak RSS (MB)", 1),
        ("openai-sdk", "peak_rss_mb", "RSS ratio to openai-sdk", 3),
    ],
    "construct": [
        ("median", "wall_ms", "process wall time (ms)", 0),
        ("openai-sdk", "wall_ms", "ratio to openai-sdk", 3),
        ("median", "inproc_ms", "import + build (ms)", 0),
        ("median", "peak_rss_mb", "peak RSS (MB)", 1),
        ("openai-sdk", "peak_rss_mb", "RSS ratio to openai-sdk", 3),
        ("ollama-sdk", "peak_rss_mb", "RSS ratio to ollama-sdk", 3),
    ],
    "store_turn": [
        ("median", "p50_ms", "p50 turn (ms)", 2),
        ("median", "p99_ms", "p99 turn (ms)", 2),
        ("median", "overhead_p50_ms", "overhead p50 (ms)", 2),
        ("median", "overhead_p99_ms", "overhead p99 (ms)", 2),
        ("median", "lost_turns", "lost turns", 0),
    ],
    "store_concurrent": [
        ("median", "wall_s", "wall time (s)", 2),
        ("memory", "wall_s", "ratio to memory", 3),
        ("median", "cpu_s", "client CPU (s)", 2),
        ("median", "peak_rss_mb", "peak RSS (MB)", 1),
        ("median", "lost_turns", "lost turns", 0),
        ("median", "redis_cpu_s", "redis-server CPU (s)", 2),
    ],
}
TITLES = {"store_turn": "store: per-turn overhead", "store_concurrent": "store: concurrent conversations"}
NOT_CHARTED = frozenset({"bare-python"})
STORE_ORDER = ("memory", "sqlite", "redis", "redis-maxconn")
# the chart's groups: (workload, metric, label), as ratios to openai-sdk
CHART = [
    ("stream", "cpu_per_token_us", "stream\nCPU per token"),
    ("concurrent", "wall_s", "concurrent\nwall"),
    ("concurrent", "peak_rss_mb", "concurrent\npeak RSS"),
    ("first_token", "ttft_median_ms", "first_token\nTTFT"),
    ("tools", "wall_per_chat_ms", "tools\nwall per chat"),
    ("batch", "wall_s", "batch\nwall"),
    ("batch", "peak_rss_mb", "batch\npeak RSS"),
    ("construct", "wall_ms", "construct\nwall"),
    ("construct", "peak_rss_mb", "construct\npeak RSS"),
]


def _value(workloads: dict[str, Any], workload: str, client: str, metric: str, baseline: str | None) -> float | None:
    entry = (workloads.get(workload) or {}).get(client)
    if not entry:
        return None
    value = entry["median"].get(metric) if baseline is None else entry.get(f"ratio_to_{baseline}", {}).get(metric)
    return float(value) if value is not None else None


def _fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def write_report(results: dict[str, Any], docs: Path) -> None:
    chart = docs / "performance.png"
    _chart(results, chart)
    docs.joinpath("performance.md").write_text(render(results, chart.name))


def _target_cells(value: float | None, baseline: str | None, limit: float | None, goal: float | None) -> list[str]:
    if limit is None:
        return ["(none set)", "—"]
    if baseline is None:
        return [f"< {limit:g} ms", "—" if value is None else ("yes" if value < limit else "no")]
    target = f"≤ {limit:.2f}" + (f" (goal {goal:.2f})" if goal else "")
    return [target, "—" if value is None else ("yes" if value <= limit else "no")]


def render(results: dict[str, Any], chart_name: str) -> str:
    machine = results["machine"]
    workloads = results["workloads"]
    previous = results.get("previous") or {}
    before = previous.get("workloads") or {}
    prev_label = f"previous run ({previous['date']})" if previous.get("date") else "previous run"
    lines = [
        "# Performance",
        "",
        "How much CPU, time and memory createagents costs on top of the wire, measured against the raw",
        "`openai` and `ollama` SDKs, a hand-written `httpx` + `json` SSE loop (the floor) and the peer",
        "frameworks, in one run, on one machine, against a local fake server in its own process; and what",
        "each conversation store adds to a turn.",
        "",
        f"*Generated by `python -m benchmarks.run` on {results.get('date') or datetime.date.today().isoformat()}; "
        f"{results['rounds']} interleaved round{'s' if results['rounds'] != 1 else ''}, medians; every answer checked "
        "for exact text before it counts.*",
        "",
        f"![ratios to the raw openai SDK, and the stores' overhead per turn]({chart_name})",
        "",
        "The HTTP server (`createagents serve`) against LiteLLM's proxy has its own page: "
        "[performance-serving.md](performance-serving.md); paused and resumed turns and background runs have "
        "theirs: [performance-hitl.md](performance-hitl.md); streaming on OpenAI's Responses API has its own: "
        "[performance-responses.md](performance-responses.md); structured output (`output_type=`) has its own: "
        "[performance-structured.md](performance-structured.md).",
        "",
        "## Targets",
        "",
        "Ratios are to the baseline in the same run (lower is better); the store rows are milliseconds a turn",
        "costs on top of the memory store in the same process. The previous run's numbers are those of the",
        "results file this run replaced (`benchmarks/results/latest.json`).",
        "",
        f"| workload | client | metric | baseline | this run | {prev_label} | target | met |",
        "|---|---|---|---|---:|---:|---:|:---:|",
    ]
    for workload, client, metric, baseline, limit, goal in TARGETS:
        if workload not in workloads:
            continue
        value = _value(workloads, workload, client, metric, baseline)
        old = _value(before, workload, client, metric, baseline)
        digits = 2 if baseline is None else 3
        unit = " ms" if baseline is None and value is not None else ""
        old_unit = " ms" if baseline is None and old is not None else ""
        cells = [workload, client, metric, baseline or "memory (difference)"]
        cells += [
            _fmt(value, digits) + unit,
            _fmt(old, digits) + old_unit,
            *_target_cells(value, baseline, limit, goal),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += _construct_imports_row(workloads)
    lines += _lost_turns_row(workloads)
    imports = results["import"]
    ok = imports["createagents"]["median_ms"] < 200
    old_import = (previous.get("import") or {}).get("createagents", {}).get("median_ms")
    lines.append(
        f"| import | createagents | `import createagents` | — | {imports['createagents']['median_ms']:.0f} ms "
        f"(`import openai`: {imports['openai']['median_ms']:.0f} ms) | "
        f"{_fmt(old_import, 0) + ' ms' if old_import is not None else '—'} | < 200 ms | {'yes' if ok else 'no'} |"
    )
    lines += ["", "`import createagents` imports neither `openai` nor `ollama` (checked by the run).", ""]
    if previous.get("machine"):
        was, now = previous["machine"], machine
        changed = [
            f"{k} {was['versions'].get(k, '—')} → {v}"
            for k, v in now["versions"].items()
            if k in was.get("versions", {}) and was["versions"][k] != v
        ]
        lines += [
            f"The previous run: {was['cpu']}, {was['cores']} cores, Python {was['python']}"
            + (f"; since then: {', '.join(changed)}" if changed else "; the same package versions")
            + (". A different CPU: compare its ratios, not its times." if was["cpu"] != now["cpu"] else "."),
            "",
        ]
    lines += _skipped(results.get("skipped") or {})
    for workload in TABLES:
        if workload in workloads:
            lines += _section(results, workload, before, prev_label)
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    lines += [
        "## Machine",
        "",
        f"- {machine['cpu']}, {machine['cores']} cores; {machine['platform']}; Python {machine['python']}",
        f"- {versions}",
        "- Timings on shared machines are noisy: compare ratios from the same run, not absolute numbers.",
        "",
        "## How the numbers are made",
        "",
        "- `benchmarks/server.py` serves pre-encoded OpenAI SSE and Ollama NDJSON streams (and whole JSON",
        "  answers, for clients that do not stream) from raw asyncio in its own process (one timer for all",
        "  paced streams), so it costs far less CPU than the clients; its CPU is recorded next to each",
        "  measurement.",
        "- Every (client, workload) pair runs in a fresh process (`benchmarks/run.py worker`), after a",
        "  warm-up, so CPU and peak RSS are that client's own; the client order rotates every round.",
        "- Peak RSS is the process's VmHWM (its high-water mark since it started its program), not",
        "  `ru_maxrss`: Linux carries a parent's high-water mark into a child across exec.",
        "- Each ratio is taken against the baseline in the same round, then the median over rounds.",
        "- `construct` and `store_turn` alternate their contenders item by item inside one job (a process",
        "  each, or a turn each), so they share the machine's noise.",
        "- The createagents clients go through the public API: `CreateAgent(...).conversation(id).chat(...)`,",
        "  a fresh conversation per chat so every client sends the same one-message request; the batch",
        "  through `agent.chat_many(prompts, concurrency=8)`; the others write what a user would: an",
        "  `asyncio.Semaphore(8)` and `gather` over their plainest non-streamed call.",
        "",
        *_failures(results.get("failures") or []),
        "## Where the difference comes from",
        "",
        "- The OpenAI adapter lets the `openai` SDK resolve the configuration once (base URL, auth, headers,",
        "  Azure routing), then writes each request straight to one pooled aiohttp session and reads the SSE",
        "  bytes with an incremental parser: no options, request, response or chunk objects per call.",
        *_construct_note(workloads),
        "- The Ollama adapter reads NDJSON through the `ollama` client's own HTTP client, without a pydantic",
        "  object per chunk.",
        "- The agent loop is one generator from the model stream to the caller; lifecycle events and metrics",
        "  are built once per model call and per tool call, never per token.",
        "",
        "## Re-run",
        "",
        "```bash",
        '.venv/bin/pip install -q -e ".[bench,test]"   # peers, matplotlib; aiosqlite and redis for the stores',
        ".venv/bin/python -m benchmarks.run             # about 30 minutes; rewrites this page, the chart and",
        "                                               # benchmarks/results/latest.json (the previous one is",
        "                                               # read first, for the previous-run column)",
        ".venv/bin/python -m benchmarks.run --smoke     # seconds: exact-text checks only (CI runs this)",
        ".venv/bin/python -m benchmarks.run --workloads store_turn --no-report --out /tmp/x.json   # a part",
        "```",
        "",
        "The Redis store runs on a private `redis-server` the run starts (`tests/stores/redis_server.py`:",
        "127.0.0.1, a free port, no persistence) and stops at its end.",
        "",
    ]
    return "\n".join(lines)


def _construct_imports_row(workloads: dict[str, Any]) -> list[str]:
    entry = (workloads.get("construct") or {}).get("createagents-openai")
    if not entry:
        return []
    median = entry["median"]
    processes = int(median.get("processes", 0)) * int(entry.get("rounds_done", 1))
    found = [m for m in ("openai", "aiohttp") if median.get(f"{m}_imported")]
    value = "none" if not found else ", ".join(f"`{m}` in {int(median[f'{m}_imported'])}" for m in found)
    met = "yes" if not found else "no"
    return [
        f"| construct | createagents-openai | SDKs imported by building the agent | — | {value} "
        f"(of {processes} processes) | — | neither `openai` nor `aiohttp` | {met} |"
    ]


def _construct_note(workloads: dict[str, Any]) -> list[str]:
    entry = (workloads.get("construct") or {}).get("createagents-openai")
    if not entry:
        return []
    found = [f"`{m}`" for m in ("openai", "aiohttp") if entry["median"].get(f"{m}_imported")]
    if found:
        return [f"- Building an OpenAI agent imported {' and '.join(found)} in this run (see `construct`)."]
    return [
        "- Building an OpenAI agent imports neither `openai` nor `aiohttp` (checked in every `construct`",
        "  process above): construction costs the import of createagents itself; the transport is built",
        "  on first use.",
    ]


def _lost_turns_row(workloads: dict[str, Any]) -> list[str]:
    rows = []
    for workload in ("store_turn", "store_concurrent"):
        for store, entry in (workloads.get(workload) or {}).items():
            rows.append((workload, store, int(entry["median"].get("lost_turns", 0))))
    if not rows:
        return []
    lost = sum(n for _, _, n in rows)
    where = ", ".join(f"{s} ({w}): {n}" for w, s, n in rows if n) or "none on any store"
    stores = ", ".join(sorted({s for _, s, _ in rows}, key=lambda s: STORE_ORDER.index(s) if s in STORE_ORDER else 9))
    return [
        f"| store | {stores} | lost turns (every history read back) | — | {lost} ({where}) | — | 0 | "
        f"{'yes' if lost == 0 else 'no'} |"
    ]


def _skipped(skipped: dict[str, str]) -> list[str]:
    if not skipped:
        return []
    return [*(f"- Not measured: the {name} store: {why}" for name, why in skipped.items()), ""]


def _section(results: dict[str, Any], workload: str, before: dict[str, Any], prev_label: str) -> list[str]:
    rows = results["workloads"][workload]
    columns = TABLES[workload]
    if workload.startswith("store"):
        order = sorted(rows, key=lambda c: STORE_ORDER.index(c) if c in STORE_ORDER else len(STORE_ORDER))
        columns = [c for c in columns if any(c[1] in rows[s]["median"] for s in rows)]
    else:
        first = columns[0][1]
        order = sorted(rows, key=lambda c: rows[c]["median"].get(first, float("inf")))
    lines = [f"## {TITLES.get(workload, workload)}", "", _describe(workload, results["sizes"]), ""]
    first_column = "store" if workload.startswith("store") else "client"
    lines.append(f"| {first_column} | " + " | ".join(label for _, _, label, _ in columns) + " |")
    lines.append("|---|" + "---:|" * len(columns))
    for client in order:
        entry = rows[client]
        cells = [client]
        for source, key, _, digits in columns:
            value = entry["median"].get(key) if source == "median" else entry.get(f"ratio_to_{source}", {}).get(key)
            cells.append(_fmt(value, digits))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    notes = []
    for w, client, metric, baseline, _, _ in TARGETS:
        old = _value(before, w, client, metric, baseline)
        if w == workload and baseline is not None and old is not None:
            now = _value(results["workloads"], w, client, metric, baseline)
            notes.append(f"{client} {metric} {_fmt(now, 3)} of {baseline} (was {_fmt(old, 3)})")
    if notes:
        lines += [f"Against the {prev_label}: " + "; ".join(notes) + ".", ""]
    return lines


def _failures(failures: list[str]) -> list[str]:
    """Peers (or stores) that failed a round under load: their medians come from the rounds they finished."""
    if not failures:
        return []
    return ["## Failed rounds", "", *(f"- {line}" for line in failures), ""]


def _describe(workload: str, sizes: dict[str, Any]) -> str:
    if workload == "stream":
        return f"One {sizes['stream']:,}-token streamed answer; client CPU per token."
    if workload == "concurrent":
        chats, tokens, delay = sizes["concurrent"]
        return f"{chats:,} concurrent streamed chats of {tokens} tokens, {delay} ms per token at the server."
    if workload == "first_token":
        chats, tokens = sizes["first_token"]
        return f"{chats} sequential {tokens}-token chats: median time to first token and to the end."
    if workload == "tools":
        return f"{sizes['tools']} chats with one tool round trip each (`add(2, 3)`, then the answer)."
    if workload == "batch":
        prompts, concurrency = sizes["batch"]
        return (
            f"{prompts:,} prompts, at most {concurrency} at a time, short answers (1 to 8 tokens), every answer "
            f"checked in place: createagents `agent.chat_many(prompts, concurrency={concurrency})`; the raw SDKs "
            f"and the peers (pydantic-ai `agent.run`, openai-agents `Runner.run`) under an "
            f"`asyncio.Semaphore({concurrency})` with `gather`, non-streamed."
        )
    if workload == "construct":
        return (
            "A fresh Python process that imports the package and builds an agent for `gpt-4o-mini` (an API key,"
            " no request); wall time from spawn to exit, and the process's peak RSS. The baseline, `openai-sdk`,"
            " is `import openai` + `openai.AsyncOpenAI(api_key=...)`: what building an OpenAI agent cost when"
            f" it built an SDK client. Processes per package per round: {sizes['construct']}, alternating"
            " packages; `import + build` is timed inside the process. `bare-python` runs nothing: the"
            " interpreter's own start-up, part of every other row's wall time and RSS."
        )
    if workload == "store_turn":
        turns, conversations = sizes["store_turn"]
        return (
            f"{turns:,} sequential turns per store through one agent each (OpenAI adapter, fake server, 1 to 5"
            f" tokens an answer), over {conversations} conversations (so each grows to"
            f" {2 * turns // conversations} messages), the stores alternating turn by turn in one process."
            " Overhead: the store's p50 (p99) turn minus the memory store's p50 (p99). SQLite on a temp file;"
            " Redis on the private `redis-server`."
        )
    if workload == "store_concurrent":
        conversations, turns = sizes["store_concurrent"]
        return (
            f"{conversations:,} conversations at once through one agent, {turns} turns each in sequence; then"
            " every history is read back and compared with what was said (a missing or different turn is lost)."
            " `redis-maxconn` is the Redis store with `?max_connections=2000` on its URL: redis-py's asyncio"
            " pool holds 100 connections by default and raises `MaxConnectionsError` rather than wait."
        )
    return ""


def _chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = results["workloads"]
    groups = [(w, m, label) for w, m, label in CHART if w in workloads]
    clients = sorted({c for w, _, _ in groups for c in workloads[w] if c not in NOT_CHARTED})
    stores = [s for s in ("sqlite", "redis") if s in (workloads.get("store_turn") or {})]
    fig, axes = plt.subplots(
        1, 2 if stores else 1, figsize=(15, 6), gridspec_kw={"width_ratios": [4, 1]} if stores else None
    )
    ax = axes[0] if stores else axes
    width = 0.8 / max(1, len(clients))
    highest = 1.0
    for i, client in enumerate(clients):
        values = [_value(workloads, w, client, m, "openai-sdk") for w, m, _ in groups]
        highest = max([highest, *(v for v in values if v)])
        xs = [j + i * width for j, v in enumerate(values) if v]
        bars = ax.bar(xs, [v for v in values if v], width, label=client)
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in values if v], fontsize=6, rotation=90, padding=2)
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    ax.set_yscale("log")
    ax.set_xticks([j + width * (len(clients) - 1) / 2 for j in range(len(groups))])
    ax.set_xticklabels([label for _, _, label in groups], fontsize=7)
    ax.set_ylabel("ratio to the raw openai SDK (log scale; lower is better)")
    ax.set_title("createagents vs raw SDKs and peers, same run, medians", fontsize=10)
    ax.set_ylim(top=highest * 8)  # room above the bars for the legend
    ax.legend(fontsize=7, loc="upper center", ncol=4)
    if stores:
        _store_panel(axes[1], workloads["store_turn"], stores)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _store_panel(ax: Any, rows: dict[str, Any], stores: list[str]) -> None:
    limits = {t[1]: t[4] for t in TARGETS if t[0] == "store_turn"}
    pick: Callable[[str, str], float] = lambda s, k: float(rows[s]["median"].get(k) or 0.0)  # noqa: E731
    xs = range(len(stores))
    p50 = ax.bar([x - 0.2 for x in xs], [pick(s, "overhead_p50_ms") for s in stores], 0.4, label="p50")
    p99 = ax.bar([x + 0.2 for x in xs], [pick(s, "overhead_p99_ms") for s in stores], 0.4, label="p99")
    for bars in (p50, p99):
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=2)
    for x, store in zip(xs, stores, strict=True):
        if limits.get(store) is not None:
            ax.hlines(limits[store], x - 0.45, x + 0.45, colors="red", linestyles="--", linewidth=1)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(list(xs))
    ax.set_xticklabels(stores)
    ax.set_ylabel("ms per turn over the memory store")
    ax.set_title("store overhead per turn\n(red: p50 target)", fontsize=10)
    ax.legend(fontsize=7)
