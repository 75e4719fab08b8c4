"""Run a training command as N local workers of one `MultiWorkerMirroredStrategy` cluster.

    python -m training.cluster --workers 2 -- python -m training.translate --pairs toy.txt \\
        --strategy multi_worker --run-dir runs/toy --export-dir saved_models/toy

Each worker gets a free localhost port and its own `TF_CONFIG` (worker 0 is the chief), its output
is streamed with a `[worker i]` prefix, and when one worker fails the others are stopped and the
launcher exits with the failing worker's code. It is the one-machine rehearsal of a real cluster,
where each host sets its own `TF_CONFIG` (docs/distributed.md).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from training.flags import positive_int


def free_ports(count: int) -> list[int]:
    """`count` distinct localhost ports that were free a moment ago (all held open until all are
    chosen, so none is handed out twice)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("localhost", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(ports: Sequence[int], index: int) -> str:
    """The `TF_CONFIG` of worker `index` in a cluster of local workers on `ports`.

    >>> json.loads(tf_config([5000, 5001], 1))["task"]
    {'type': 'worker', 'index': 1}
    """
    return json.dumps(
        {
            "cluster": {"worker": [f"localhost:{p}" for p in ports]},
            "task": {"type": "worker", "index": index},
        }
    )


def _stream(index: int, process: subprocess.Popen) -> None:
    for line in process.stdout:
        sys.stdout.write(f"[worker {index}] {line}")
        sys.stdout.flush()


def _stop(processes: Sequence[subprocess.Popen], grace: float = 10.0) -> None:
    """SIGTERM to every worker still running, SIGKILL to those still running after `grace` s."""
    for p in processes:
        if p.poll() is None:
            p.terminate()
    deadline = time.time() + grace
    for p in processes:
        try:
            p.wait(max(0.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run_cluster(command: Sequence[str], workers: int, ports: Sequence[int] | None = None) -> int:
    """Starts `workers` copies of `command` as one cluster; returns 0 when all succeed, else the
    exit code of the first worker that failed (after stopping the rest)."""
    ports = list(ports) if ports else free_ports(workers)
    if len(ports) != workers:
        raise ValueError(f"{workers} workers need {workers} ports, got {len(ports)}")
    processes = []
    for i in range(workers):
        # Quiet unless asked otherwise: N workers' TensorFlow start-up chatter buries the training logs.
        env = {
            "TF_CPP_MIN_LOG_LEVEL": "2",
            **os.environ,
            "TF_CONFIG": tf_config(ports, i),
            "PYTHONUNBUFFERED": "1",
        }
        processes.append(
            subprocess.Popen(
                list(command), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        )
    threads = [threading.Thread(target=_stream, args=(i, p), daemon=True) for i, p in enumerate(processes)]
    for t in threads:
        t.start()

    def forward(signum, frame):
        _stop(processes)
        raise SystemExit(128 + signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            codes = [p.poll() for p in processes]
            failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                index, code = failed[0]
                print(f"[cluster] worker {index} exited with {code}; stopping the others", flush=True)
                _stop(processes)
                return code if code > 0 else 128 - code  # a signal -N is reported as 128+N, like a shell
            if all(c == 0 for c in codes):
                return 0
            time.sleep(0.2)
    finally:
        for t in threads:
            t.join(timeout=5)
        for s, handler in previous.items():
            signal.signal(s, handler)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.cluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--workers", type=positive_int, default=2, help="local workers to start")
    parser.add_argument(
        "--ports", type=int, nargs="+", help="one localhost port per worker (default: free ones)"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the training command")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the training command after --")
    if args.ports and len(args.ports) != args.workers:
        parser.error(f"--ports needs {args.workers} ports, got {len(args.ports)}")
    sys.exit(run_cluster(command, args.workers, args.ports))


if __name__ == "__main__":
    main()
