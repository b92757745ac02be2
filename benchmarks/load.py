"""Load test of ``luabridge serve``: two nodes on loopback, one simulator, one Redis, a steady request rate.

    python -m benchmarks.load --seconds 60 --rate 40

Starts a redis-server (when one is installed), the Freshchat simulator in this process and two serve
nodes, then sends ``--rate`` runs a second (each one integration call), spread over the nodes, for
``--seconds``. Reports throughput, p50/p99 latency, errors (zero expected) and each node's memory (the
resident size of the node and its workers) as JSON on standard output. Loopback only; bounded in time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from luabridge._demo import start_simulator
from luabridge._discovery import discover_integrations

KEY = "load-test-key"
SCRIPT = "return #app.integrations.freshchat.list_agents({}).agents"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` and its children (the node's workers and fork server), in KiB."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(child) for child in children.read_text().split()]
    for each in pids:
        try:
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def _start_node(config: Path, redis_url: str | None, state: str) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "LUABRIDGE_API_KEY": KEY, "LUABRIDGE_STATE": state}
    command = [sys.executable, "-m", "luabridge._cli", "serve", "--port", "0", "--config", str(config),
               "--workers", "4", "--queue", "64"]
    if redis_url:
        command += ["--redis", redis_url]
    node = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    url = node.stdout.readline().split()[-1]
    for _ in range(400):
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=5):
                break
        except OSError:
            time.sleep(0.05)
    return node, url


def _one_run(url: str) -> tuple[float, bool]:
    request = urllib.request.Request(url + "/v1/runs", data=json.dumps({"code": SCRIPT}).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            ok = json.loads(response.read())["ok"] is True
    except OSError:
        ok = False
    return time.perf_counter() - started, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=40.0, help="runs a second, over both nodes")
    args = parser.parse_args(argv)
    freshchat = next(item for item in discover_integrations() if item.name == "freshchat")
    with tempfile.TemporaryDirectory() as folder:
        redis, redis_url = None, None
        if shutil.which("redis-server"):
            port = _free_port()
            redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                      "--dir", folder], stdout=subprocess.DEVNULL)
            redis_url = f"redis://127.0.0.1:{port}/0"
            time.sleep(0.3)
        simulator = start_simulator(freshchat).start()
        config = Path(folder) / "accounts.toml"
        config.write_text(f'[freshchat.default]\nurl = "{simulator.url}"\ntoken = "{simulator.token}"\n')
        nodes = [_start_node(config, redis_url, folder) for _ in range(2)]
        latencies: list[float] = []
        errors = 0
        lock = threading.Lock()

        def send(url: str) -> None:
            nonlocal errors
            seconds, ok = _one_run(url)
            with lock:
                latencies.append(seconds)
                errors += not ok

        try:
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=64) as pool:
                sent = 0
                while (now := time.perf_counter() - started) < args.seconds:
                    due = int(now * args.rate) + 1
                    while sent < due:
                        pool.submit(send, nodes[sent % 2][1])
                        sent += 1
                    time.sleep(min(0.005, 1 / args.rate))
            elapsed = time.perf_counter() - started
            memory = {f"node_{index + 1}_rss_mib": round(_rss_kib(node.pid) / 1024, 1)
                      for index, (node, _) in enumerate(nodes)}
        finally:
            for node, _ in nodes:
                node.terminate()
                node.wait(30)
            simulator.stop()
            if redis is not None:
                redis.terminate()
                redis.wait(5)
    ordered = sorted(latencies)
    report = {
        "seconds": round(elapsed, 2), "runs": len(ordered), "throughput_per_s": round(len(ordered) / elapsed, 1),
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 2) if ordered else None,
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2) if ordered else None,
        "errors": errors, "redis": redis_url is not None, **memory,
    }
    print(json.dumps(report))
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
