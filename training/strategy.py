"""Hardware and distribution: the tf.distribute strategy, the precision policy, and this process's
place in a cluster (`Worker`).

Kept in one module because they are decided together, once, at the start of a run, and in this
order: a `MultiWorkerMirroredStrategy` must be created before anything else initialises
TensorFlow's runtime, or its collective ops cannot reach the other workers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import keras
import tensorflow as tf

from training.hardware import cpu_description, cpu_summary

STRATEGIES = ("default", "mirrored", "multi_worker")


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The tf.distribute strategy for `--strategy`; Keras's `fit` uses the one the model was built in.

    `mirrored` replicates over every local GPU, or over every local (logical) CPU device when there
    is no GPU; `multi_worker` reads the cluster and this worker's place in it from `TF_CONFIG`.
    """
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise SystemExit(
                "--strategy multi_worker needs the cluster described in TF_CONFIG "
                "(python -m training.cluster sets it for local workers; see docs/distributed.md)"
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name != "default":
        raise ValueError(f"unknown strategy {name!r}; choose one of {STRATEGIES}")
    return tf.distribute.get_strategy()


def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def configure_precision(mode: str) -> str:
    """Sets Keras's global dtype policy for `--mixed-precision` and returns its name."""
    gpus = tf.config.list_physical_devices("GPU")
    if mode == "off" or (mode == "auto" and not gpus and not _cpu_has_bf16()):
        policy = "float32"
    else:
        policy = "mixed_float16" if gpus else "mixed_bfloat16"
    keras.mixed_precision.set_global_policy(policy)
    return policy


def machine_description() -> str:
    """The CPU with the features that set its speed, the GPUs and the library versions: what a
    card's or a benchmark's timings were measured on."""
    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    return (
        f"{cpu_summary(cpu_description())}, GPUs: {gpus or 'none'}, "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}"
    )


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Tells tf.distribute to split each (global) batch between the workers.

    Every CLI builds its datasets from Python lists in memory, so there are no files to hand out
    (the FILE policy would fail over to DATA with a warning). DATA also keeps the workers in step:
    each runs the same seeded pipeline and takes its share of every batch, so all see the same
    number of steps even though length-bucketed batches vary in size.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


@dataclass
class Worker:
    """This process's place in the run: the chief writes the run directory and the export; the
    other workers of a multi-worker cluster write their copies of the same files (which Keras's
    callbacks produce on every worker) to a temporary folder, as TensorFlow's multi-worker guide does.

    Args:
        strategy: the run's strategy; anything but a multi-worker one makes this process the chief.

    Example:
        >>> worker = Worker(tf.distribute.get_strategy())
        >>> worker.is_chief, worker.write_dir(Path("runs/x")) == Path("runs/x")
        (True, True)
    """

    strategy: tf.distribute.Strategy
    _scratch: Path | None = field(default=None, init=False, repr=False)

    @property
    def multi_worker(self) -> bool:
        return isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy)

    @property
    def is_chief(self) -> bool:
        if not self.multi_worker:
            return True
        resolver = self.strategy.cluster_resolver
        if resolver.task_type == "chief":
            return True
        has_chief = "chief" in resolver.cluster_spec().as_dict()
        return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief

    @property
    def name(self) -> str:
        if not self.multi_worker:
            return "chief"
        return f"{self.strategy.cluster_resolver.task_type}{self.strategy.cluster_resolver.task_id}"

    def write_dir(self, path: Path) -> Path:
        """Where this worker writes what belongs in `path`: `path` itself on the chief, a folder of
        its own scratch space on the others (removed by `cleanup`)."""
        if self.is_chief:
            return Path(path)
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix=f"seq2seq_{self.name}_"))
        return self._scratch / Path(path).name

    def cleanup(self) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    @contextlib.contextmanager
    def chief_first(self) -> Iterator[None]:
        """Runs the block on the chief, then on the other workers: they find what the chief wrote
        (vocabularies, feature caches) and read it instead of racing it to the same files."""
        if not self.is_chief:
            self.barrier()
        yield
        if self.is_chief:
            self.barrier()

    def barrier(self) -> None:
        """Returns once every worker has called it (a one-number all-reduce)."""
        self.agree_any(False)

    def agree_any(self, flag: bool) -> bool:
        """True on every worker when `flag` is true on any, so that all take the same branch."""
        if not self.multi_worker:
            return flag
        ones = self.strategy.run(lambda: tf.constant(1.0 if flag else 0.0))
        return bool(self.strategy.reduce(tf.distribute.ReduceOp.SUM, ones, axis=None) > 0)
