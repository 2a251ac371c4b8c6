"""Benchmark: the web application under load on a large store.

Builds (or reuses, by path) a store of N outputs with people in groups (written straight
through SQLite, as ``bench/scoring.py`` does) and M events (Crossref Event Data lines through
the real ingest, matching and scoring), serves it with ``reachmeter serve --workers W`` on
loopback, and runs C concurrent clients (asyncio, keep-alive HTTP/1.1 parsed by h11) for S
seconds against the output page, the outputs list page, API reads and the badge. Prints
requests/s and p50/p95/p99 per endpoint next to its target, after a pass with one client
alone (the time a request takes without queueing).

    .venv/bin/python bench/web.py                       # 100,000 outputs, 1,000,000 events
    .venv/bin/python bench/web.py --seconds 10 --clients 20 --workers 2 --no-pages
    .venv/bin/python bench/web.py --outputs 10000 --events 100000 --db /tmp/small.db

The store is cached under /tmp (``--db``); building it takes minutes the first time. The
clients run on the same machine as the server, so the figures include their own cost.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h11
import httpx
import orjson

from scoring import AS_OF, SOURCES, SPAN_SECONDS, START, _flush_outputs

DEFAULT_DB = Path("/tmp/reachmeter-bench-web/store.db")  # noqa: S108  (a cache, by design)
BUILD_KEY = "bench_web_build"
FACULTIES = 4
DEPARTMENTS = 5  # per faculty
TARGETS_MS = {"page": 100.0, "api": 50.0, "badge": 20.0}


# -- the store ------------------------------------------------------------------------------


def _insert_catalogue(path: Path, outputs: int, people: int, rng: random.Random) -> None:
    """Outputs (one DOI each), people in nested groups and authorships, written straight
    through SQLite as ``bench/scoring.py`` does: the catalogue importers are not what this
    benchmark measures, and at 100,000 rows they would take most of an hour."""
    import sqlite3

    from reachmeter.store import open_store

    open_store(path).close()  # creates and migrates the schema
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA synchronous=OFF")
    groups: list[tuple[object, ...]] = []
    for faculty in range(1, FACULTIES + 1):
        groups.append((faculty, f"Bench Faculty {faculty}", "faculty", None, 0))
        for department in range(1, DEPARTMENTS + 1):
            number = FACULTIES + (faculty - 1) * DEPARTMENTS + department
            groups.append((number, f"Bench Department {faculty}.{department}", "department",
                           faculty, 0))  # fmt: skip
    connection.executemany(
        "INSERT INTO groups (id, name, kind, parent_id, is_demo) VALUES (?, ?, ?, ?, ?)", groups
    )
    now = "2026-11-01 00:00:00.000000"
    connection.executemany(
        "INSERT INTO people (id, name, name_key, role, is_demo, created_at)"
        " VALUES (?, ?, ?, ?, 0, ?)",
        [
            (n, f"Bench Person {n}", f"bench person {n}", "researcher", now)
            for n in range(1, people + 1)
        ],
    )
    connection.executemany(
        "INSERT INTO person_groups (person_id, group_id) VALUES (?, ?)",
        [(n, FACULTIES + 1 + (n - 1) % (FACULTIES * DEPARTMENTS)) for n in range(1, people + 1)],
    )
    venues = [f"Journal {n}" for n in range(max(outputs // 500, 1))]
    types = ["article"] * 8 + ["preprint", "dataset", "book", "report"]
    batch: list[tuple[object, ...]] = []
    identifiers: list[tuple[object, ...]] = []
    authorships: list[tuple[int, int, int]] = []
    for number in range(1, outputs + 1):
        published: str | None = (START + dt.timedelta(days=rng.randrange(3650))).date().isoformat()
        if rng.random() < 0.05:
            published = None
        venue = rng.choice(venues)
        title = f"Bench output {number}: a study in {venue}"
        batch.append((number, rng.choice(types), title, venue, published, "{}", 0, 0, now, now))
        identifiers.append((number, "doi", f"10.5555/bench.{number}"))
        for position, person in enumerate(rng.sample(range(1, people + 1), rng.choice((1, 2, 3)))):
            authorships.append((number, person, position + 1))
        if len(batch) >= 50_000:
            _flush_outputs(connection, batch, identifiers)
    _flush_outputs(connection, batch, identifiers)
    connection.executemany(
        "INSERT INTO authorships (output_id, person_id, position) VALUES (?, ?, ?)", authorships
    )
    connection.commit()
    connection.close()


def _write_events(path: Path, events: int, outputs: int, rng: random.Random) -> None:
    """Crossref Event Data lines, skewed as in ``bench/scoring.py``: a few outputs get much
    attention, most a little, a third none; a few accounts post a lot."""
    names = [name for name, _ in SOURCES]
    weights = [weight for _, weight in SOURCES]
    authors = max(events // 3, 10)
    heavy = max(authors // 200, 5)
    with path.open("wb") as handle:
        for number in range(events):
            rank = int(outputs * 0.66 * rng.random() ** 2.5)
            output = (rank * 7919) % outputs + 1
            source = rng.choices(names, weights)[0]
            person = rng.randrange(heavy) if rng.random() < 0.2 else rng.randrange(authors)
            author = f"https://{source}.example/u{person}"
            when = START + dt.timedelta(seconds=rng.randrange(SPAN_SECONDS))
            subj_id = f"{author}/post/{number}"
            doi = f"https://doi.org/10.5555/bench.{output}"
            record = {
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "subj_id": subj_id,
                "relation_type_id": "discusses",
                "obj_id": doi,
                "source_id": source,
                "occurred_at": when.isoformat().replace("+00:00", "Z"),
                "subj": {
                    "pid": subj_id,
                    "title": f"Post {number} on {doi}",
                    "author": {"url": author},
                },
            }
            handle.write(orjson.dumps(record) + b"\n")


def build(path: Path, outputs: int, events: int, people: int) -> None:
    """Build the store at ``path`` through the real importers, ingest and scoring."""
    from reachmeter.ingest import ingest_paths
    from reachmeter.scoring import compute_scores, load_profile
    from reachmeter.store import open_store

    key = f"{outputs}/{events}/{people}"
    if path.exists():
        store = open_store(path)
        try:
            if store.get_meta(BUILD_KEY) == key:
                print(f"reusing {path} ({outputs:,} outputs, {events:,} events)")
                return
        finally:
            store.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    started = time.perf_counter()
    _insert_catalogue(path, outputs, people, rng)
    events_file = path.parent / "mentions.jsonl"
    _write_events(events_file, events, outputs, rng)
    print(f"catalogue and event file: {time.perf_counter() - started:.0f} s", flush=True)
    store = open_store(path)
    try:
        started = time.perf_counter()
        summary = ingest_paths(store, [events_file])
        print(f"ingest and matching of {summary.stored:,} events: "
              f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
        started = time.perf_counter()
        run = compute_scores(store, load_profile("default"), AS_OF)
        print(f"scoring {run.scored:,} outputs: {time.perf_counter() - started:.0f} s")
        store.set_meta(BUILD_KEY, key)
    finally:
        store.close()
    events_file.unlink()


# -- the server -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def serve(path: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    """``reachmeter serve`` on the store, as a public dashboard, without access logs."""
    command = [
        str(Path(sys.executable).parent / "reachmeter"), "serve", "--db", str(path),
        "--port", str(port), "--workers", str(workers), "--no-access-log",
    ]  # fmt: skip
    env = {
        **os.environ,
        "REACHMETER_PUBLIC_DASHBOARD": "true",
        "REACHMETER_SECRET_KEY": "bench-only",
    }
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)  # noqa: S603
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/profiles", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.3)
    server.terminate()
    raise SystemExit("the server did not start")


# -- the load -------------------------------------------------------------------------------

Endpoint = tuple[str, str, Callable[[random.Random], str]]


def endpoints(outputs: int, with_pages: bool) -> list[Endpoint]:
    def any_output(rng: random.Random) -> int:
        return rng.randrange(1, outputs + 1)

    chosen: list[Endpoint] = [
        ("api", "GET /api/v1/outputs", lambda r: "/api/v1/outputs?limit=50"),
        (
            "api",
            "GET /api/v1/outputs (filtered, page 2+)",
            lambda r: f"/api/v1/outputs?type=dataset&sort=published_on&limit=50"
            f"&published_to={2017 + r.randrange(9)}-06-30",
        ),
        ("api", "GET /api/v1/outputs/{id}", lambda r: f"/api/v1/outputs/{any_output(r)}"),
        (
            "api",
            "GET /api/v1/outputs/{id}/score",
            lambda r: f"/api/v1/outputs/{any_output(r)}/score",
        ),
        (
            "api",
            "GET /api/v1/outputs/{id}/events",
            lambda r: f"/api/v1/outputs/{any_output(r)}/events?limit=50",
        ),
        (
            "badge",
            "GET /badge/doi/{doi}.svg",
            lambda r: f"/badge/doi/10.5555/bench.{any_output(r)}.svg",
        ),
    ]  # fmt: skip
    if with_pages:
        chosen[:0] = [
            ("page", "GET /outputs/{id} (page)", lambda r: f"/outputs/{any_output(r)}"),
            ("page", "GET /outputs (page)", lambda r: "/outputs"),
        ]
    return chosen


class _Connection:
    """One keep-alive HTTP/1.1 connection, parsed by h11 (the parser under httpx, without
    the rest of httpx): a client that costs the machine little, so that the figures are
    mostly the server's."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.state = h11.Connection(h11.CLIENT)

    @classmethod
    async def open(cls, host: str, port: int) -> _Connection:
        reader, writer = await asyncio.open_connection(host, port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def get(self, host: str, target: str) -> int:
        """GET ``target``; its status once the whole body is read."""
        headers = [("Host", host), ("Accept", "*/*")]
        self.writer.write(
            self.state.send(h11.Request(method="GET", target=target, headers=headers))
            + self.state.send(h11.EndOfMessage())
        )
        status = 0
        while True:
            event = self.state.next_event()
            if event is h11.NEED_DATA:
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError("the server closed the connection")
                self.state.receive_data(data)
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.EndOfMessage):
                self.state.start_next_cycle()
                return status
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("the server closed the connection")

    def close(self) -> None:
        self.writer.close()


async def _client(
    base: str,
    chosen: list[Endpoint],
    stop_at: float,
    seed: int,
    times: dict[str, list[float]],
    errors: dict[str, int],
) -> None:
    rng = random.Random(seed)
    turn = seed
    address = httpx.URL(base)
    host, port = address.host, address.port or 80
    connection = await _Connection.open(host, port)
    try:
        while time.perf_counter() < stop_at:
            _, name, url = chosen[turn % len(chosen)]
            turn += 1
            started = time.perf_counter()
            try:
                ok = await connection.get(f"{host}:{port}", url(rng)) == 200
            except (OSError, h11.ProtocolError):
                ok = False
                connection.close()
                connection = await _Connection.open(host, port)
            times[name].append(time.perf_counter() - started)
            if not ok:
                errors[name] += 1
    finally:
        connection.close()


async def load(base: str, chosen: list[Endpoint], clients: int, seconds: float) -> Any:
    times: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    stop_at = time.perf_counter() + seconds
    await asyncio.gather(
        *(_client(base, chosen, stop_at, seed, times, errors) for seed in range(clients))
    )
    return times, errors


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def report(chosen: list[Endpoint], times: Any, errors: Any, seconds: float) -> None:
    print(f"{'endpoint':44} {'req':>6} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} "
          f"{'p99 ms':>7} {'err':>4}  target p95")  # fmt: skip
    total = 0
    for kind, name, _ in chosen:
        values = times.get(name, [])
        total += len(values)
        if not values:
            print(f"{name:44} {'no requests':>20}")
            continue
        p95 = _pct(values, 0.95)
        target = TARGETS_MS[kind]
        verdict = "ok" if p95 <= target else "over"
        print(
            f"{name:44} {len(values):>6} {len(values) / seconds:>7.1f} "
            f"{statistics.median(values) * 1000:>7.1f} {p95:>7.1f} {_pct(values, 0.99):>7.1f} "
            f"{errors.get(name, 0):>4}  <= {target:.0f} ms {verdict}"
        )
    print(f"{'all':44} {total:>6} {total / seconds:>7.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--outputs", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--people", type=int, default=1_000)
    parser.add_argument("--db", type=Path, default=DEFAULT_DB, help="built once, then reused")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--workers", type=int, default=2, help="server processes (`reachmeter serve --workers`)"
    )
    parser.add_argument(
        "--baseline-seconds", type=float, default=10.0, help="first, one client alone (0: skip)"
    )
    parser.add_argument("--no-pages", action="store_true", help="only the API and badges")
    args = parser.parse_args()
    build(args.db, args.outputs, args.events, args.people)

    from reachmeter.web import pages

    paths = {getattr(route, "path", "") for route in pages.router.routes}
    with_pages = not args.no_pages and {"/outputs", "/outputs/{output_id}"} <= paths
    if not args.no_pages and not with_pages:
        print("the dashboard pages /outputs and /outputs/{output_id} do not exist: skipped")
    chosen = endpoints(args.outputs, with_pages)
    port = _free_port()
    server = serve(args.db, port, args.workers)
    try:
        base = f"http://127.0.0.1:{port}"
        asyncio.run(load(base, chosen, args.clients, min(args.seconds, 3.0)))  # warm up
        if args.baseline_seconds > 0:
            print(f"one client for {args.baseline_seconds:.0f} s: the time a request takes alone")
            times, errors = asyncio.run(load(base, chosen, 1, args.baseline_seconds))
            report(chosen, times, errors, args.baseline_seconds)
            print()
        print(
            f"{args.clients} clients for {args.seconds:.0f} s against {args.workers} server "
            f"process(es), {os.cpu_count()} CPUs shared with the clients and anything else running"
            f" (load average {os.getloadavg()[0]:.1f} before the run)"
        )
        times, errors = asyncio.run(load(base, chosen, args.clients, args.seconds))
        report(chosen, times, errors, args.seconds)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
