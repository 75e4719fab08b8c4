"""Weights of a SavedModel copied into a rebuilt Keras model, checked pair by pair, and the card's
`export` section a re-export writes."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from training.cards import command_line
from training.export import directory_megabytes, stored_weights
from training.hardware import cpu_description, cpu_summary

_VALUE = "/.ATTRIBUTES/VARIABLE_VALUE"


def copy_variables(source: Sequence, target: Sequence) -> None:
    """Assigns `source[i]` (a loaded SavedModel's variables, or arrays from `read_export`) to
    `target[i]` (Keras variables), after checking that both lists have the same length and every
    pair the same shape and, for variables, the same name."""
    if len(source) != len(target):
        raise ValueError(f"the SavedModel has {len(source)} variables, the rebuilt model {len(target)}")
    for i, (old, new) in enumerate(zip(source, target)):
        name = getattr(old, "name", None)
        if (name is not None and name != new.value.name) or tuple(old.shape) != tuple(new.shape):
            raise ValueError(
                f"variable {i}: the SavedModel has {name or 'an array'} {list(old.shape)}, "
                f"the rebuilt model {new.value.name} {list(new.shape)}"
            )
    for old, new in zip(source, target):
        new.assign(np.asarray(old).astype(new.dtype))


def read_export(export_dir: str | Path) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    """(an export's own top-level variables by name, its `model_variables` in order), read from
    its checkpoint: nothing is loaded, so no variable is created, whatever distribution strategy
    is in scope (a multi-worker strategy would try to share each one across the workers)."""
    reader = tf.train.load_checkpoint(str(Path(export_dir) / "variables" / "variables"))
    keys = reader.get_variable_to_shape_map()
    named = {
        key[: -len(_VALUE)]: reader.get_tensor(key)
        for key in keys
        if key.endswith(_VALUE) and "/" not in key[: -len(_VALUE)]
    }
    weights = []
    while (key := f"model_variables/{len(weights)}{_VALUE}") in keys:
        weights.append(reader.get_tensor(key))
    return named, weights


def reexport_section(path: Path, card: dict, checked: dict, **more) -> dict:
    """The card's `export` section for the re-export written to `path`: its size, signatures and
    weight storage, `more` (e.g. the decoding), and how it was made and `checked` against the old
    export, with the machine its metrics' seconds were measured on."""
    made = {
        "command": command_line(),
        "date": datetime.date.today().isoformat(),
        "machine": cpu_summary(cpu_description()),
    }
    return {
        "size_mb": round(directory_megabytes(path), 1),
        "signatures": card.get("export", {}).get("signatures", ""),
        "weights": stored_weights(path),
        **more,
        "reexported": {**made, **checked},
    }
