"""Producers run in other processes, what they yield streamed back to this one.

Large imports read and prepare a file in a second process while this one stores what it
has sent (``items_from_process``), or have several processes read and store parts of it
while this one coordinates them (``Processes``), so that the work uses every core (threads
would take turns on the interpreter lock).

On Linux, when this process runs no other thread, the second process is forked: it starts
at once with every module already imported. Otherwise it is spawned, and imports what it
needs again (a second or more).
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import sys
import threading
from collections.abc import Callable, Generator, Iterator
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkContext, SpawnContext
from typing import Any, Generic, TypeVar, cast

__all__ = ["Later", "Processes", "ReadingProcessError", "items_from_process"]

_ITEM, _END, _ERROR = 0, 1, 2
_T = TypeVar("_T")
_MISSING: Any = object()


class ReadingProcessError(RuntimeError):
    """The reading process ended without finishing, or failed with an exception that
    could not be sent back whole."""


class Later(Generic[_T]):
    """In the reading process, the value that ``first()`` gives in the importing process,
    which arrives while the reading process already works; then, with ``receive``, what
    the importing process sends it (``Processes.send``)."""

    def __init__(self, channel: Connection) -> None:
        self._channel = channel
        self._value: _T = _MISSING

    def ready(self) -> bool:
        """Whether the value has arrived (never waits)."""
        if self._value is _MISSING and self._channel.poll():
            self._value = self._channel.recv()
        return self._value is not _MISSING

    def get(self) -> _T:
        """The value, waiting for it if need be."""
        if self._value is _MISSING:
            self._value = self._channel.recv()
        return self._value

    def receive(self) -> Any:
        """The next message sent after the value, waiting for it. Raises ``EOFError`` once
        the importing process has gone (so an orphan stops)."""
        self.get()
        return self._channel.recv()


def _run(
    channel: Connection,
    produce: Callable[..., Iterator[Any]],
    args: tuple[Any, ...],
    later: bool,
    inherited: list[Connection],
) -> None:
    """Reading process: send what ``produce`` yields, given the first value (or, with
    ``later``, a ``Later`` that gives it).

    ``inherited`` are the importing process's ends of the pipes, which a forked process
    holds copies of: closed at once, so that once the importing process has gone, its
    end is closed everywhere and this process's reads and writes fail, and it stops.
    """
    for end in inherited:
        end.close()
    gc.disable()  # imports make many short-lived acyclic objects; no cycles worth collecting
    try:
        first: Any
        if later:
            first = Later(channel)
        else:
            try:
                first = channel.recv()
            except EOFError:  # the importing process gave up before it could send it
                return
        for item in produce(first, *args):
            channel.send((_ITEM, item))
        channel.send((_END, None))
    except BaseException as exc:  # sent to the importing process, which raises it
        _send_error(channel, exc)
    finally:
        channel.close()


def _send_error(channel: Connection, exc: BaseException) -> None:
    try:
        channel.send((_ERROR, exc))
    except OSError:
        return  # the importing process no longer listens (it stopped early)
    except Exception:  # an exception that cannot be pickled
        with contextlib.suppress(OSError):
            channel.send((_ERROR, ReadingProcessError(f"{type(exc).__name__}: {exc}")))


def items_from_process(
    produce: Callable[..., Iterator[Any]],
    args: tuple[Any, ...],
    first: Callable[[], Any],
) -> Iterator[Any]:
    """What ``produce(first(), *args)`` yields, run in a second process, in order.

    ``produce`` must be a module-level function (a spawned process imports it by name).
    ``first()`` runs here while that process starts. An exception raised there is raised
    here, the same one when it can be pickled; a process that dies, or is killed, raises
    ``ReadingProcessError``. Closing the iterator early stops the process.

    """
    return _received(produce, args, first)


def process_context() -> ForkContext | SpawnContext:
    """Fork where it is safe and spawn elsewhere.

    A forked process copies this one as it is, so it needs no imports. But a lock held by
    another thread of this one would be copied held, and never released. So fork only
    runs on Linux (macOS frameworks are not fork-safe) and while this thread is the only
    one.
    """
    if sys.platform == "linux" and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _received(
    produce: Callable[..., Iterator[Any]],
    args: tuple[Any, ...],
    first: Callable[[], Any],
) -> Generator[Any, None, None]:
    context = process_context()
    ours, theirs = context.Pipe()
    inherited = [ours] if isinstance(context, ForkContext) else []
    child = context.Process(
        target=_run, args=(theirs, produce, args, False, inherited), daemon=True
    )
    child.start()
    theirs.close()
    try:
        try:
            ours.send(first())
            while True:
                kind, item = ours.recv()
                if kind == _END:
                    return
                if kind == _ITEM:
                    yield item
                else:
                    error: BaseException = item
                    break
        except (EOFError, ConnectionError):  # the process died, or was killed
            raise ReadingProcessError("the reading process ended without finishing") from None
        raise error
    finally:
        ours.close()
        child.join(timeout=10)
        if child.is_alive():
            child.kill()
            child.join()


class Processes:
    """Several processes, each running ``produce(later, *arguments[i])``, where ``later``
    is a ``Later`` giving what ``first()`` returns here; what they yield comes back merged,
    as ``(i, item)`` pairs in the order received, and ``send`` answers one of them.

    ``first()`` runs here once, while the processes start, and its value goes to each.
    An exception raised in one is raised here (the same one when it can be pickled); one
    that dies raises ``ReadingProcessError``. Leaving early (an error, or closing the
    iteration) kills those still running: what they had not committed is rolled back.
    """

    def __init__(
        self,
        produce: Callable[..., Iterator[Any]],
        arguments: list[tuple[Any, ...]],
        first: Callable[[], Any],
    ) -> None:
        self._produce = produce
        self._arguments = arguments
        self._first = first
        self._channels: list[Connection] = []

    def send(self, index: int, message: Any) -> None:
        """Send a message to process ``index`` (its ``Later.receive`` gets it)."""
        self._channels[index].send(message)

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        context = process_context()
        children = []
        forked = isinstance(context, ForkContext)
        for arguments in self._arguments:
            ours, theirs = context.Pipe()
            inherited = [*self._channels, ours] if forked else []
            child = context.Process(
                target=_run, args=(theirs, self._produce, arguments, True, inherited), daemon=True
            )
            child.start()
            theirs.close()
            self._channels.append(ours)
            children.append(child)
        finished = False
        try:
            value = self._first()
            for channel in self._channels:
                channel.send(value)
            running = {channel: index for index, channel in enumerate(self._channels)}
            while running:
                for ready in wait(list(running)):
                    channel = cast(Connection, ready)
                    try:
                        kind, item = channel.recv()
                    except (EOFError, ConnectionError):
                        raise ReadingProcessError(
                            "a reading process ended without finishing"
                        ) from None
                    if kind == _ITEM:
                        yield running[channel], item
                    elif kind == _END:
                        del running[channel]
                    else:
                        raise item
            finished = True
        finally:
            for channel in self._channels:
                channel.close()
            for child in children:
                if not finished:
                    child.kill()
                child.join()
