"""Reading in a second process (``reachmeter.reading``): items in order, errors raised
here, and the importing process receiving ahead of need so that the reader is not held up."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reachmeter.reading import items_from_process

BIG = 256 * 1024  # larger than a pipe's buffer: each item is sent only as it is received


def _numbers(first: int, count: int) -> Iterator[int]:
    yield from range(first, first + count)


def _failing(first: int) -> Iterator[int]:
    yield first
    raise ValueError("line 2: not a number")


def _marked(first: str, count: int) -> Iterator[bytes]:
    """``count`` big items; a line is added to the file ``first`` as each one is sent."""
    for number in range(count):
        with Path(first).open("a") as marks:
            marks.write(f"{number}\n")
        yield bytes(BIG)


@pytest.mark.parametrize("ahead", [0, 3])
def test_items_arrive_in_order(ahead: int) -> None:
    items = items_from_process(_numbers, (500,), lambda: 7, ahead=ahead)
    assert list(items) == list(range(7, 507))


@pytest.mark.parametrize("ahead", [0, 3])
def test_an_error_in_the_reading_process_is_raised_here(ahead: int) -> None:
    items = items_from_process(_failing, (), lambda: 1, ahead=ahead)
    assert next(items) == 1
    with pytest.raises(ValueError, match="line 2: not a number"):
        next(items)


def _sent(marks: Path) -> int:
    return len(marks.read_text().split()) if marks.exists() else 0


def _wait_for(marks: Path, count: int, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while _sent(marks) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return _sent(marks)


def test_items_are_received_ahead_of_need(tmp_path: Path) -> None:
    """While this process works on the first item, a thread here receives four more
    (three wait in its queue, one in its hand) and the reader starts sending the sixth;
    without reading ahead, the reader waits at the second until this process asks for it."""
    ahead = tmp_path / "ahead.txt"
    items = items_from_process(_marked, (10,), lambda: str(ahead), ahead=3)
    assert len(next(items)) == BIG
    assert _wait_for(ahead, 6, seconds=20) == 6
    time.sleep(0.3)
    assert _sent(ahead) == 6  # and no further
    assert sum(1 for _ in items) == 9
    assert _sent(ahead) == 10

    waiting = tmp_path / "waiting.txt"
    items = items_from_process(_marked, (10,), lambda: str(waiting), ahead=0)
    assert len(next(items)) == BIG
    assert _wait_for(waiting, 2, seconds=20) == 2
    time.sleep(0.3)
    assert _sent(waiting) == 2
    items.close()


def test_closing_early_stops_the_reading_process(tmp_path: Path) -> None:
    marks = tmp_path / "marks.txt"
    items = items_from_process(_marked, (1000,), lambda: str(marks), ahead=2)
    next(items)
    items.close()
    stopped = _sent(marks)
    time.sleep(0.5)
    assert _sent(marks) == stopped < 1000
