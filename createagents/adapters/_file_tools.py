"""The `readlocalfile` built-in tool: a model reads text, CSV, Excel, Parquet and PDF files in a sandbox.

Compatible with createagents 0.3's tool of that name: the same arguments
(`path`, `max_tokens`, default 30000), the same sandbox variable
(`FILE_TOOL_BASE_DIR`, default the working directory, read at each call) and
the same 100 MB file-size limit. Two differences: text past `max_tokens` is
cut, with a note saying so, rather than the whole file refused; and failures
raise `ToolError`, whose message the model reads as the call's result.

Readers stream and stop at the token budget, so a large file costs what is
returned, not its size. Text and CSV need only the standard library; Excel
(openpyxl), Parquet (pyarrow) and PDF (pypdf) come with the
`createagents[file-tools]` extra and are imported only when such a file is
read.

The sandbox guards against the paths a model asks for (`..`, absolute paths,
symlinks leading out); it is not a defence against another local process
swapping files inside the directory while a call runs.
"""

from __future__ import annotations

import codecs
import csv
import datetime
import io
import os
import stat
from collections.abc import Iterable, Iterator
from importlib import import_module
from pathlib import Path
from typing import IO, Any

from ..application.tools import Tool
from ..domain.errors import ConfigurationError, ToolError
from ..domain.history import CHARS_PER_TOKEN

BASE_DIR_ENV = "FILE_TOOL_BASE_DIR"
DEFAULT_MAX_BYTES = 100 * 1024 * 1024  # 0.3's MAX_FILE_SIZE_BYTES
DEFAULT_MAX_TOKENS = 30_000  # 0.3's default for the `max_tokens` argument
EXTRA_HINT = "pip install 'createagents[file-tools]'"

_EXCEL = frozenset({".xlsx", ".xlsm"})
_UNSUPPORTED = frozenset({".xls", ".doc", ".docx", ".ppt", ".pptx", ".odt", ".epub", ".msg", ".rtf"})
_SNIFF_BYTES = 64 * 1024
_CHUNK_CHARS = 64 * 1024
_LISTED = 20  # directory entries named when a directory is asked for

_DESCRIPTION = (
    "Read a local file: text files (txt, md, py, json, ...), CSV, Excel (xlsx, xlsm), Parquet and PDF. "
    "Relative paths are relative to the allowed directory; paths outside it are refused. "
    "Tables come back as CSV text, PDFs page by page. Text past max_tokens is cut, with a note saying so."
)


def read_local_file(
    *,
    base_dir: str | os.PathLike[str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    name: str = "readlocalfile",
) -> Tool:
    """A `readlocalfile` tool of its own sandbox and limits, for `tools=[...]`.

    `base_dir` None reads `FILE_TOOL_BASE_DIR` (else the working directory)
    at each call, as 0.3 did; a directory given here is fixed now. Files over
    `max_bytes` are refused. `max_tokens` (about 4 characters a token) is
    both the default of the model's `max_tokens` argument and its ceiling:
    the model may ask for less, never more.
    """
    fixed_base = None if base_dir is None else Path(base_dir).resolve()
    for label, value in (("max_bytes", max_bytes), ("max_tokens", max_tokens)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigurationError(f"read_local_file: {label} must be an int >= 1, got {value!r}")
    ceiling = max_tokens

    def readlocalfile(path: str, max_tokens: int = ceiling) -> str:
        """Read a local file inside the allowed directory.

        Args:
            path: Path to the file, relative to the allowed directory or absolute inside it.
            max_tokens: Most tokens of content to return; longer content is cut, with a note saying so.
        """
        base = fixed_base if fixed_base is not None else _env_base_dir()
        tokens = min(max(1, max_tokens), ceiling)
        return _read(base, path, max_bytes=max_bytes, max_tokens=tokens, ceiling=ceiling)

    return Tool(readlocalfile, name=name, description=_DESCRIPTION)


def _env_base_dir() -> Path:
    return Path(os.environ.get(BASE_DIR_ENV) or os.getcwd()).resolve()


def _read(base: Path, raw: str, *, max_bytes: int, max_tokens: int, ceiling: int) -> str:
    if not base.is_dir():
        raise ToolError(f"the allowed directory {str(base)!r} ({BASE_DIR_ENV}) does not exist or is not a directory")
    target = _locate(base, raw)
    shown = repr(raw)
    if target.is_dir():
        raise ToolError(f"{shown} is a directory, not a file; it holds: {_listing(target)}")
    suffix = target.suffix.lower()
    if suffix in _UNSUPPORTED:
        raise ToolError(
            f"{shown}: {suffix} files cannot be read; readable are text, CSV, Excel (.xlsx, .xlsm), Parquet and PDF"
            + (" (save an .xls workbook as .xlsx or .csv)" if suffix == ".xls" else "")
        )
    limit = max_tokens * CHARS_PER_TOKEN
    try:
        with open(target, "rb", opener=_no_follow) as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ToolError(f"{shown} is not a regular file")
            if info.st_size > max_bytes:
                raise ToolError(
                    f"{shown} is {_size(info.st_size)}, over this tool's limit of {_size(max_bytes)}; it cannot be read"
                )
            text, cut = _collect(_chunks(f, suffix, shown), limit)
    except ToolError:
        raise
    except FileNotFoundError:
        raise ToolError(f"{shown} does not exist in the allowed directory {str(base)!r}") from None
    except PermissionError:
        raise ToolError(f"{shown}: permission denied") from None
    except OSError as e:
        raise ToolError(f"{shown} cannot be opened: {e.strerror or e}") from None
    if not cut:
        return text or f"({raw} is empty)"
    more = (
        f"ask with a larger max_tokens (up to {ceiling}) for more"
        if max_tokens < ceiling
        else "this is the most this tool returns at once"
    )
    return f"{text}\n\n[cut: the first {len(text)} characters (about {max_tokens} tokens) of {raw}; {more}]"


def _locate(base: Path, raw: str) -> Path:
    """The resolved file `raw` names, inside `base`; `ToolError` when it leads outside.

    Relative paths are taken from `base` first, then (as 0.3 did) from the
    working directory; either way the resolved path, symlinks followed, must
    lie inside `base`.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise ToolError("path must be a non-empty file path")
    if "\x00" in raw:
        raise ToolError(f"{raw!r} is not a valid path")
    given = Path(raw)
    candidates = [given] if given.is_absolute() else [base / given, Path.cwd() / given]
    inside: list[Path] = []
    for candidate in candidates:
        try:
            resolved = candidate.resolve()
        except (OSError, RuntimeError) as e:  # a symlink loop, say
            raise ToolError(f"{raw!r} cannot be resolved: {e}") from None
        if resolved.is_relative_to(base):
            if resolved.exists():
                return resolved
            inside.append(resolved)
    if not inside:
        raise ToolError(
            f"access denied: {raw!r} is outside the allowed directory {str(base)!r}; "
            "read only files inside it (set by FILE_TOOL_BASE_DIR)"
        )
    raise ToolError(f"{raw!r} does not exist in the allowed directory {str(base)!r}")


def _no_follow(path: str, flags: int) -> int:
    """Open without following a symlink put in place after the check, nor waiting on a FIFO (where the OS can)."""
    return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))


def _listing(directory: Path) -> str:
    try:
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in directory.iterdir())
    except OSError as e:
        return f"(cannot be listed: {e.strerror or e})"
    if not names:
        return "nothing"
    more = f" and {len(names) - _LISTED} more" if len(names) > _LISTED else ""
    return ", ".join(names[:_LISTED]) + more


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB" if n >= 1024 * 1024 else f"{n} bytes"


def _collect(chunks: Iterable[str], limit: int) -> tuple[str, bool]:
    """Up to `limit` characters of `chunks`, and whether there was more; stops reading there."""
    parts: list[str] = []
    size = 0
    iterator = iter(chunks)
    try:
        for chunk in iterator:
            if size + len(chunk) > limit:
                parts.append(chunk[: limit - size])
                return "".join(parts), True
            parts.append(chunk)
            size += len(chunk)
        return "".join(parts), False
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()  # a generator's `finally` (closing a workbook) runs now


def _chunks(f: IO[bytes], suffix: str, shown: str) -> Iterator[str]:
    if suffix in _EXCEL:
        return _guarded(_excel(f), "an Excel workbook", shown)
    if suffix == ".parquet":
        return _guarded(_parquet(f), "a Parquet file", shown)
    if suffix == ".pdf":
        return _guarded(_pdf(f), "a PDF", shown)
    if suffix in (".csv", ".tsv"):
        return _guarded(_csv(_text_stream(f, shown)), "CSV", shown)
    return _text(_text_stream(f, shown))


def _guarded(chunks: Iterator[str], kind: str, shown: str) -> Iterator[str]:
    """A reader's chunks, with a library's own error turned into a `ToolError` the model can act on."""
    try:
        yield from chunks
    except ToolError:
        raise
    except Exception as e:
        raise ToolError(f"{shown} cannot be read as {kind}: {type(e).__name__}: {e}") from None


def _library(module: str, kind: str) -> Any:
    try:
        return import_module(module)
    except ImportError:
        top = module.split(".")[0]
        raise ToolError(f"reading {kind} files needs {top}, which is not installed: {EXTRA_HINT}") from None


def _text_stream(f: IO[bytes], shown: str) -> io.TextIOWrapper:
    """`f` decoded: by its byte-order mark, else UTF-8 when its start is, else Windows-1252."""
    head = f.read(_SNIFF_BYTES)
    f.seek(0)
    encoding = "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    elif b"\x00" in head:
        raise ToolError(
            f"{shown} looks binary, not text; readable are text, CSV, Excel (.xlsx, .xlsm), Parquet and PDF"
        )
    else:
        try:
            codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < _SNIFF_BYTES)
        except UnicodeDecodeError:
            encoding = "cp1252"
    return io.TextIOWrapper(f, encoding=encoding, errors="replace", newline="")


def _text(stream: io.TextIOWrapper) -> Iterator[str]:
    while chunk := stream.read(_CHUNK_CHARS):
        yield chunk


def _csv(stream: io.TextIOWrapper) -> Iterator[str]:
    """The rows as comma-separated text, whatever the file's delimiter (sniffed: , ; tab or |)."""
    sample = stream.read(_SNIFF_BYTES)
    stream.seek(0)
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    yield from _rows(csv.reader(stream, dialect))


def _rows(rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        writer.writerow([_cell(v) for v in row])
        if out.tell() >= _CHUNK_CHARS:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    if out.tell():
        yield out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return str(value)


def _excel(f: IO[bytes]) -> Iterator[str]:
    """Every sheet, each under a `[sheet: name]` line, its rows as CSV with empty rows and trailing cells left out."""
    openpyxl = _library("openpyxl", "Excel")
    workbook = openpyxl.load_workbook(f, read_only=True, data_only=True)
    try:
        for i, sheet in enumerate(workbook.worksheets):
            yield ("\n" if i else "") + f"[sheet: {sheet.title}]\n"
            yield from _rows(_trimmed(sheet.iter_rows(values_only=True)))
    finally:
        workbook.close()


def _trimmed(rows: Iterable[tuple[Any, ...]]) -> Iterator[list[Any]]:
    for row in rows:
        cells = list(row)
        while cells and cells[-1] in (None, ""):
            cells.pop()
        if cells:
            yield cells


def _parquet(f: IO[bytes]) -> Iterator[str]:
    """A line naming the columns, their types and the row count, then the rows as CSV."""
    pq = _library("pyarrow.parquet", "Parquet")
    table = pq.ParquetFile(f)
    schema = table.schema_arrow
    columns = ", ".join(f"{field.name} ({field.type})" for field in schema)
    yield f"[parquet: {table.metadata.num_rows} rows; columns: {columns}]\n"
    yield from _rows([schema.names])
    for batch in table.iter_batches(batch_size=1024):
        yield from _rows(zip(*(column.to_pylist() for column in batch.columns), strict=True))


def _pdf(f: IO[bytes]) -> Iterator[str]:
    """The text of each page under a `--- Page n ---` line, as 0.3 gave it."""
    pypdf = _library("pypdf", "PDF")
    reader = pypdf.PdfReader(f)
    if reader.is_encrypted:
        try:
            opened = reader.decrypt("")
        except Exception:
            opened = 0
        if not opened:
            raise ToolError("the PDF is encrypted with a password; it cannot be read")
    for n, page in enumerate(reader.pages, start=1):
        text = (page.extract_text() or "").strip() or "(no extractable text: a scanned image?)"
        yield ("\n" if n > 1 else "") + f"--- Page {n} ---\n{text}\n"
