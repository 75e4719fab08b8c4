"""What every training CLI shares: config files, devices and strategies, callbacks, run state,
safe export and model cards."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from seq2seq_app.core.layers.rnn import CELLS  # noqa: E402


def parse_with_config(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parses flags, taking defaults from `--config FILE` (JSON) when given; flags win.

    The config's keys are flag names with underscores (`{"units": 320, "cell": "gru"}`).
    Unknown keys are an error, so a typo cannot silently fall back to a default.
    """
    parser.add_argument("--config", help="JSON file of flag values (flags given on the command line win)")
    first, _ = parser.parse_known_args(argv)
    if first.config:
        try:
            config = json.loads(Path(first.config).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            parser.error(f"cannot read --config {first.config}: {e}")
        known = {a.dest for a in parser._actions}
        unknown = sorted(set(config) - known)
        if unknown:
            parser.error(f"unknown keys in {first.config}: {', '.join(unknown)}")
        for action in parser._actions:
            if action.dest in config and action.choices and config[action.dest] not in action.choices:
                parser.error(
                    f"{first.config}: {action.dest} must be one of {list(action.choices)}, "
                    f"not {config[action.dest]!r}"
                )
        parser.set_defaults(**config)
    return parser.parse_args(argv)


def add_common_flags(parser: argparse.ArgumentParser, run_dir: str, export_dir: str) -> None:
    """Flags every training CLI has, with the same names and meanings."""
    g = parser.add_argument_group("training")
    g.add_argument("--run-dir", default=run_dir, help="checkpoints, logs and vocabularies (resume from here)")
    g.add_argument("--export-dir", default=export_dir, help="where the SavedModel and model card go")
    g.add_argument("--epochs", type=positive_int, default=30)
    g.add_argument("--learning-rate", type=float, default=1e-3)
    g.add_argument("--patience", type=int, default=3, help="early-stopping patience in epochs")
    g.add_argument(
        "--checkpoint-every",
        type=int,
        default=500,
        help="steps between resumable backups (a killed run loses at most this many)",
    )
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--validation-fraction", type=float, default=0.03)
    g.add_argument("--test-fraction", type=float, default=0.03)
    g.add_argument(
        "--strategy",
        choices=["default", "mirrored", "multi_worker"],
        default="default",
        help="tf.distribute strategy; multi_worker reads the cluster from TF_CONFIG",
    )
    g.add_argument(
        "--mixed-precision",
        choices=["auto", "on", "off"],
        default="auto",
        help="on: float16 on GPU, bfloat16 on CPU; auto: on where the hardware has fast "
        "low-precision matmuls (GPU, or a CPU with AVX512-BF16/AMX)",
    )
    g.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2], help="Keras progress bar mode")


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_recurrent_flags(group, cell: str, embedding_dim: int, units: int, dropout: float) -> None:
    """The recurrent-model flags every CLI shares (each task with its own defaults)."""
    cells = [cell] + [c for c in CELLS if c != cell]
    group.add_argument("--cell", choices=cells, default=cell)
    group.add_argument("--embedding-dim", type=positive_int, default=embedding_dim)
    group.add_argument("--units", type=positive_int, default=units)
    group.add_argument("--dropout", type=float, default=dropout)


def add_decoder_flags(group) -> None:
    """Flags of the attention decoder (translation and captioning)."""
    group.add_argument("--decoder-layers", type=positive_int, default=1)
    group.add_argument("--attention", choices=["additive", "multiplicative"], default="additive")


def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def configure_precision(mode: str) -> str:
    """Sets Keras's global dtype policy and returns its name."""
    gpus = tf.config.list_physical_devices("GPU")
    if mode == "off" or (mode == "auto" and not gpus and not _cpu_has_bf16()):
        policy = "float32"
    else:
        policy = "mixed_float16" if gpus else "mixed_bfloat16"
    keras.mixed_precision.set_global_policy(policy)
    return policy


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The tf.distribute strategy for `--strategy`; Keras's `fit` uses whichever is in scope."""
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise SystemExit("--strategy multi_worker needs the cluster described in TF_CONFIG")
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def machine_description() -> str:
    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    cpu = platform.processor() or platform.machine()
    return (
        f"{os.cpu_count()} CPU cores ({cpu}), GPUs: {gpus or 'none'}, "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}"
    )


class RunState:
    """A small JSON file in the run directory: accumulated training time and whether fit finished.

    It is what lets the same command, run again, resume a killed run or skip straight to
    evaluation and export of a finished one.
    """

    def __init__(self, run_dir: Path):
        self.path = run_dir / "state.json"
        self.data = json.loads(self.path.read_text()) if self.path.exists() else {}

    def __getitem__(self, key):
        return self.data.get(key)

    def best_val_loss(self) -> float | None:
        losses = [h["val_loss"] for h in self.data.get("history", []) if "val_loss" in h]
        return min(losses) if losses else None

    def update(self, **values) -> None:
        self.data.update(values)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2))
        tmp.replace(self.path)


class TrainingClock(keras.callbacks.Callback):
    """Records training time and each epoch's logs in the run state, so resumed runs report
    their total time and whole history.

    Time is saved every `every` batches as well as at epoch ends, so a killed run loses at most
    that many batches of it.
    """

    def __init__(self, state: RunState, every: int):
        super().__init__()
        self.state = state
        self.every = max(1, every)

    def on_train_begin(self, logs=None):
        self._last = time.time()

    def _elapsed(self) -> float:
        """Total training seconds, counting the time since the last save."""
        now = time.time()
        total = (self.state["train_seconds"] or 0.0) + now - self._last
        self._last = now
        return total

    def on_train_batch_end(self, batch, logs=None):
        if (batch + 1) % self.every == 0:
            self.state.update(train_seconds=self._elapsed())

    def on_epoch_end(self, epoch, logs=None):
        self.state.update(
            train_seconds=self._elapsed(),
            epochs_done=epoch + 1,
            # Indexed by epoch: an epoch redone after a restart replaces its earlier record.
            history=(self.state["history"] or [])[:epoch] + [{k: float(v) for k, v in (logs or {}).items()}],
        )


class StopFile(keras.callbacks.Callback):
    """Ends training gracefully at the end of the epoch in which `path` appears.

    `touch RUN_DIR/STOP` finishes a long run early with its best weights, evaluated and
    exported, without changing the command that produced it.
    """

    def __init__(self, path: Path):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        if self.path.exists():
            print(f"\n{self.path} found: stopping after epoch {epoch + 1}")
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        self.path.unlink(missing_ok=True)


def fit_callbacks(args: argparse.Namespace, run_dir: Path, state: RunState) -> list[keras.callbacks.Callback]:
    """Resumable backups, best-model checkpoint, early stopping, LR schedule and TensorBoard."""
    return [
        keras.callbacks.BackupAndRestore(
            str(run_dir / "backup"), save_freq=args.checkpoint_every, double_checkpoint=True
        ),
        # The threshold carries the best validation loss across restarts, so a resumed run never
        # overwrites a better checkpoint with a worse one.
        keras.callbacks.ModelCheckpoint(
            str(best_weights_path(run_dir)),
            monitor="val_loss",
            save_best_only=True,
            save_weights_only=True,
            initial_value_threshold=state.best_val_loss(),
        ),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=args.patience),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1, min_lr=1e-5),
        keras.callbacks.TensorBoard(str(run_dir / "logs")),
        TrainingClock(state, args.checkpoint_every),
        StopFile(run_dir / "STOP"),
    ]


def check_same_run(run_dir: Path, args: argparse.Namespace, defining: Sequence[str]) -> None:
    """Refuses to resume a run directory with different data or architecture flags; records them."""
    path = run_dir / "args.json"
    if path.exists():
        previous = json.loads(path.read_text(encoding="utf-8"))
        changed = [k for k in defining if k in previous and previous[k] != getattr(args, k)]
        if changed:
            raise SystemExit(
                f"{run_dir} holds a run made with different "
                f"{', '.join('--' + k.replace('_', '-') for k in changed)}; "
                "use the same flags to resume it, or a new --run-dir"
            )
    path.write_text(json.dumps(vars(args), indent=2), encoding="utf-8")


def best_weights_path(run_dir: Path) -> Path:
    return run_dir / "best.weights.h5"


def safe_export(export_dir: Path, write: Callable[[Path], None]) -> None:
    """Writes a new export beside the old one and swaps it in only when complete.

    A crash or a bad input mid-export never leaves the user without their previous model.
    """
    export_dir = Path(export_dir)
    tmp = export_dir.with_name(export_dir.name + ".partial")
    old = export_dir.with_name(export_dir.name + ".previous")
    shutil.rmtree(tmp, ignore_errors=True)
    write(tmp)
    if export_dir.exists():
        shutil.rmtree(old, ignore_errors=True)
        export_dir.rename(old)
    tmp.rename(export_dir)
    shutil.rmtree(old, ignore_errors=True)


def command_line() -> str:
    return shlex.join(["python", "-m", _module_name(), *sys.argv[1:]])


def _module_name() -> str:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return spec.name if spec and spec.name else Path(sys.argv[0]).stem


def write_model_card(export_dir: Path, card: dict) -> None:
    """Writes `model_card.json` (for programs and the UI) and `README.md` (for people)."""
    (export_dir / "model_card.json").write_text(
        json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    lines = [f"# {card['title']}", "", card.get("description", ""), ""]
    for section in ("data", "backbone", "metrics", "training", "hyperparameters", "export"):
        if section not in card:
            continue
        lines += [f"## {section.capitalize()}", ""]
        value = card[section]
        if isinstance(value, dict):
            lines += [f"- **{k}**: {v}" for k, v in value.items()]
        else:
            lines.append(str(value))
        lines.append("")
    (export_dir / "README.md").write_text("\n".join(lines), encoding="utf-8")


def start_run(args: argparse.Namespace) -> tuple[Path, str, tf.distribute.Strategy]:
    """Creates the run directory, seeds every generator and sets precision and strategy."""
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(args.seed)
    return run_dir, configure_precision(args.mixed_precision), make_strategy(args.strategy)


def carve_splits(items, split_fn: Callable, args: argparse.Namespace, noun: str) -> tuple:
    """Training, validation and test splits by the common fraction flags, or a clear exit."""
    if len(items) < 10:
        raise SystemExit(f"only {len(items)} usable {noun}: too few to train on")
    try:
        parts = split_fn(items, args.validation_fraction, args.test_fraction, args.seed)
    except ValueError as e:
        raise SystemExit(str(e)) from e
    require_nonempty(parts, "adjust --validation-fraction/--test-fraction or add data")
    return parts


def require_nonempty(parts: Sequence, hint: str) -> None:
    for name, part in zip(("training", "validation", "test"), parts):
        if len(part) == 0:
            raise SystemExit(f"the {name} split is empty: {hint}")


def fit_or_load(
    model: keras.Model,
    args: argparse.Namespace,
    run_dir: Path,
    state: RunState,
    datasets: Callable[[], tuple[tf.data.Dataset, tf.data.Dataset]],
) -> None:
    """Trains (resuming if interrupted) and leaves the best weights in `model`; a finished run
    just loads its final weights, so the same command re-evaluates and re-exports it."""
    final_weights = run_dir / "final.weights.h5"
    if state["finished"] and final_weights.exists():
        print(f"training already finished in {run_dir}; loading {final_weights}")
        model.load_weights(final_weights)
        return
    train_ds, val_ds = datasets()
    model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=args.epochs,
        verbose=args.verbose,
        shuffle=False,
        callbacks=fit_callbacks(args, run_dir, state),
    )
    if best_weights_path(run_dir).exists():  # the best epoch across all restarts
        model.load_weights(best_weights_path(run_dir))
    model.save_weights(final_weights)
    state.update(finished=True)


def float32_copy(model: keras.Model, example_inputs) -> keras.Model:
    """A float32 twin of a trained (possibly mixed-precision) model: exports run in float32
    whatever the training policy, for portable, exact inference."""
    keras.mixed_precision.set_global_policy("float32")
    twin = type(model).from_config({k: v for k, v in model.get_config().items() if k != "dtype"})
    twin(example_inputs)
    twin.set_weights(model.get_weights())
    return twin


def training_card(args: argparse.Namespace, state: RunState, policy: str) -> dict:
    """The model card's `training` section: how to reproduce the run and what it cost."""
    return {
        "command": command_line(),
        "train_seconds": round(state["train_seconds"] or 0.0),
        "epochs": state["epochs_done"],
        "precision_policy": policy,
        "strategy": args.strategy,
        "machine": machine_description(),
        "final_val_loss": (state["history"] or [{}])[-1].get("val_loss"),
    }


def export_with_card(
    export_dir: Path, save: Callable[[Path], None], card: Callable[[Path], dict], signatures: str
) -> dict:
    """Saves a SavedModel with `save`, describes it with `card` (which may evaluate the saved
    model) and writes the model card next to it, all inside `safe_export`; returns the card."""
    export_dir = Path(export_dir)

    def write(path: Path) -> None:
        save(path)
        described = card(path)
        described["export"] = {"size_mb": round(directory_megabytes(path), 1), "signatures": signatures}
        write_model_card(path, described)

    safe_export(export_dir, write)
    written = json.loads((export_dir / "model_card.json").read_text(encoding="utf-8"))
    print(f"exported to {export_dir} ({written['export']['size_mb']} MB)")
    return written


def directory_megabytes(path: Path) -> float:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 1e6
