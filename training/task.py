"""One training skeleton for every task: a `Task` says what is particular to it (its data,
vocabularies, model, datasets, export and card), `run_task` runs the steps every task shares:

1. start the run: strategy first (see strategy.py), run directory, seeds, precision policy;
2. data and vocabularies (`Task.prepare`): on the chief first, in the strategy's scope, so the other
   workers read what it wrote; then the run directory is checked against the run-defining flags;
3. anything to compute outside the scope (`Task.prepare_unreplicated`, e.g. frozen-backbone features);
4. the model, built and compiled in the strategy's scope (`compiled`: the one optimizer all use);
5. fit, resuming from the last backup, or load the weights of a finished run (or the best weights
   of one killed after fit ended, before they were saved as final);
6. export a float32 copy (the chief only), evaluate the export and write the model card.

The translate, sentiment and caption CLIs are `Task`s; a new command (back-translation, the lab's
sweeps) subclasses `Task` the same way.
"""

from __future__ import annotations

import abc
import argparse
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from seq2seq_app.core.fused_adam import FusedAdam
from training import keras_fixes
from training.averaging import average_if_better, epoch_weights_dir
from training.callbacks import best_weights_path, fit_callbacks, remove_backup
from training.cards import training_card
from training.export import export_with_card, float32_copy
from training.run_state import RunState, check_same_run
from training.strategy import Worker, configure_precision, make_strategy, shard_by_data

# Gradient-norm clipping for every recurrent model: exploding gradients are the RNN's failure mode.
CLIPNORM = 5.0
# Flags that fix which examples land in which split.
SPLIT_FLAGS = ("validation_fraction", "test_fraction", "seed")


@dataclass
class Run:
    """A run in progress: its flags, directory, precision, strategy, place in the cluster and state."""

    args: argparse.Namespace
    run_dir: Path
    policy: str
    strategy: tf.distribute.Strategy
    worker: Worker
    state: RunState | None = None


class Task(abc.ABC):
    """What one training command does that the others do not.

    Each flag name is declared once: `data_flags` and `architecture_flags` define the run (resuming
    with other values is refused), `architecture_flags`, `batch_flag`, dropout, learning rate and
    `extra_hyperparameters` go into the card's `hyperparameters`.

    Args:
        args: the parsed command line.

    Example:
        >>> class Echo(Task):
        ...     data_flags, architecture_flags, batch_flag = ("pairs",), ("units",), "batch_size"
        >>> Echo.run_defining_flags()
        ('pairs', 'units', 'validation_fraction', 'test_fraction', 'seed')
    """

    # The CLI's parser: a flag that a run directory's record lacks (added after that run) is
    # compared at its default, the value that run had in effect.
    parser: Callable[[], argparse.ArgumentParser] | None = None
    data_flags: tuple[str, ...] = ()
    architecture_flags: tuple[str, ...] = ()
    batch_flag: str = "batch_size"
    extra_hyperparameters: tuple[str, ...] = ()
    signatures: str = ""

    def __init__(self, args: argparse.Namespace):
        self.args = args

    @classmethod
    def run_defining_flags(cls) -> tuple[str, ...]:
        return cls.data_flags + cls.architecture_flags + SPLIT_FLAGS

    @classmethod
    def hyperparameter_flags(cls) -> tuple[str, ...]:
        return (
            cls.architecture_flags + ("dropout", cls.batch_flag, "learning_rate") + cls.extra_hyperparameters
        )

    @abc.abstractmethod
    def prepare(self, run: Run) -> None:
        """Reads and splits the data; builds (or, when resuming, reloads) the vocabularies."""

    def prepare_unreplicated(self, run: Run) -> None:
        """Work after `prepare`, still chief first, but outside the strategy's scope (none by default)."""
        return None

    @abc.abstractmethod
    def build_model(self) -> keras.Model:
        """The model, compiled with `compiled` (called in the strategy's scope)."""

    @abc.abstractmethod
    def example_inputs(self):
        """A batch of one, to build the model's variables before backups and weights load."""

    @abc.abstractmethod
    def datasets(self, replicas: int) -> tuple[tf.data.Dataset, tf.data.Dataset]:
        """Training and validation datasets of global batches for `replicas` replicas."""

    @abc.abstractmethod
    def exporter(self, model: keras.Model) -> Callable[[Path], None]:
        """Saves the float32 `model` as this task's SavedModel into a folder."""

    @abc.abstractmethod
    def describe(self, path: Path, run: Run) -> dict:
        """The model card up to its metrics (title, description, task, data, …, metrics),
        evaluating the export saved at `path`."""

    def parameter_counts(self, model: keras.Model) -> dict:
        return {"parameters": model.count_params()}

    def epoch_callbacks(self, model: keras.Model) -> list[keras.callbacks.Callback]:
        """Callbacks of this task run before the common ones (none by default)."""
        return []

    def training_record(self) -> dict:
        """What the card's `training` section adds for this task (nothing by default)."""
        return {}


def start_run(args: argparse.Namespace) -> Run:
    """Sets the strategy (first: see strategy.py), creates the run directory, seeds every generator
    and sets the precision policy."""
    strategy = make_strategy(args.strategy)
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(args.seed)
    return Run(args, run_dir, configure_precision(args.mixed_precision), strategy, Worker(strategy))


def compiled(model: keras.Model, learning_rate: float, loss, metrics: list, example_inputs) -> keras.Model:
    """`model` compiled with the optimizer every task uses (Adam with gradient clipping) and built
    on `example_inputs`, so backups and weights can load into it, with its optimizer's state.

    Outside a distribution strategy Keras creates the optimizer's state, and the variables of a
    metric given as a function, inside the first training step's trace, which makes TensorFlow
    trace that step twice (seconds, for a translator): both are created here instead.
    """
    metrics = [
        keras.metrics.MeanMetricWrapper(m, name=m.__name__)
        if callable(m) and hasattr(m, "__name__") and not isinstance(m, keras.metrics.Metric)
        else m
        for m in metrics
    ]
    model.compile(optimizer=FusedAdam(learning_rate, clipnorm=CLIPNORM), loss=loss, metrics=metrics)
    model(example_inputs)
    model.optimizer.build(model.trainable_variables)
    return model


def run_task(task: Task) -> dict:
    """Runs every step of a training command; returns the model card ({} on a non-chief worker)."""
    args = task.args
    run = start_run(args)
    with run.worker.chief_first():
        with run.strategy.scope():
            task.prepare(run)
        defining = task.run_defining_flags()
        defaults = {k: task.parser().get_default(k) for k in defining} if task.parser else {}
        check_same_run(run.run_dir, args, defining, record=run.worker.is_chief, defaults=defaults)
        task.prepare_unreplicated(run)
    run.state = RunState(run.run_dir, run.worker.write_dir(run.run_dir))
    with run.strategy.scope():
        model = task.build_model()
    fit_or_load(
        model,
        args,
        run.run_dir,
        run.state,
        lambda: task.datasets(run.strategy.num_replicas_in_sync),
        run.worker,
        lambda: task.epoch_callbacks(model),
    )
    if not run.worker.is_chief:
        run.worker.cleanup()
        return {}
    export_model = float32_copy(model, task.example_inputs())

    def card(path: Path) -> dict:
        return task.describe(path, run) | {
            "training": training_card(args, run.state, run.policy) | task.training_record(),
            "hyperparameters": {k: getattr(args, k) for k in task.hyperparameter_flags()}
            | task.parameter_counts(export_model),
        }

    return export_with_card(Path(args.export_dir), task.exporter(export_model), card, task.signatures)


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
    first_callbacks: Callable[[], Sequence[keras.callbacks.Callback]] = tuple,
) -> None:
    """Trains (resuming if interrupted) and leaves the best weights in `model`; a finished run
    just loads its final weights, so the same command re-evaluates and re-exports it.
    `first_callbacks()` makes the task's own callbacks, only when fit runs.

    A non-chief worker returns right after `fit`: the chief alone keeps the weights and exports.
    `fit` ending is recorded at once (`fit_ended`), so a run killed after early stopping or a
    `STOP` file, before its final weights were saved, does not train on past the stop."""
    final_weights = run_dir / "final.weights.h5"
    # Each worker reads the state file itself; `agree_any` puts them all on the same branch even if
    # one read a stale copy (a branch that fits on some workers only would hang the others).
    if worker.agree_any(bool(state["finished"]) and final_weights.exists()):
        if worker.is_chief:
            print(f"training already finished in {run_dir}; loading {final_weights}")
            model.load_weights(final_weights)
            remove_backup(run_dir)  # left by a kill between finishing and removing it
        return
    fitting = not worker.agree_any(bool(state["fit_ended"]))
    if fitting:
        train_ds, val_ds = (shard_by_data(d) for d in datasets())
        callbacks = fit_callbacks(args, run_dir, state, worker, first_callbacks())
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
        state.update(fit_ended=True)
    if not worker.is_chief:
        return
    if not fitting:
        # As for a finished run, flags such as --epochs no longer apply.
        print(f"training already ended in {run_dir}; saving its best weights as the final ones")
    if best_weights_path(run_dir).exists():  # the best epoch across all restarts
        model.load_weights(best_weights_path(run_dir))
    elif not fitting:  # the model holds its initial weights
        raise SystemExit(
            f"{run_dir} records that training ended but holds no best weights (no epoch had a finite "
            "validation loss); use a new --run-dir"
        )
    averaging = None
    if args.average_last > 1:
        if worker.multi_worker:  # evaluating on the chief alone would wait for the others forever
            print("--average-last is not applied in multi-worker runs; exporting the best epoch")
        else:
            validation = val_ds if fitting else datasets()[1]
            averaging = average_if_better(model, epoch_weights_dir(run_dir), args.average_last, validation)
            print(f"checkpoint averaging: {averaging}")
    state.update(averaging=averaging)
    model.save_weights(final_weights)
    state.update(finished=True)
    remove_backup(run_dir)  # only now: a kill before this point resumes from it
    shutil.rmtree(epoch_weights_dir(run_dir), ignore_errors=True)
