"""The `readlocalfile` built-in: formats, the sandbox, the limits, the optional readers' extra."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
from pathlib import Path

import pytest

from createagents import CreateAgent, ToolError
from createagents.adapters.builtin_tools import BUILTIN_TOOLS, read_local_file, readlocalfile
from createagents.domain.errors import ConfigurationError
from createagents.domain.messages import Message, ToolMessage, ToolSpec, UserMessage
from createagents.testing import FunctionModel, tool_call


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    box = tmp_path / "box"
    box.mkdir()
    monkeypatch.setenv("FILE_TOOL_BASE_DIR", str(box))
    monkeypatch.chdir(tmp_path)  # the working directory is outside the sandbox
    return box


async def read(path: str, **kwargs: object) -> str:
    result = await readlocalfile({"path": path, **kwargs})
    assert isinstance(result, str)
    return result


async def refused(path: str, **kwargs: object) -> str:
    with pytest.raises(ToolError) as e:
        await readlocalfile({"path": path, **kwargs})
    assert e.value.tool_name == "readlocalfile"
    return str(e.value)


def test_registered_by_name_with_the_0_3_arguments() -> None:
    assert BUILTIN_TOOLS["readlocalfile"] is readlocalfile
    params = readlocalfile.spec.parameters
    assert params["required"] == ["path"]
    assert set(params["properties"]) == {"path", "max_tokens"}
    assert params["properties"]["max_tokens"]["default"] == 30000


async def test_text_file(sandbox: Path) -> None:
    (sandbox / "notes.md").write_text("# Notes\nnaïve café ✓\n", encoding="utf-8")
    (sandbox / "sub").mkdir()
    (sandbox / "sub" / "a.log").write_text("line 1\n")
    assert await read("notes.md") == "# Notes\nnaïve café ✓\n"
    assert await read("sub/a.log") == "line 1\n"
    assert await read(str(sandbox / "sub" / "a.log")) == "line 1\n"  # absolute, inside


async def test_text_encodings_and_binary(sandbox: Path) -> None:
    (sandbox / "bom.txt").write_bytes("\ufeffhé".encode())
    (sandbox / "utf16.txt").write_text("olá", encoding="utf-16")
    (sandbox / "win.txt").write_bytes("“quoted” café".encode("cp1252"))
    (sandbox / "blob.bin").write_bytes(b"\x00\x01\x02binary")
    (sandbox / "empty.txt").write_bytes(b"")
    assert await read("bom.txt") == "hé"
    assert await read("utf16.txt") == "olá"
    assert await read("win.txt") == "“quoted” café"
    assert "looks binary" in await refused("blob.bin")
    assert await read("empty.txt") == "(empty.txt is empty)"


async def test_csv_any_delimiter_comes_back_comma_separated(sandbox: Path) -> None:
    (sandbox / "sales.csv").write_text('name;qty;note\nbolt;3;"a;b"\nnut;10;x\n')
    (sandbox / "plain.csv").write_text("a,b\n1,2\n")
    assert await read("sales.csv") == "name,qty,note\nbolt,3,a;b\nnut,10,x\n"
    assert await read("plain.csv") == "a,b\n1,2\n"


async def test_relative_paths_from_the_working_directory_still_work_inside(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (sandbox / "data.txt").write_text("found")
    monkeypatch.chdir(sandbox.parent)
    assert await read("box/data.txt") == "found"  # 0.3 resolved relative paths from the working directory


async def test_paths_out_of_the_sandbox_are_refused(sandbox: Path) -> None:
    secret = sandbox.parent / "secret.txt"
    secret.write_text("top secret")
    for path in ("../secret.txt", "sub/../../secret.txt", str(secret), "/etc/passwd"):
        message = await refused(path)
        assert "access denied" in message and "outside the allowed directory" in message, path
        assert "top secret" not in message


async def test_a_symlink_out_is_refused_a_symlink_within_is_fine(sandbox: Path) -> None:
    outside = sandbox.parent / "outside.txt"
    outside.write_text("top secret")
    (sandbox / "inside.txt").write_text("shared")
    try:
        (sandbox / "leak.txt").symlink_to(outside)
        (sandbox / "alias.txt").symlink_to(sandbox / "inside.txt")
        (sandbox / "up").symlink_to(sandbox.parent, target_is_directory=True)
    except OSError:
        pytest.skip("symlinks are not available here")
    assert "access denied" in await refused("leak.txt")
    assert "access denied" in await refused("up/outside.txt")
    assert await read("alias.txt") == "shared"


async def test_the_base_dir_is_read_at_each_call(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = sandbox.parent / "other"
    other.mkdir()
    (other / "x.txt").write_text("other")
    assert "access denied" in await refused(str(other / "x.txt"))
    monkeypatch.setenv("FILE_TOOL_BASE_DIR", str(other))
    assert await read("x.txt") == "other"
    monkeypatch.setenv("FILE_TOOL_BASE_DIR", str(other / "missing"))
    assert "does not exist" in await refused("x.txt")


async def test_without_the_variable_the_working_directory_is_the_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FILE_TOOL_BASE_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "here.txt").write_text("here")
    assert await read("here.txt") == "here"
    assert "access denied" in await refused("../here.txt")


async def test_missing_file_and_directory(sandbox: Path) -> None:
    (sandbox / "docs").mkdir()
    (sandbox / "docs" / "a.txt").write_text("a")
    (sandbox / "docs" / "inner").mkdir()
    assert "'nope.txt' does not exist in the allowed directory" in await refused("nope.txt")
    message = await refused("docs")
    assert "is a directory" in message and "a.txt" in message and "inner/" in message
    assert "non-empty" in await refused("  ")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
async def test_a_fifo_is_refused_without_waiting_for_a_writer(sandbox: Path) -> None:
    os.mkfifo(sandbox / "pipe.txt")
    assert "not a regular file" in await refused("pipe.txt")


async def test_unsupported_document_formats_say_what_is_readable(sandbox: Path) -> None:
    (sandbox / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    (sandbox / "report.docx").write_bytes(b"PK\x03\x04")
    assert "save an .xls workbook as .xlsx" in await refused("old.xls")
    assert ".docx files cannot be read" in await refused("report.docx")


async def test_size_limit(sandbox: Path) -> None:
    (sandbox / "big.txt").write_text("x" * 2000)
    small = read_local_file(base_dir=sandbox, max_bytes=1000)
    with pytest.raises(ToolError, match=r"'big.txt' is 2000 bytes, over this tool's limit of 1000 bytes"):
        await small({"path": "big.txt"})


async def test_token_limit_cuts_with_a_note(sandbox: Path) -> None:
    (sandbox / "long.txt").write_text("abcd" * 100)  # 400 characters, about 100 tokens
    cut = await read("long.txt", max_tokens=10)
    text, note = cut.split("\n\n", 1)
    assert text == "abcd" * 10
    assert "[cut: the first 40 characters (about 10 tokens) of long.txt; ask with a larger max_tokens" in note
    assert await read("long.txt", max_tokens=100) == "abcd" * 100


async def test_the_configured_max_tokens_is_a_ceiling_the_model_cannot_raise(sandbox: Path) -> None:
    (sandbox / "long.txt").write_text("abcd" * 100)
    capped = read_local_file(max_tokens=5)
    assert capped.spec.parameters["properties"]["max_tokens"]["default"] == 5
    result = await capped({"path": "long.txt", "max_tokens": 1_000_000})
    assert result.startswith("abcd" * 5 + "\n\n[cut:") and "the most this tool returns" in result
    assert (await capped({"path": "long.txt", "max_tokens": 0})).startswith("abcd\n\n[cut:")  # at least 1 token


def test_bad_limits_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="max_bytes"):
        read_local_file(max_bytes=0)
    with pytest.raises(ConfigurationError, match="max_tokens"):
        read_local_file(max_tokens=True)


async def test_a_fixed_base_dir_ignores_the_variable(sandbox: Path, tmp_path: Path) -> None:
    fixed = tmp_path / "fixed"
    fixed.mkdir()
    (fixed / "f.txt").write_text("fixed")
    (sandbox / "f.txt").write_text("env")
    mine = read_local_file(base_dir=fixed, name="read_fixed")
    assert mine.name == "read_fixed"
    assert await mine({"path": "f.txt"}) == "fixed"
    with pytest.raises(ToolError, match="access denied"):
        await mine({"path": str(sandbox / "f.txt")})


@pytest.mark.parametrize(
    ("suffix", "module"), [(".pdf", "pypdf"), (".parquet", "pyarrow.parquet"), (".xlsx", "openpyxl")]
)
async def test_a_missing_reader_names_the_extra(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch, suffix: str, module: str
) -> None:
    (sandbox / f"f{suffix}").write_bytes(b"not really")
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    message = await refused(f"f{suffix}")
    assert "pip install 'createagents[file-tools]'" in message and module.split(".")[0] in message


async def test_a_corrupt_file_is_a_tool_error(sandbox: Path) -> None:
    pytest.importorskip("pypdf")
    (sandbox / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    assert "'broken.pdf' cannot be read as a PDF" in await refused("broken.pdf")


async def test_excel(sandbox: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    workbook = openpyxl.Workbook()
    first = workbook.active
    first.title = "Stock"
    first.append(["item", "qty", "since"])
    first.append(["bolt", 3, datetime.date(2024, 5, 1)])
    first.append([None, None, None])
    first.append(["nut", 1.5, None])
    second = workbook.create_sheet("Notes")
    second.append(["ok"])
    workbook.save(sandbox / "stock.xlsx")
    assert await read("stock.xlsx") == (
        "[sheet: Stock]\nitem,qty,since\nbolt,3,2024-05-01T00:00:00\nnut,1.5\n\n[sheet: Notes]\nok\n"
    )


async def test_parquet(sandbox: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"city": ["Lisbon", "Porto"], "temp": [22, None]}), sandbox / "w.parquet")
    assert await read("w.parquet") == (
        "[parquet: 2 rows; columns: city (string), temp (int64)]\ncity,temp\nLisbon,22\nPorto,\n"
    )


async def test_pdf(sandbox: Path) -> None:
    pypdf = pytest.importorskip("pypdf")
    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.add_blank_page(width=200, height=200)
    writer.write(sandbox / "blank.pdf")
    result = await read("blank.pdf")
    assert result.startswith("--- Page 1 ---\n(no extractable text")
    assert "\n--- Page 2 ---\n" in result


async def test_pdf_text(sandbox: Path) -> None:
    pytest.importorskip("pypdf")
    (sandbox / "hello.pdf").write_bytes(_pdf_with_text("Hello PDF"))
    assert await read("hello.pdf") == "--- Page 1 ---\nHello PDF\n"


def _pdf_with_text(text: str) -> bytes:
    """A minimal one-page PDF showing `text` in Helvetica, with a correct cross-reference table."""
    stream = f"BT /F1 12 Tf 20 100 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


async def test_the_test_model_calls_it_without_crashing_the_run(sandbox: Path) -> None:
    agent = CreateAgent(provider="test", tools=["readlocalfile"])
    reply = agent.chat("read something")
    text = await reply
    assert text.startswith("Tool results: readlocalfile -> ")
    assert [c.name for c in reply.tool_calls] == ["readlocalfile"]
    await agent.aclose()


async def test_a_model_reads_a_file_and_recovers_from_a_refusal(sandbox: Path) -> None:
    (sandbox / "todo.txt").write_text("buy milk")

    def script(messages: list[Message], tools: list[ToolSpec]) -> object:
        if isinstance(messages[-1], UserMessage):
            return [tool_call("readlocalfile", path="todo.txt"), tool_call("readlocalfile", path="../etc/passwd")]
        return " || ".join(m.content for m in messages if isinstance(m, ToolMessage))

    agent = CreateAgent(provider=FunctionModel(script), tools=["readlocalfile"])
    ok, bad = (await agent.chat("todo?")).split(" || ")
    assert ok == "buy milk"
    assert bad.startswith("Error: access denied: '../etc/passwd' is outside the allowed directory")
    await agent.aclose()


def test_importing_the_tool_loads_no_reader_library() -> None:
    heavy = ("pandas", "pyarrow", "pypdf", "openpyxl")
    code = f"import sys, createagents.adapters.builtin_tools; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    assert out.stdout.strip() == "[]"


async def test_a_relative_path_is_looked_up_in_the_sandbox_first(sandbox: Path) -> None:
    (sandbox / "notes.txt").write_text("inside")
    (sandbox.parent / "notes.txt").write_text("outside")  # the working directory has one too
    assert await read("notes.txt") == "inside"


async def test_a_sandbox_reached_through_a_symlink_still_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "a.txt").write_text("ok")
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    monkeypatch.setenv("FILE_TOOL_BASE_DIR", str(tmp_path / "link"))  # as macOS's /tmp is a link
    assert await read(str(tmp_path / "link" / "a.txt")) == "ok"
    fixed = read_local_file(base_dir=tmp_path / "link")
    assert await fixed({"path": "a.txt"}) == "ok"


async def test_a_file_of_exactly_the_size_limit_is_read(tmp_path: Path) -> None:
    (tmp_path / "ten.txt").write_text("x" * 10)
    (tmp_path / "eleven.txt").write_text("x" * 11)
    tool = read_local_file(base_dir=tmp_path, max_bytes=10)
    assert await tool({"path": "ten.txt"}) == "x" * 10
    with pytest.raises(ToolError, match=r"too large|limit|bytes"):
        await tool({"path": "eleven.txt"})
