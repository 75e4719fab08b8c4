"""Load test (a benchmark, not a test): concurrent users on each endpoint of the app.

    python -m ui.load --start                     # starts `python -m ui` on a free port, then loads it
    python -m ui.load --url http://127.0.0.1:7860 # loads an app that is already running
    python -m ui.load --start --minutes 10        # soak: mixed traffic, the server's memory sampled

For each endpoint in turn, `--clients` threads (each its own `gradio_client.Client`, then each
its own plain-HTTP client) send `--requests` requests each, all starting together; reports
p50/p95/max latency, throughput, errors, and the load generator's CPU time per request. With
`--start` it also reports how long the app took to answer its first page and the server's CPU
time per request.

With `--minutes N` it runs a soak instead: `--clients` plain-HTTP users send mixed traffic to every
endpoint for N minutes, one request in ten a bad input the app must refuse, while the server's
resident memory (RSS) is sampled; it reports errors and the RSS growth after the first minute
(the warm-up).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ui.demo_inputs import REVIEW_EXAMPLES, TRANSLATE_EXAMPLES, example_images

# No telemetry threads from each of the many clients (the CPU they use would count as load).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

ENDPOINTS = ("translate", "classify", "caption")


def _arguments(endpoint: str, i: int) -> tuple:
    """The arguments of request number i to an endpoint, cycling through the shipped examples
    (an image as its file path)."""
    if endpoint == "translate":
        return TRANSLATE_EXAMPLES[i % len(TRANSLATE_EXAMPLES)], "greedy", 4, 0.6, 0.7
    if endpoint == "classify":
        return REVIEW_EXAMPLES[i % len(REVIEW_EXAMPLES)], "auto"
    images = example_images()
    return images[i % len(images)], "greedy", 3


def bad_arguments(endpoint: str, i: int, not_an_image: str) -> tuple:
    """A request the app must refuse with a message: empty text, an unknown mode, a file that is not
    an image (`not_an_image`, a path)."""
    if endpoint == "translate":
        return ("", "greedy", 4, 0.6, 0.7) if i % 2 else ("Hola.", "nonsense", 4, 0.6, 0.7)
    if endpoint == "classify":
        return ("   ", "auto") if i % 2 else ("Bien.", "bert")
    return not_an_image, "greedy", 3


def gradio_client_user(url: str, stack: contextlib.ExitStack) -> Callable[[str, tuple], object]:
    """One `gradio_client.Client`, as a Python API user calls the app (closed with `stack`)."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    stack.callback(client.close)

    def call(endpoint: str, args: tuple) -> object:
        if endpoint == "caption":
            args = (handle_file(args[0]), *args[1:])
        return client.predict(*args, api_name=f"/{endpoint}")

    return call


def http_user(url: str, stack: contextlib.ExitStack) -> Callable[[str, tuple], object]:
    """Gradio's plain HTTP API (upload, then POST /gradio_api/call/<name> and read its event stream),
    as curl users call it: a lighter client, so more of the machine is left to the server."""
    import httpx

    base = url.rstrip("/") + "/gradio_api"
    client = stack.enter_context(httpx.Client(timeout=120))

    def call(endpoint: str, args: tuple) -> object:
        args = list(args)
        if endpoint == "caption":
            with open(args[0], "rb") as f:
                uploaded = client.post(f"{base}/upload", files={"files": (Path(args[0]).name, f)})
            uploaded.raise_for_status()
            args[0] = {"path": uploaded.json()[0], "meta": {"_type": "gradio.FileData"}}
        started = client.post(f"{base}/call/{endpoint}", json={"data": args})
        started.raise_for_status()
        event = None
        with client.stream("GET", f"{base}/call/{endpoint}/{started.json()['event_id']}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event in ("complete", "error"):
                    data = json.loads(line[6:])
                    if event == "error":  # Gradio sends {"error": message, ...}, or null
                        message = data.get("error") if isinstance(data, dict) else None
                        raise RuntimeError(f"the app answered with an error: {message or 'no message'}")
                    return data
        raise RuntimeError("the event stream ended without a result")

    return call


USERS = {"gradio_client": gradio_client_user, "http": http_user}


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux /proc), or None where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_endpoint(
    url: str,
    endpoint: str,
    clients: int,
    requests: int,
    server_pid: int | None = None,
    user_kind: str = "gradio_client",
) -> dict:
    """Fires `clients` concurrent users at one endpoint; returns latency percentiles and errors.

    With the server's pid, also its CPU time per request: on a shared machine the load generator
    competes with the server for cores, and this separates the two.
    """
    stack = contextlib.ExitStack()
    users = [USERS[user_kind](url, stack) for _ in range(clients)]
    start = threading.Barrier(clients)
    latencies: list[float] = []
    errors: list[str] = []

    def user(k: int) -> None:
        start.wait()
        for r in range(requests):
            t = time.perf_counter()
            try:
                users[k](endpoint, _arguments(endpoint, k * requests + r))
                latencies.append(time.perf_counter() - t)
            except Exception as e:  # counted and reported: the point of a load test
                errors.append(f"{type(e).__name__}: {e}"[:200])

    cpu_before = cpu_seconds(server_pid) if server_pid else None
    client_cpu = time.process_time()
    began = time.perf_counter()
    with stack, ThreadPoolExecutor(clients) as pool:
        list(pool.map(user, range(clients)))
    wall = time.perf_counter() - began
    client_cpu = time.process_time() - client_cpu
    cpu_after = cpu_seconds(server_pid) if server_pid else None
    ms = np.array(latencies) * 1000 if latencies else np.zeros(1)
    server = (
        {}
        if cpu_before is None or cpu_after is None
        else {
            "server_cpu_ms_per_request": round(
                1000 * (cpu_after - cpu_before) / max(clients * requests, 1), 1
            )
        }
    )
    return {
        "endpoint": f"/{endpoint}",
        "client": user_kind,
        "clients": clients,
        "requests": clients * requests,
        "ok": len(latencies),
        "errors": len(errors),
        "first_errors": sorted(set(errors))[:3],
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "max_ms": round(float(ms.max()), 1),
        "requests_per_s": round(len(latencies) / wall, 1),
        "client_cpu_ms_per_request": round(1000 * client_cpu / max(clients * requests, 1), 1),
        **server,
    }


def rss_mb(pid: int) -> float | None:
    """A process's resident memory in MB (Linux /proc), or None where unavailable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def soak(
    url: str,
    minutes: float,
    clients: int,
    server_pid: int | None = None,
    warm_up_minutes: float = 1.0,
    sample_seconds: float = 5.0,
    report: Callable[[dict], None] = print,
) -> dict:
    """Mixed traffic on every endpoint for `minutes` (request i goes to endpoint i mod 3; every tenth
    is a bad input); returns counts, errors and the server's RSS after warm-up and at the end.

    An error is a good request that failed or a bad one that was not refused.
    """
    not_an_image = Path(tempfile.gettempdir()) / "seq2seq_app_soak_not_an_image.png"
    not_an_image.write_text("notes, not a picture")
    stack = contextlib.ExitStack()
    users = [http_user(url, stack) for _ in range(clients)]
    counts = {"requests": 0, "ok": 0, "refused_as_expected": 0}
    errors: list[str] = []
    lock = threading.Lock()
    began = time.perf_counter()
    deadline = began + 60 * minutes
    samples: list[tuple[float, float]] = []

    def user(k: int) -> None:
        i = k
        while time.perf_counter() < deadline:
            endpoint, bad = ENDPOINTS[i % len(ENDPOINTS)], i % 10 == 9
            args = bad_arguments(endpoint, i // 10, str(not_an_image)) if bad else _arguments(endpoint, i)
            try:
                users[k](endpoint, args)
                outcome = "ok" if not bad else f"/{endpoint}: a bad input was not refused"
            except Exception as e:
                outcome = "refused_as_expected" if bad else f"/{endpoint}: {type(e).__name__}: {e}"[:200]
            with lock:
                counts["requests"] += 1
                if outcome in counts:
                    counts[outcome] += 1
                else:
                    errors.append(outcome)
            i += clients

    def sample() -> None:
        while time.perf_counter() < deadline:
            rss = rss_mb(server_pid) if server_pid else None
            if rss is not None:
                samples.append((time.perf_counter() - began, rss))
                if len(samples) % max(int(60 / sample_seconds), 1) == 0:
                    report({"minute": round(samples[-1][0] / 60, 1), "rss_mb": round(rss, 1), **counts})
            time.sleep(sample_seconds)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with stack, ThreadPoolExecutor(clients) as pool:
        list(pool.map(user, range(clients)))
    sampler.join()
    after_warm_up = next((rss for t, rss in samples if t >= 60 * warm_up_minutes), None)
    final = samples[-1][1] if samples else None
    memory = (
        {}
        if after_warm_up is None or final is None
        else {
            "rss_mb_after_warm_up": round(after_warm_up, 1),
            "rss_mb_final": round(final, 1),
            "rss_mb_max": round(max(rss for _, rss in samples), 1),
            "rss_growth_after_warm_up_percent": round(100 * (final - after_warm_up) / after_warm_up, 1),
        }
    )
    return {
        "minutes": minutes,
        "clients": clients,
        **counts,
        "errors": len(errors),
        "first_errors": sorted(set(errors))[:3],
        "requests_per_s": round(counts["requests"] / (time.perf_counter() - began), 1),
        **memory,
    }


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(
    models_dir: str | None, log: Path, timeout: float = 180.0
) -> tuple[subprocess.Popen, str, float]:
    """Starts `python -m ui` on a free port, its output in `log`; `models_dir` None lets it choose.

    Returns (process, url, seconds until the first page answered).
    """
    port = free_port()
    began = time.perf_counter()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ui", "--port", str(port)]
            + (["--models-dir", models_dir] if models_dir else []),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parent.parent,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        while time.perf_counter() - began < timeout:
            if process.poll() is not None:
                raise RuntimeError(
                    f"python -m ui exited with code {process.returncode}; its output is in {log}"
                )
            try:
                with urllib.request.urlopen(url, timeout=1):
                    return process, url, time.perf_counter() - began
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"the app did not answer within {timeout:.0f} s; its output is in {log}")
    except BaseException:  # including Ctrl-C: never leave the server behind
        stop_app(process)
        raise


def stop_app(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run(
    url: str,
    endpoints: Sequence[str],
    clients: int,
    requests: int,
    report: Callable[[dict], None] = print,
    server_pid: int | None = None,
    user_kinds: Sequence[str] = ("gradio_client",),
) -> list[dict]:
    results = []
    for user_kind in user_kinds:
        for endpoint in endpoints:
            results.append(load_endpoint(url, endpoint, clients, requests, server_pid, user_kind))
            report(results[-1])
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ui.load", description=__doc__.split("\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--url", default="http://127.0.0.1:7860/", help="a running app")
    where.add_argument("--start", action="store_true", help="start `python -m ui` on a free port first")
    parser.add_argument("--models-dir", default=None, help="with --start (default: as python -m ui)")
    parser.add_argument("--endpoints", nargs="+", choices=ENDPOINTS, default=list(ENDPOINTS))
    parser.add_argument("--clients", type=int, default=None, help="concurrent users (default 32; soak 4)")
    parser.add_argument("--requests", type=int, default=4, help="requests per client (not with --minutes)")
    parser.add_argument(
        "--client",
        nargs="+",
        choices=list(USERS),
        default=list(USERS),
        help="gradio_client users, plain-HTTP users, or each in turn",
    )
    parser.add_argument("--minutes", type=float, default=None, help="soak for this long instead")
    parser.add_argument("--server-pid", type=int, default=None, help="with --url: the app's pid, for RSS")
    args = parser.parse_args(argv)
    args.clients = args.clients or (4 if args.minutes else 32)
    if args.clients < 1 or args.requests < 1 or (args.minutes is not None and args.minutes <= 0):
        parser.error("--clients and --requests must be at least 1")
    url, process = args.url, None
    if args.start:
        log = Path(tempfile.gettempdir()) / "seq2seq_app_load_server.log"
        process, url, ready = start_app(args.models_dir and os.path.abspath(args.models_dir), log)
        print(json.dumps({"ready_seconds": round(ready, 1), "server_log": str(log)}))
    pid = process.pid if process else args.server_pid
    if args.minutes:
        try:
            result = soak(url, args.minutes, args.clients, pid, report=lambda r: print(json.dumps(r)))
        finally:
            if process is not None:
                stop_app(process)
        print(json.dumps(result))
        sys.exit(1 if result["errors"] else 0)
    try:
        results = run(
            url,
            args.endpoints,
            args.clients,
            args.requests,
            lambda r: print(json.dumps(r)),
            pid,
            args.client,
        )
    finally:
        if process is not None:
            stop_app(process)
    if any(r["errors"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
