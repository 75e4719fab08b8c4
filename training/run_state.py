"""What a run directory remembers between invocations of the same command: the flags that define
the run (`args.json`) and its progress (`state.json`), so a killed run resumes and a finished one
is re-evaluated and re-exported instead of retrained."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path


class RunState:
    """A small JSON file in the run directory: accumulated training time, each epoch's logs,
    whether fit ended (`fit_ended`) and whether the final weights were saved (`finished`).

    Args:
        run_dir: the run directory it is read from.
        write_dir: where updates are written (default `run_dir`); a non-chief worker reads the
            chief's state but writes its own copy elsewhere.

    Example:
        >>> import tempfile
        >>> state = RunState(Path(tempfile.mkdtemp()))
        >>> state.update(epochs_done=2, history=[{"val_loss": 0.5}, {"val_loss": 0.4}])
        >>> state["epochs_done"], state.best_val_loss()
        (2, 0.4)
    """

    def __init__(self, run_dir: Path, write_dir: Path | None = None):
        read = Path(run_dir) / "state.json"
        self.path = Path(write_dir or run_dir) / "state.json"
        self.data = json.loads(read.read_text()) if read.exists() else {}

    def __getitem__(self, key):
        return self.data.get(key)

    def best_val_loss(self) -> float | None:
        losses = [h["val_loss"] for h in self.data.get("history", []) if "val_loss" in h]
        return min(losses) if losses else None

    def update(self, **values) -> None:
        self.data.update(values)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2))
        tmp.replace(self.path)


def check_same_run(
    run_dir: Path,
    args: argparse.Namespace,
    defining: Sequence[str],
    record: bool = True,
    defaults: dict | None = None,
) -> None:
    """Refuses to resume a run directory with different data or architecture flags; records them
    unless `record` is false (a non-chief worker only checks). A flag the record lacks was added
    after that run and is compared at its value in `defaults` (left unchecked if not there)."""
    path = Path(run_dir) / "args.json"
    if path.exists():
        previous = json.loads(path.read_text(encoding="utf-8"))
        defaults = defaults or {}
        changed = [
            k
            for k in defining
            if (k in previous or k in defaults)
            and not _same_flag(previous.get(k, defaults.get(k)), getattr(args, k))
        ]
        if changed:
            raise SystemExit(
                f"{run_dir} holds a run made with different "
                f"{', '.join('--' + k.replace('_', '-') for k in changed)}; "
                "use the same flags to resume it, or a new --run-dir"
            )
    if record:
        path.write_text(json.dumps(vars(args), indent=2), encoding="utf-8")


def _same_flag(recorded, value) -> bool:
    # A flag that became repeatable (translate's --pairs) is a list where older runs recorded its one
    # value, or None when it was not given.
    return recorded == value or (
        isinstance(value, list) and value == ([] if recorded is None else [recorded])
    )
