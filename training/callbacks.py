"""The Keras callbacks of every training run: resumable backups, best-weights checkpoint, early
stopping, learning-rate schedule, TensorBoard, training clock and stop file.

Every worker of a cluster runs all of them (saving weights reads the replicated variables on each),
but only the chief's land in the run directory: the others write to their `Worker.write_dir`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import keras

from seq2seq_app.core import metrics
from training.averaging import KeepEpochWeights, epoch_weights_dir
from training.run_state import RunState
from training.strategy import Worker


class TrainingClock(keras.callbacks.Callback):
    """Records training time and each epoch's logs in the run state, so resumed runs report
    their total time and whole history.

    Time is saved every `every` batches as well as at epoch ends, so a killed run loses at most
    that many batches of it.

    Args:
        state: the run state to update.
        every: batches between saves of the elapsed time.
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
    exported, without changing the command that produced it. In a cluster the workers agree,
    so all stop after the same epoch even if only some see the file in time.

    Args:
        path: the file to watch for.
        worker: this process's place in the cluster (default: a single process).
    """

    def __init__(self, path: Path, worker: Worker | None = None):
        super().__init__()
        self.path = path
        self.worker = worker

    def on_epoch_end(self, epoch, logs=None):
        seen = self.path.exists()
        if self.worker is not None:
            seen = self.worker.agree_any(seen)
        if seen:
            print(f"\n{self.path} found: stopping after epoch {epoch + 1}")
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.worker is None or self.worker.is_chief:
            self.path.unlink(missing_ok=True)


def best_so_far(history: list[dict], min_delta: float = 0.0) -> tuple[float | None, int]:
    """The best validation loss of a run's recorded epochs and the epochs since it, as Keras's
    patience callbacks count them: an epoch is an improvement only when it beats the best so far
    by more than `min_delta`.

    Example:
    >>> best_so_far([{"val_loss": 0.9}, {"val_loss": 0.7}, {"val_loss": 0.8}])
    (0.7, 1)
    """
    best, since = None, 0
    for loss in (h["val_loss"] for h in history if "val_loss" in h):
        if best is None or loss < best - min_delta:
            best, since = loss, 0
        else:
            since += 1
    return best, since


class _ResumedPatience:
    """Keras's patience callbacks start counting afresh in every process: a resumed run took its
    first epoch for an improvement and waited `patience` epochs more, so a run resumed every few
    epochs never stopped and its learning rate was lowered late. These carry on from the epochs the
    run recorded before the one it resumes at (a recorded epoch may be redone after a kill)."""

    def __init__(self, history: list[dict], **kwargs):
        super().__init__(**kwargs)
        self.history = history

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._resumed = False

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        if not self._resumed:  # the first epoch is known only now, once the backup has restored it
            self._resumed = True
            self.best, since = best_so_far(self.history[:epoch], self.min_delta)
            self.wait = self.resumed_wait(since)

    def resumed_wait(self, since: int) -> int:
        return since


class EarlyStopping(_ResumedPatience, keras.callbacks.EarlyStopping):
    """Keras's early stopping on the validation loss, counting on from a resumed run's history.

    Args:
        history: the run's recorded epoch logs (`RunState["history"]`).
        patience: epochs without improvement before training stops.
    """

    def __init__(self, history: list[dict], patience: int):
        super().__init__(history, monitor="val_loss", patience=patience)


class ReduceLROnPlateau(_ResumedPatience, keras.callbacks.ReduceLROnPlateau):
    """Keras's learning-rate halving on validation-loss plateaus (after `patience` epochs without
    improvement, down to 1e-5), counting on from a resumed run's history. The rate itself is an
    optimizer variable, restored with the backup.

    Args:
        history: the run's recorded epoch logs (`RunState["history"]`).
        patience: epochs without improvement before the rate is halved.
    """

    def __init__(self, history: list[dict], patience: int = 1):
        super().__init__(history, monitor="val_loss", factor=0.5, patience=patience, min_lr=1e-5)

    def resumed_wait(self, since: int) -> int:
        return since % self.patience  # each halving starts the count again (no cooldown)


class ValidationBleu(keras.callbacks.Callback):
    """Corpus BLEU and chrF of `translate(sources)` against `references` after every epoch, added
    to the epoch's logs as `val_bleu` and `val_chrf` (so the run's history, TensorBoard and the
    progress line show them next to the validation loss).

    The loss says how likely the references are; BLEU and chrF say how good the model's own greedy
    output is, as the export decodes it, which is what a long run is for.

    Args:
        translate: maps a list of source sentences to a list of outputs, with the current weights.
        sources: validation source sentences.
        references: their references.
    """

    def __init__(
        self, translate: Callable[[list[str]], list[str]], sources: list[str], references: list[str]
    ):
        super().__init__()
        self.translate, self.sources, self.references = translate, sources, references

    def on_epoch_end(self, epoch, logs=None):
        scores = metrics.corpus_scores(self.translate(self.sources), [self.references])
        if logs is not None:
            logs.update(val_bleu=scores["bleu"], val_chrf=scores["chrf"])


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras's resumable backup, written at the end of every epoch too, and with the right epoch.

    With an integer `save_freq` Keras backs up only every N batches, and on restore it keeps only
    the epoch number, restarting that epoch from its first batch. A run stopped after an epoch's
    validation but before the next N batches would redo the whole epoch; the epoch-end backup
    makes a finished epoch stay finished.

    Keras also counts the epoch it writes into a backup from 0 in every process, so a resumed
    run's mid-epoch backups claimed epoch 0 and a second resume started over; the count is set
    from the epoch being trained. And Keras falls back to the previous backup only when the
    weights are unreadable, not when a kill mid-write left the metadata so. The repairs use the
    Keras class's private members (checked against Keras 3.15); tests/test_training_cli.py pins
    what they do.

    The run deletes its backup itself once its final weights are saved (`delete_checkpoint` is
    off): Keras would delete it at the end of `fit`, and a kill before the final save would then
    start the run over.
    """

    def on_train_begin(self, logs=None):
        try:
            super().on_train_begin(logs)
        except ValueError:
            # Keras rewrites its metadata with a plain open("w").
            if not os.path.exists(self._prev_training_metadata_path):
                raise
            shutil.copy(self._prev_weights_path, self._weights_path)
            shutil.copy(self._prev_training_metadata_path, self._training_metadata_path)
            self._load_model()

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        self._current_epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.save_freq != "epoch":
            # Keras has no public "back up now"; its own epoch-mode path calls this method.
            self._save_model()
            self._batches_seen_since_last_saving = 0


def best_weights_path(run_dir: Path) -> Path:
    return Path(run_dir) / "best.weights.h5"


def backup_path(run_dir: Path) -> Path:
    return Path(run_dir) / "backup"


def remove_backup(run_dir: Path) -> None:
    """Deletes the chief's backup once the run is finished (the others' goes with their scratch)."""
    shutil.rmtree(backup_path(run_dir), ignore_errors=True)


def backup_and_restore(run_dir: Path, worker: Worker, every: int) -> BackupAndRestore:
    """The resumable backup, in RUN_DIR/backup on the chief.

    The other workers restore from a copy of the chief's backup and write theirs to scratch
    space, so every worker of a restarted cluster resumes from the same step.
    """
    backup = backup_path(run_dir)
    mine = worker.write_dir(backup)
    if mine != backup:
        shutil.rmtree(mine, ignore_errors=True)
        if backup.exists():
            shutil.copytree(backup, mine)
    return BackupAndRestore(str(mine), save_freq=every, double_checkpoint=True, delete_checkpoint=False)


def fit_callbacks(
    args: argparse.Namespace,
    run_dir: Path,
    state: RunState,
    worker: Worker,
    first: Sequence[keras.callbacks.Callback] = (),
) -> list[keras.callbacks.Callback]:
    """`first` (a task's own, e.g. `ValidationBleu`: before the others, so the logs they record
    hold what it adds), best-model checkpoint, early stopping, LR schedule, TensorBoard, clock,
    stop file and, last, the resumable backup."""
    history = state["history"] or []
    return [
        *first,
        # The threshold carries the best validation loss across restarts, so a resumed run never
        # overwrites a better checkpoint with a worse one.
        keras.callbacks.ModelCheckpoint(
            str(worker.write_dir(best_weights_path(run_dir))),
            monitor="val_loss",
            save_best_only=True,
            save_weights_only=True,
            initial_value_threshold=state.best_val_loss(),
        ),
        EarlyStopping(history, args.patience),
        ReduceLROnPlateau(history),
        keras.callbacks.TensorBoard(str(worker.write_dir(Path(run_dir) / "logs"))),
        TrainingClock(state, args.checkpoint_every),
        StopFile(Path(run_dir) / "STOP", worker),
        *(
            [KeepEpochWeights(worker.write_dir(epoch_weights_dir(run_dir)), args.average_last)]
            if args.average_last > 1 and not worker.multi_worker  # see task.fit_or_load
            else []
        ),
        # Last, so an epoch-end backup is written only after the clock has recorded the epoch: a
        # run killed in between redoes the epoch rather than resuming with a gap in its history.
        backup_and_restore(run_dir, worker, args.checkpoint_every),
    ]
