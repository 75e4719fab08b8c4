"""What the benchmarks print about the machine: the CPU, its vector features and its measured peak.

Absolute speeds differ about 3x between the CPUs this project runs on (AVX-512 with bf16 against
AVX2 only), so every benchmark figure goes out next to the CPU it was measured on and next to the
machine's own fp32 matmul peak, measured in the same run.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

# cpuinfo flag → the name the benchmarks print.
FEATURES = {
    "avx2": "AVX2",
    "fma": "FMA",
    "avx512f": "AVX-512",
    "avx512_bf16": "AVX-512 bf16",
    "amx_tile": "AMX",
    "amx_bf16": "AMX bf16",
}


def cpu_description(cpuinfo: str | None = None) -> dict:
    """{"model", "cores", "features": {name: bool}} of this machine's CPU.

    Args:
        cpuinfo: the text of `/proc/cpuinfo` (read when None; empty where there is none).

    Example:
    >>> cpu = cpu_description("model name : Toy CPU\\nflags : fpu avx2 fma\\n")
    >>> cpu["model"], cpu["features"]["AVX2"], cpu["features"]["AVX-512"]
    ('Toy CPU', True, False)
    """
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    return {
        "model": fields.get("model name") or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "features": {name: flag in flags for flag, name in FEATURES.items()},
    }


def cpu_summary(cpu: dict) -> str:
    """One line, e.g. "AMD EPYC 7B13, 2 cores, AVX2 FMA, no AVX-512 bf16 AMX"."""
    have = [name for name, present in cpu["features"].items() if present]
    lacks = [name for name, present in cpu["features"].items() if not present]
    return f"{cpu['model']}, {cpu['cores']} cores, {' '.join(have) or 'no vector features listed'}" + (
        f", no {' / '.join(lacks)}" if lacks else ""
    )


def matmul_peak_gflops(size: int = 2048, repeats: int = 5, dtype: str = "float32") -> float:
    """The best GFLOP/s of `size` x `size` matmuls in `dtype` on all cores, TensorFlow's own kernel.

    The best of `repeats` timed products (after one warm-up) is the machine's practical peak:
    what a model's large matmuls could reach at most.
    """
    import tensorflow as tf

    a = tf.cast(tf.random.stateless_normal([size, size], seed=[1, 2]), dtype)
    b = tf.cast(tf.random.stateless_normal([size, size], seed=[3, 4]), dtype)
    product = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)))
    product(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        product(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return round(2 * size**3 / best / 1e9, 1)
