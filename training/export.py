"""Writing an export safely: a float32 copy of the trained model, saved beside the previous export
and swapped in only when complete, with its model card.

The SavedModel itself is each task's export class (seq2seq_app/*/..._export.py); this module only
owns what is the same for all three.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from training.cards import write_model_card


def float32_copy(model: keras.Model, example_inputs) -> keras.Model:
    """A float32 twin of a trained (possibly mixed-precision) model: exports run in float32
    whatever the training policy, for portable, exact inference."""
    keras.mixed_precision.set_global_policy("float32")
    twin = type(model).from_config({k: v for k, v in model.get_config().items() if k != "dtype"})
    twin(example_inputs)
    twin.set_weights(model.get_weights())
    return twin


def safe_export(export_dir: Path, write: Callable[[Path], None]) -> None:
    """Writes a new export beside the old one and swaps it in only when complete.

    A crash or a bad input mid-export never leaves the user without their previous model.
    """
    export_dir = Path(export_dir)
    tmp = export_dir.with_name(export_dir.name + ".partial")
    old = export_dir.with_name(export_dir.name + ".previous")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        write(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # a failed export leaves no half-written folder
        raise
    if export_dir.exists():
        shutil.rmtree(old, ignore_errors=True)
        export_dir.rename(old)
    try:
        tmp.rename(export_dir)
    except BaseException:
        if old.exists():  # the previous export goes back where it was
            old.rename(export_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


def export_with_card(
    export_dir: Path, save: Callable[[Path], None], card: Callable[[Path], dict], signatures: str
) -> dict:
    """Saves a SavedModel with `save`, describes it with `card` (which may evaluate the saved
    model) and writes the model card next to it, all inside `safe_export`; returns the card."""
    export_dir = Path(export_dir)

    def write(path: Path) -> None:
        save(path)
        described = card(path)
        described["export"] = {
            "size_mb": round(directory_megabytes(path), 1),
            "signatures": signatures,
            "weights": stored_weights(path),
        }
        write_model_card(path, described)

    safe_export(export_dir, write)
    written = json.loads((export_dir / "model_card.json").read_text(encoding="utf-8"))
    print(f"exported to {export_dir} ({written['export']['size_mb']} MB)")
    return written


def directory_megabytes(path: Path) -> float:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 1e6


def stored_weights(path: Path) -> dict[str, int]:
    """How many weights the SavedModel at `path` stores in each float type, e.g.
    {"float16": 8_400_000, "float32": 9_000}: float16 halves the size (see `ExportBase`)."""
    reader = tf.train.load_checkpoint(str(Path(path) / "variables" / "variables"))
    dtypes = reader.get_variable_to_dtype_map()
    counts: dict[str, int] = {}
    for name, shape in reader.get_variable_to_shape_map().items():
        dtype = dtypes[name]
        if name.startswith("model_variables/") and dtype.is_floating:
            counts[dtype.name] = counts.get(dtype.name, 0) + int(np.prod(shape))
    return dict(sorted(counts.items()))
