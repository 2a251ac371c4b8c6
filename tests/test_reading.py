"""Producers in other processes (``reachmeter.reading``): items in order, errors raised
here, fork or spawn, several processes answering what is sent to them, and early stops."""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from reachmeter.reading import Later, Processes, items_from_process, process_context

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


def test_items_arrive_in_order() -> None:
    items = items_from_process(_numbers, (500,), lambda: 7)
    assert list(items) == list(range(7, 507))


def test_the_process_is_forked_only_while_this_thread_is_alone() -> None:
    """A fork would copy a lock that another thread holds, held: with a second thread
    running, the process is spawned instead (and works the same)."""
    alone = "fork" if sys.platform == "linux" else "spawn"
    assert process_context().get_start_method() == alone
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert process_context().get_start_method() == "spawn"
        assert list(items_from_process(_numbers, (3,), lambda: 7)) == [7, 8, 9]
    finally:
        release.set()
        other.join()
    assert process_context().get_start_method() == alone


def _started_early(later: Later[int], marks: str, index: int) -> Iterator[int]:
    Path(f"{marks}.{index}").write_text("started")
    value = later.get()
    yield from range(value + 10 * index, value + 10 * index + 3)


def test_processes_work_before_the_first_value_is_ready(tmp_path: Path) -> None:
    """``first()`` here returns only once both processes have started their work, which
    they can do only if they need not wait for the value first."""
    marks = tmp_path / "marks"

    def first() -> int:
        deadline = time.monotonic() + 20
        while not all(Path(f"{marks}.{index}").exists() for index in (0, 1)):
            if time.monotonic() > deadline:
                raise AssertionError("a process waited for the first value")
            time.sleep(0.02)
        return 7

    items = list(Processes(_started_early, [(str(marks), 0), (str(marks), 1)], first))
    assert sorted(items) == [(0, 7), (0, 8), (0, 9), (1, 17), (1, 18), (1, 19)]
    assert [value for index, value in items if index == 1] == [17, 18, 19]


def _taking_turns(later: Later[int], turns: int) -> Iterator[object]:
    yield "ready"
    for _ in range(turns):
        yield later.receive() * later.get()


def test_processes_answer_what_is_sent_to_them() -> None:
    """Each process answers the numbers sent to it, times the first value; sent to each
    in turn, the answers come back in turn."""
    group = Processes(_taking_turns, [(2,), (2,)], lambda: 10)
    answers: list[tuple[int, object]] = []
    ready = sent = 0
    for index, item in group:
        if item == "ready":
            ready += 1
            if ready < 2:
                continue
        else:
            answers.append((index, item))
        if sent < 4:
            sent += 1
            group.send((sent - 1) % 2, sent)
    assert answers == [(0, 10), (1, 20), (0, 30), (1, 40)]


def _waiting_forever(later: Later[int], pid_file: str, fail: bool) -> Iterator[int]:
    Path(pid_file).write_text(str(os.getpid()))
    if fail:
        time.sleep(0.2)
        raise ValueError("block 3: bad")
    yield later.receive()


def test_an_error_in_one_process_is_raised_here_and_the_others_are_stopped(
    tmp_path: Path,
) -> None:
    pids = [tmp_path / "0.pid", tmp_path / "1.pid"]
    group = Processes(_waiting_forever, [(str(pids[0]), True), (str(pids[1]), False)], lambda: 1)
    started = time.monotonic()
    with pytest.raises(ValueError, match="block 3: bad"):
        list(group)
    assert time.monotonic() - started < 10
    waiting = int(pids[1].read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(waiting, 0)


def test_an_error_in_the_reading_process_is_raised_here() -> None:
    items = items_from_process(_failing, (), lambda: 1)
    assert next(items) == 1
    with pytest.raises(ValueError, match="line 2: not a number"):
        next(items)


def _sent(marks: Path) -> int:
    return len(marks.read_text().split()) if marks.exists() else 0


def test_closing_early_stops_the_reading_process(tmp_path: Path) -> None:
    marks = tmp_path / "marks.txt"
    items = items_from_process(_marked, (1000,), lambda: str(marks))
    next(items)
    items.close()
    stopped = _sent(marks)
    time.sleep(0.5)
    assert _sent(marks) == stopped < 1000


class _Box:
    def __init__(self, number: int) -> None:
        self.number = number


def _boxes(first: int, count: int) -> Iterator[_Box]:
    for number in range(first, first + count):
        yield _Box(number)


def test_an_item_handed_over_is_not_kept_here() -> None:
    """The consumer may grow what it was given: once it lets go, nothing here holds on
    to it."""
    items = items_from_process(_boxes, (5,), lambda: 0)
    first = next(items)
    assert first.number == 0
    given = weakref.ref(first)
    del first
    assert next(items).number == 1
    gc.collect()
    assert given() is None
    items.close()
