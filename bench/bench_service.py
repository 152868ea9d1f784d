"""Benchmark: the prediction service's request log, batched off the request path vs. an insert per request.

    .venv/bin/python -m bench.bench_service [--requests 3000] [--rate 100] [--concurrency 32]

A private warehouse (6 generated stores, the features mart, a trained champion) and, for each
variant, `salesmon serve`'s application in a process of its own on 127.0.0.1:
- `batched`: the service as shipped: a bounded queue and a background writer (COPY in batches);
- `inline`: the compared variant: each request inserts its log rows itself before it answers.
Two loads of single-item requests, the same for both variants (round-robin over the forecast days):
- paced: `--requests` requests at `--rate` per second (open loop; latency counted from when each
  request was due, so a slow answer delays no later one's clock);
- saturated: `--requests` requests with `--concurrency` in flight: the throughput.
The variants run interleaved, `--rounds` times each, and the best run of each counts. Prints
requests/s and p50/p95/p99 latency per variant and load, then the goals: p99 under 25 ms at
100 requests/s, and a batched throughput at least 3 times the inline one. Every logged row is
counted at the end: the log must hold exactly the requests answered.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
import numpy as np

from bench._common import free_port, private_warehouse

P99_GOAL_MS = 25.0
THROUGHPUT_GOAL = 3.0


def serve(mode: str, port: int, spill: str) -> None:
    """The child process: the service's application with the given log mode, on uvicorn."""
    import uvicorn

    from models_ml.service.app import ServiceConfig, create_app
    from warehouse.db import conninfo

    config = ServiceConfig(conninfo=conninfo(), spill_dir=Path(spill), log_mode=mode)
    uvicorn.run(create_app(config), host="127.0.0.1", port=port, log_level="warning")


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


async def _timed(client: httpx.AsyncClient, item: dict, since: float) -> float:
    """Milliseconds from `since` to the answer; NaN for a request that failed or timed out."""
    try:
        answer = await client.post("/predict", json=item)
    except httpx.HTTPError:
        return float("nan")
    return (time.perf_counter() - since) * 1000 if answer.status_code == 200 else float("nan")


async def paced(url: str, items: list[dict], count: int, rate: float) -> tuple[float, np.ndarray]:
    """`count` requests, one due every 1/rate s; latencies (ms) from each request's due time."""
    latencies = np.zeros(count)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=2)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:
        started = time.perf_counter()

        async def one(index: int) -> None:
            due = started + index / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            latencies[index] = await _timed(client, items[index % len(items)], due)

        await asyncio.gather(*(one(index) for index in range(count)))
        return count / (time.perf_counter() - started), latencies


async def saturated(url: str, items: list[dict], count: int, concurrency: int) -> tuple[float, np.ndarray]:
    """`count` requests with `concurrency` in flight; throughput and latencies (ms)."""
    latencies = np.zeros(count)
    cursor = iter(range(count))
    limits = httpx.Limits(
        max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=2
    )
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        started = time.perf_counter()

        async def worker() -> None:
            for index in cursor:
                latencies[index] = await _timed(client, items[index % len(items)], time.perf_counter())

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.perf_counter() - started), latencies


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
        warm_up = asyncio.run(saturated(url, items, 200, 8))  # caches, connections
        results = {
            "warm-up": warm_up,
            "paced": asyncio.run(paced(url, items, args.requests, args.rate)),
            "saturated": asyncio.run(saturated(url, items, args.requests, args.concurrency)),
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
