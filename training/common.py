"""What every training CLI shares: config files, devices and strategies, callbacks, run state,
safe export and model cards."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from training import keras_fixes  # noqa: E402
from training.callbacks import StopFile, best_weights_path, fit_callbacks  # noqa: E402, F401
from training.flags import (  # noqa: E402, F401  (re-exported for the CLIs)
    add_common_flags,
    add_decoder_flags,
    add_recurrent_flags,
    parse_with_config,
    positive_int,
)
from training.run_state import RunState, check_same_run  # noqa: E402, F401
from training.strategy import (  # noqa: E402, F401
    Worker,
    configure_precision,
    machine_description,
    make_strategy,
    shard_by_data,
)


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


def start_run(args: argparse.Namespace) -> tuple[Path, str, tf.distribute.Strategy, Worker]:
    """Sets the strategy (first: see strategy.py), creates the run directory, seeds every generator
    and sets the precision policy."""
    strategy = make_strategy(args.strategy)
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(args.seed)
    return run_dir, configure_precision(args.mixed_precision), strategy, Worker(strategy)


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
    worker: Worker,
) -> None:
    """Trains (resuming if interrupted) and leaves the best weights in `model`; a finished run
    just loads its final weights, so the same command re-evaluates and re-exports it.

    A non-chief worker returns right after `fit`: the chief alone keeps the weights and exports."""
    final_weights = run_dir / "final.weights.h5"
    if state["finished"] and final_weights.exists():
        if worker.is_chief:
            print(f"training already finished in {run_dir}; loading {final_weights}")
            model.load_weights(final_weights)
        return
    train_ds, val_ds = (shard_by_data(d) for d in datasets())
    callbacks = fit_callbacks(args, run_dir, state, worker)
    worker.barrier()  # every worker has copied the chief's backup before the chief writes a new one
    with keras_fixes.multi_worker_fit(model):
        model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=args.epochs,
            verbose=args.verbose,
            shuffle=False,
            callbacks=callbacks,
        )
    if not worker.is_chief:
        return
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
