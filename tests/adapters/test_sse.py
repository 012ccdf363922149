"""The SSE reader and the line splitter under it: every way a stream can be cut, every line end, the line cap.

One recorded OpenAI stream (a role chunk, text, a tool call in two pieces, a
comment, an `event:` / `id:` / `retry:` block, a multi-line data field, usage
and `[DONE]`) must give the same data however the network cut it and
whichever line ends the server used.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from createagents import ResponseFormatError
from createagents.adapters._lines import MAX_LINE, LineSplitter
from createagents.adapters._sse import sse_data

KIB = 1024
MIB = 1024 * KIB


def _chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-AbC123",
        "object": "chat.completion.chunk",
        "created": 1_763_718_000,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_0aa8d3e20b",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        **extra,
    }


PAYLOADS = [
    _chunk({"role": "assistant", "content": "", "refusal": None}),
    _chunk({"content": "Héllo, wörld 😀"}),  # multi-byte UTF-8: some cuts fall inside a character
    _chunk(
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_Lb5r",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ]
        }
    ),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Lis'}}]}),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'bon"}'}}]}),
    _chunk({}, "tool_calls"),
    {"id": "chatcmpl-AbC123", "object": "chat.completion.chunk", "choices": [], "usage": {"prompt_tokens": 57}},
]
DATA = [json.dumps(p, ensure_ascii=False).encode() for p in PAYLOADS]


def _event(data: bytes) -> bytes:
    return b"data: " + data + b"\n\n"


RECORDED = (
    b": OPENROUTER PROCESSING\n\n"  # a comment, then a blank line that ends no event: nothing
    + _event(DATA[0])
    + _event(DATA[1])
    + b"event: message\nid: 42\nretry: 3000\n"  # fields that are skipped, in the event they belong to
    + _event(DATA[2])
    + b"data:"
    + DATA[3]
    + b"\n\n"  # no space after the colon
    + _event(DATA[4])
    + b"data: {\n"  # one event in three data lines (and a field name alone: an empty line of data)
    + b'data:  "indented": true}\n'
    + b"data\n\n"
    + b": ping\n"
    + _event(DATA[5])
    + _event(DATA[6])
    + b"data: [DONE]\n\n"
)
EXPECTED = [*DATA[:5], b'{\n "indented": true}\n', *DATA[5:], b"[DONE]"]
ENDINGS = {"lf": b"\n", "crlf": b"\r\n", "cr": b"\r"}


def recorded(ending: str) -> bytes:
    return RECORDED.replace(b"\n", ENDINGS[ending])


async def _chunks(pieces: Iterable[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def _collect(pieces: Iterable[bytes], **kw: Any) -> list[bytes]:
    return [data async for data in sse_data(_chunks(pieces), **kw)]


def collect(pieces: Iterable[bytes], **kw: Any) -> list[bytes]:
    return asyncio.run(_collect(pieces, **kw))


def test_the_recorded_stream_parses_as_expected() -> None:
    data = collect([RECORDED])
    assert data == EXPECTED
    assert [json.loads(d) for d in data[:5]] == PAYLOADS[:5]  # what the adapter then parses


@pytest.mark.parametrize("ending", ENDINGS)
def test_cut_in_two_at_every_byte_gives_the_same_data(ending: str) -> None:
    stream = recorded(ending)

    async def every_cut() -> list[int]:
        return [i for i in range(len(stream) + 1) if await _collect([stream[:i], stream[i:]]) != EXPECTED]

    assert asyncio.run(every_cut()) == []


@pytest.mark.parametrize("ending", ENDINGS)
def test_byte_by_byte_gives_the_same_data(ending: str) -> None:
    stream = recorded(ending)
    assert collect(stream[i : i + 1] for i in range(len(stream))) == EXPECTED


@pytest.mark.parametrize("ending", ENDINGS)
def test_all_at_once_and_with_empty_reads_gives_the_same_data(ending: str) -> None:
    stream = recorded(ending)
    assert collect([b"", stream, b""]) == EXPECTED
    assert collect(piece for i in range(0, len(stream), 7) for piece in (stream[i : i + 7], b"")) == EXPECTED


@settings(max_examples=200, deadline=None)
@given(
    cuts=st.lists(st.integers(min_value=0, max_value=len(RECORDED) * 2), max_size=30),
    ending=st.sampled_from(sorted(ENDINGS)),
)
def test_cut_anywhere_any_number_of_times(cuts: list[int], ending: str) -> None:
    stream = recorded(ending)
    points = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    assert collect(stream[a:b] for a, b in itertools.pairwise(points)) == EXPECTED


def test_mixed_line_ends_in_one_stream() -> None:
    assert collect([b"data: a\r\ndata: b\rdata: c\n\r\n", b"data: d\r", b"\n\r", b"data: e\n\n"]) == [
        b"a\nb\nc",
        b"d",
        b"e",
    ]


def test_a_crlf_cut_between_its_cr_and_its_lf_is_one_line_end() -> None:
    # were the LF read as a second line end, the blank line would end the event after "a"
    assert collect([b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]) == [b"a\nb"]


def test_one_space_after_the_colon_is_dropped_and_only_one() -> None:
    assert collect([b"data:x\n\ndata: x\n\ndata:  x\n\ndata:\n\n"]) == [b"x", b"x", b" x", b""]


def test_other_fields_and_comments_are_skipped() -> None:
    stream = b": hi\nevent: delta\nid: 1\nretry: 10\nfoo: bar\ndatax: no\nDATA: no\ndata: yes\n\n: bye\n\n"
    assert collect([stream]) == [b"yes"]


# -- the end of the stream ------------------------------------------------------------------------
# Chosen: an event not closed by a blank line still counts (see _sse's docstring).


@pytest.mark.parametrize("ending", ENDINGS)
def test_an_event_not_closed_by_a_blank_line_still_counts(ending: str) -> None:
    end = ENDINGS[ending]
    assert collect([b"data: a" + end + end + b"data: [DONE]" + end]) == [b"a", b"[DONE]"]
    assert collect([b"data: a" + end + end + b"data: [DONE]"]) == [b"a", b"[DONE]"]  # no line end either
    assert collect([b"data: a" + end + b"data: b"]) == [b"a\nb"]
    assert collect([b"data: a" + end, b"data"]) == [b"a\n"]


def test_a_stream_that_ends_on_a_comment_or_another_field_yields_nothing_more() -> None:
    assert collect([b"data: a\n\n: bye"]) == [b"a"]
    assert collect([b"data: a\n\nevent: end"]) == [b"a"]
    assert collect([b""]) == []
    assert collect([]) == []


# -- the line cap -------------------------------------------------------------------------------------


async def _endless(first: bytes, piece: bytes, pulled: list[int], limit: int) -> AsyncIterator[bytes]:
    yield first
    for _ in range(limit):
        pulled[0] += 1
        yield piece


def test_the_default_cap_is_16_mib() -> None:
    assert MAX_LINE == 16 * MIB
    assert LineSplitter().max_line == MAX_LINE


def test_a_line_that_never_ends_fails_as_soon_as_it_is_over_the_cap() -> None:
    pulled = [0]

    async def read() -> None:
        async for _ in sse_data(_endless(b"data: ", b"x" * (64 * KIB), pulled, 10_000), max_line=MIB):
            pass

    with pytest.raises(ResponseFormatError, match="max_line"):
        asyncio.run(read())
    assert pulled[0] == 16  # 6 + 16 x 64 KiB bytes: over 1 MiB at the 16th piece, and not one piece more read


def test_a_line_just_at_the_cap_passes_and_one_byte_more_fails() -> None:
    line = b"data: " + b"x" * (MIB - 6)
    assert collect([line[: MIB // 2], line[MIB // 2 :], b"\n\n"], max_line=MIB) == [b"x" * (MIB - 6)]
    with pytest.raises(ResponseFormatError):
        collect([line[: MIB // 2], line[MIB // 2 :] + b"x", b"\n\n"], max_line=MIB)


def test_a_long_line_inside_one_big_read_is_caught_too() -> None:
    with pytest.raises(ResponseFormatError):
        collect([b"data: a\n\ndata: " + b"x" * 2000 + b"\n\ndata: b\n\n"], max_line=1000)
    with pytest.raises(ResponseFormatError):
        collect([b"data: a\n\ndata: " + b"x" * 2000], max_line=1000)


def test_an_event_of_many_short_data_lines_is_capped_as_a_whole() -> None:
    with pytest.raises(ResponseFormatError):
        collect([b"data: xxxxxxxxx\n" * 200], max_line=1000)
    with pytest.raises(ResponseFormatError):
        collect([b"data\n" * 2000], max_line=1000)
    assert collect([b"data: xxxxxxxxx\n" * 90 + b"\n"], max_line=1000) == [b"\n".join([b"xxxxxxxxx"] * 90)]


def test_the_ndjson_splitter_caps_lines_too() -> None:
    splitter = LineSplitter(1000)
    assert splitter.feed(b'{"a": 1}\n{"b"') == [b'{"a": 1}']
    assert splitter.feed(b": 2}\n") == [b'{"b": 2}']
    with pytest.raises(ResponseFormatError):
        for _ in range(20):
            splitter.feed(b"x" * 100)
    with pytest.raises(ResponseFormatError):
        LineSplitter(1000).feed(b"{}\n" + b"x" * 1001 + b"\n{}\n")
    assert LineSplitter(1000).feed(b"{}\r\n" + b"x" * 1000 + b"\n") == [b"{}\r", b"x" * 1000]  # LF only, for NDJSON


def _seconds_to_read_a_long_line(size: int, piece: int = 64 * KIB) -> float:
    """CPU seconds to read one event of `size` bytes of data sent in `piece`-byte reads, best of 3."""
    pieces = [b"data: ", *([b"x" * piece] * (size // piece)), b"\n\n"]
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        (data,) = collect(pieces, max_line=8 * size)
        best = min(best, time.process_time() - started)
        assert len(data) == size
        del data
    return best


def test_a_long_line_costs_time_linear_in_its_length() -> None:
    # Adding each read to the partial line copies it again and again: 8x the bytes, up to 64x the time
    # (about 40x measured). Kept in pieces and joined once, 8x the bytes is about 8x the time.
    small, large = _seconds_to_read_a_long_line(2 * MIB), _seconds_to_read_a_long_line(16 * MIB)
    assert large / max(small, 1e-4) < 20, (small, large)


def test_the_ndjson_splitter_is_linear_too() -> None:
    def seconds(size: int) -> float:
        best = float("inf")
        for _ in range(3):
            splitter = LineSplitter(8 * size)
            started = time.process_time()
            for _ in range(size // (64 * KIB)):
                assert splitter.feed(b"x" * (64 * KIB)) == []
            (line,) = splitter.feed(b"\n")
            best = min(best, time.process_time() - started)
            assert len(line) == size
            del line
        return best

    small, large = seconds(2 * MIB), seconds(16 * MIB)
    assert large / max(small, 1e-4) < 20, (small, large)
