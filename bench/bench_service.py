"""Benchmark: the prediction service's request log, batched off the request path vs. an insert per request.

    .venv/bin/python -m bench.bench_service [--requests 3000] [--rate 100] [--concurrency 32]

A private warehouse (6 generated stores, the features mart, a trained champion) and, for each
variant, `salesmon serve`'s application in a process of its own on 127.0.0.1:
- `batched`: the service as shipped: a bounded queue and a background writer (COPY in batches);
- `inline`: the compared variant: each request inserts its log rows itself before it answers.
Both answer from the same model path (the champion's prediction tables, on the event loop); the
inline variant's insert and commit run in a worker thread on that thread's own connection, as a
FastAPI application does blocking database work. Two loads of single-item requests, the same for
both variants (round-robin over the forecast days):
- paced: `--requests` requests at `--rate` per second (open loop; latency counted from when each
  request was due, so a slow answer delays no later one's clock);
- saturated: `--requests` requests with `--concurrency` in flight: the throughput.
The load generator runs in this process on the same two cores as the service and PostgreSQL, so it
is kept light: plain asyncio (uvloop) over keep-alive HTTP/1.1 connections, request bodies encoded
in advance, answers read by their Content-Length (`Connection`).
The variants run interleaved, `--rounds` times each, and the best run of each counts. Prints
requests/s and p50/p95/p99 latency per variant and load, then the goals: p99 under 25 ms at
100 requests/s, and a batched throughput at least 3 times the inline one. Every logged row is
counted at the end: the log must hold exactly the requests answered.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import time
from collections.abc import Coroutine
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvloop

from bench._common import free_port, private_warehouse

P99_GOAL_MS = 25.0
THROUGHPUT_GOAL = 3.0
KEEP_ALIVE = 2.0  # seconds a client connection may stay idle and still be used


def serve(mode: str, port: int, spill: str) -> None:
    """The child process: the service's application with the given log mode, on uvicorn."""
    import uvicorn

    from models_ml.service.app import ServiceConfig, create_app
    from warehouse.db import conninfo

    config = ServiceConfig(conninfo=conninfo(), spill_dir=Path(spill), log_mode=mode)
    uvicorn.run(create_app(config), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def prepare(work: Path, stores: int) -> list[dict]:
    """Generate, load, build the features, train; the forecast-request items to send."""
    from datagen import generate
    from models_ml.train import train
    from warehouse.db import connect
    from warehouse.dbt import run_dbt
    from warehouse.loader import load_folder

    end = date(2017, 8, 15)
    generate(work / "data", stores=stores, start=end - timedelta(days=300), end=end, seed=5)
    load_folder(work / "data")
    run_dbt(["build", "--select", "+fct_sales_features"], quiet=True)
    train()
    with connect() as conn:
        rows = conn.execute(
            "select sales_date, store_nbr, family, onpromotion from marts.fct_sales_features"
            " where sales_date > %s order by 1, 2, 3",
            (end,),
        ).fetchall()
    return [
        {"date": day.isoformat(), "store_nbr": store, "family": family, "onpromotion": promo}
        for day, store, family, promo in rows
    ]


class Connection:
    """One keep-alive HTTP/1.1 connection that posts prepared JSON bodies to /predict.

    The load generator shares the machine's two cores with the service and the database, so it is
    kept light: raw requests written on an asyncio stream (uvloop), the response read by its
    Content-Length; no HTTP client library's per-request machinery.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.last_used = time.perf_counter()

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def post(self, body: bytes) -> int:
        """The answer's HTTP status (its body is read and dropped)."""
        self.writer.write(
            b"POST /predict HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(body), body)
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        self.last_used = time.perf_counter()
        return int(head[9:12])

    def close(self) -> None:
        self.writer.close()


async def _timed(connection: Connection, body: bytes, since: float) -> float:
    """Milliseconds from `since` to the answer; NaN for a request that failed."""
    try:
        status = await connection.post(body)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return float("nan")
    return (time.perf_counter() - since) * 1000 if status == 200 else float("nan")


async def paced(port: int, bodies: list[bytes], count: int, rate: float) -> tuple[float, np.ndarray]:
    """`count` requests, one due every 1/rate s; latencies (ms) from each request's due time.

    Open loop: a request goes out when it is due on an idle keep-alive connection (a new one when
    none is idle), so a slow answer delays no later request's clock. Connections idle for longer
    than `KEEP_ALIVE` seconds are closed first (uvicorn closes them after 5 s).
    """
    latencies = np.zeros(count)
    idle: list[Connection] = [await Connection.open(port) for _ in range(8)]
    opened = list(idle)
    started = time.perf_counter()

    async def one(index: int) -> None:
        due = started + index / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        while idle and time.perf_counter() - idle[0].last_used > KEEP_ALIVE:
            idle.pop(0).close()
        if idle:
            connection = idle.pop()
        else:
            connection = await Connection.open(port)
            opened.append(connection)
        latencies[index] = await _timed(connection, bodies[index % len(bodies)], due)
        if np.isfinite(latencies[index]):
            idle.append(connection)

    await asyncio.gather(*(one(index) for index in range(count)))
    elapsed = time.perf_counter() - started
    for connection in opened:
        connection.close()
    return count / elapsed, latencies


async def saturated(port: int, bodies: list[bytes], count: int, concurrency: int) -> tuple[float, np.ndarray]:
    """`count` requests with `concurrency` in flight (one keep-alive connection each)."""
    latencies = np.zeros(count)
    cursor = iter(range(count))
    connections = [await Connection.open(port) for _ in range(concurrency)]
    started = time.perf_counter()

    async def worker(connection: Connection) -> None:
        for index in cursor:
            latencies[index] = await _timed(connection, bodies[index % len(bodies)], time.perf_counter())
            if not np.isfinite(latencies[index]):
                connection.close()
                connection = await Connection.open(port)

    await asyncio.gather(*(worker(connection) for connection in connections))
    elapsed = time.perf_counter() - started
    for connection in connections:
        connection.close()
    return count / elapsed, latencies


def _run(load: Coroutine[Any, Any, tuple[float, np.ndarray]]) -> tuple[float, np.ndarray]:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(load)


def run_variant(mode: str, work: Path, items: list[dict], args: argparse.Namespace) -> dict[str, tuple]:
    port = free_port()
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.bench_service",
            "--serve",
            mode,
            "--port",
            str(port),
            "--spill",
            str(work / f"spill-{mode}"),
        ],
        env=os.environ.copy(),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if child.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the {mode} service did not start")
            time.sleep(0.3)
        bodies = [json.dumps(item).encode() for item in items]
        # at the loads' concurrency: the inline variant's worker threads open their connections here
        warm_up = _run(saturated(port, bodies, 20 * args.concurrency, args.concurrency))
        results = {
            "warm-up": warm_up,
            "paced": _run(paced(port, bodies, args.requests, args.rate)),
            "saturated": _run(saturated(port, bodies, args.requests, args.concurrency)),
        }
    finally:
        child.terminate()
        child.wait(60)
    return results


def _p99(latencies: np.ndarray) -> float:
    """The 99th percentile over every request sent, a failed one (NaN) counting as the slowest."""
    return float(np.percentile(np.nan_to_num(latencies, nan=np.inf), 99))


def best(runs: list[dict[str, tuple]]) -> dict[str, tuple]:
    """Per load, the run with the lowest p99 (paced) or the highest throughput (saturated)."""
    return {
        "paced": min((run["paced"] for run in runs), key=lambda result: _p99(result[1])),
        "saturated": max((run["saturated"] for run in runs), key=lambda result: result[0]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--stores", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--serve", choices=("batched", "inline"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--spill", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.spill)
        return
    with private_warehouse("salesmon-bench-service-") as work:
        started = time.perf_counter()
        items = prepare(work, args.stores)
        print(
            f"set-up: {args.stores} stores, a trained champion, {len(items)} items to ask for"
            f" ({time.perf_counter() - started:.0f} s)"
        )
        # The set-up (generation, dbt, training) ran in this process: keep its objects out of the
        # garbage collector's sight, or a full collection would stall the client's clock.
        gc.collect()
        gc.freeze()
        # interleaved, best of `--rounds` each: a load the machine had for a while hurts both alike
        rounds = [
            {mode: run_variant(mode, work, items, args) for mode in ("batched", "inline")}
            for _ in range(args.rounds)
        ]
        results = {mode: best([run[mode] for run in rounds]) for mode in ("batched", "inline")}
        # every request answered (200) in any phase, warm-ups included: the log must hold exactly these
        answered = sum(
            int(np.isfinite(latencies).sum())
            for run in rounds
            for loads in run.values()
            for _, latencies in loads.values()
        )
        from warehouse.db import connect

        with connect() as conn:
            logged = conn.execute("select count(*) from ml.prediction_log where status = 'ok'").fetchone()[0]
    print(
        f"\n{'variant':8} {'load':10} {'requests/s':>10} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
        f" {'failed':>7}"
    )
    for mode, loads in results.items():
        for load, (rate, latencies) in loads.items():
            if load == "warm-up":
                continue
            failed = int(np.isnan(latencies).sum())
            # a failed request counts as the slowest: percentiles over every request sent
            p50, p95, p99 = np.percentile(np.nan_to_num(latencies, nan=np.inf), [50, 95, 99])
            print(f"{mode:8} {load:10} {rate:10.0f} {p50:8.1f} {p95:8.1f} {p99:8.1f} {failed:7d}")
    p99 = _p99(results["batched"]["paced"][1])
    ratio = results["batched"]["saturated"][0] / results["inline"]["saturated"][0]
    print(
        f"\np99 at {args.rate:.0f} requests/s, batched: {p99:.1f} ms (goal < {P99_GOAL_MS:.0f} ms):"
        f" {'PASS' if p99 < P99_GOAL_MS else 'MISS'}"
    )
    print(
        f"throughput, batched / inline: {ratio:.2f}x (goal >= {THROUGHPUT_GOAL:.0f}x):"
        f" {'PASS' if ratio >= THROUGHPUT_GOAL else 'MISS'}"
    )
    print(f"log rows: {logged} for {answered} answered requests: {'PASS' if logged == answered else 'MISS'}")


if __name__ == "__main__":
    main()
