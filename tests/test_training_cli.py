import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests import fast_tf
from tests.toy_data import (
    TINY_FLAGS,
    backed_up_epoch,
    first_epoch_trained,
    toy_pairs,
    wait_for_a_backed_up_epoch,
    write_pair_file,
)
from training import translate
from training.callbacks import BackupAndRestore, StopFile, TrainingClock
from training.export import safe_export
from training.flags import parse_with_config
from training.run_state import RunState

REPO = Path(__file__).resolve().parents[1]


def test_failed_export_keeps_the_previous_model(tmp_path):
    export_dir = tmp_path / "model"
    export_dir.mkdir()
    (export_dir / "saved_model.pb").write_text("old")

    def broken(path):
        path.mkdir()
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        safe_export(export_dir, broken)
    assert (export_dir / "saved_model.pb").read_text() == "old"
    assert not export_dir.with_name("model.partial").exists()


def test_a_failed_swap_puts_the_previous_model_back(tmp_path, monkeypatch):
    export_dir = tmp_path / "model"
    export_dir.mkdir()
    (export_dir / "saved_model.pb").write_text("old")
    rename = Path.rename

    def failing_rename(self, target):
        if self.name == "model.partial":
            raise OSError("device busy")
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", failing_rename)
    with pytest.raises(OSError, match="device busy"):
        safe_export(export_dir, lambda path: (path.mkdir(), (path / "saved_model.pb").write_text("new")))
    assert (export_dir / "saved_model.pb").read_text() == "old"
    assert not export_dir.with_name("model.previous").exists()


def test_config_file_sets_flags_and_rejects_typos(tmp_path, capsys):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps({"units": 12, "cell": "lstm"}))
    bad.write_text(json.dumps({"unitz": 12}))
    args = parse_with_config(translate.build_parser(), ["--config", str(good), "--cell", "gru"])
    assert args.units == 12 and args.cell == "gru"  # the command line wins over the file
    with pytest.raises(SystemExit):
        parse_with_config(translate.build_parser(), ["--config", str(bad)])
    assert "unitz" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--pairs", "/nonexistent/pairs.txt"], "cannot read"),
        ([], "choose the training data"),
        (["--source-file", "x"], "go together"),
    ],
)
def test_bad_data_arguments_are_clear_errors(flags, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as error:
        translate.main([*flags, "--run-dir", str(tmp_path / "r"), "--export-dir", str(tmp_path / "e")])
    assert message in str(error.value)


def test_a_file_without_usable_pairs_is_a_clear_error(tmp_path):
    path = tmp_path / "junk.txt"
    path.write_bytes(b"no tabs\n\xff\xfe\tbad bytes\n\t\n")
    with pytest.raises(SystemExit, match="too few"):
        translate.main(
            ["--pairs", str(path), "--run-dir", str(tmp_path / "r"), "--export-dir", str(tmp_path / "e")]
        )


def test_line_aligned_files_of_different_lengths_are_rejected(tmp_path):
    (tmp_path / "a.de").write_text("eins\nzwei\n")
    (tmp_path / "a.en").write_text("one\n")
    with pytest.raises(SystemExit, match="same number of lines"):
        translate.main(
            [
                "--source-file",
                str(tmp_path / "a.de"),
                "--target-file",
                str(tmp_path / "a.en"),
                "--run-dir",
                str(tmp_path / "r"),
                "--export-dir",
                str(tmp_path / "e"),
            ]
        )


def test_sigkilled_run_resumes_from_its_last_backup(tmp_path):
    corpus = write_pair_file(tmp_path / "toy.txt", toy_pairs(400, seed=3))
    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        *fast_tf.command("training.translate"),
        "--pairs",
        str(corpus),
        "--run-dir",
        str(run_dir),
        "--export-dir",
        str(tmp_path / "export"),
        *TINY_FLAGS,
    ]
    command[command.index("--epochs") + 1] = "4"
    command[command.index("--checkpoint-every") + 1] = "2"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_a_backed_up_epoch(run_dir, [process], timeout=240)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    backed_up = backed_up_epoch(run_dir)  # read after the kill: another epoch may have ended
    assert 1 <= backed_up < 4
    command[command.index("--verbose") + 1] = "2"  # prints "Epoch k/4" as each epoch begins
    out = subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True, text=True, timeout=600)
    # Resumed, not restarted: training goes on with the first epoch the backup had not finished.
    assert first_epoch_trained(out.stdout) == backed_up + 1
    state = json.loads((run_dir / "state.json").read_text())
    assert state["finished"] and state["fit_ended"]
    assert state["epochs_done"] == 4 and len(state["history"]) == 4
    assert (tmp_path / "export" / "saved_model.pb").exists()
    assert not (run_dir / "backup").exists()  # removed once the final weights were saved


def test_the_backup_is_the_last_callback_so_it_saves_after_the_clock(tmp_path):
    import argparse

    import tensorflow as tf

    from training.callbacks import fit_callbacks
    from training.strategy import Worker

    args = argparse.Namespace(checkpoint_every=5, patience=2, average_last=0)
    callbacks = fit_callbacks(args, tmp_path, RunState(tmp_path), Worker(tf.distribute.get_strategy()))
    assert isinstance(callbacks[-1], BackupAndRestore)
    assert any(isinstance(c, TrainingClock) for c in callbacks[:-1])


def test_stop_file_ends_training_after_the_current_epoch(tmp_path):
    import keras
    import numpy as np

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    stop = tmp_path / "STOP"
    stop.touch()
    history = model.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=5, verbose=0, callbacks=[StopFile(stop)])
    assert len(history.history["loss"]) == 1
    assert not stop.exists()


def test_a_run_killed_after_fit_ended_saves_its_best_weights_without_training_on(tmp_path):
    import argparse

    import keras
    import numpy as np
    import tensorflow as tf

    from training.callbacks import best_weights_path
    from training.strategy import Worker
    from training.task import fit_or_load

    def model() -> keras.Model:
        m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        m.compile(optimizer="sgd", loss="mse")
        return m

    best = model()
    best.save_weights(best_weights_path(tmp_path))
    RunState(tmp_path).update(epochs_done=2, fit_ended=True)  # early stopping ended fit; then a kill

    def no_data():
        raise AssertionError("a run whose fit ended must not train again")

    resumed, worker = model(), Worker(tf.distribute.get_strategy())
    fit_or_load(
        resumed, argparse.Namespace(epochs=10, average_last=0), tmp_path, RunState(tmp_path), no_data, worker
    )
    for mine, theirs in zip(resumed.get_weights(), best.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    assert RunState(tmp_path)["finished"] and (tmp_path / "final.weights.h5").exists()
    best_weights_path(tmp_path).unlink()
    (tmp_path / "final.weights.h5").unlink()
    RunState(tmp_path).update(finished=False)
    with pytest.raises(SystemExit, match="holds no best weights"):
        fit_or_load(
            model(),
            argparse.Namespace(epochs=10, average_last=0),
            tmp_path,
            RunState(tmp_path),
            no_data,
            worker,
        )


def test_resuming_with_different_architecture_is_refused(trained_export, toy_corpus, tmp_path):
    # A copy: should the refusal ever break, the shared run must not be retrained in place.
    shutil.copytree(trained_export[0].parent / "run", tmp_path / "run")
    flags = [*TINY_FLAGS]
    flags[flags.index("--units") + 1] = "48"
    with pytest.raises(SystemExit, match="--units"):
        translate.main(
            [
                "--pairs",
                str(toy_corpus),
                "--run-dir",
                str(tmp_path / "run"),
                "--export-dir",
                str(tmp_path / "other"),
                *flags,
            ]
        )


def test_config_values_outside_choices_are_rejected(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"strategy": "mirorred"}))
    with pytest.raises(SystemExit):
        parse_with_config(translate.build_parser(), ["--config", str(bad)])
    assert "mirorred" in capsys.readouterr().err


@pytest.mark.parametrize("fractions", [["--validation-fraction", "-0.1"], ["--test-fraction", "0.99"]])
def test_bad_split_fractions_are_clear_errors(fractions, toy_corpus, tmp_path):
    with pytest.raises(SystemExit, match="fraction"):
        translate.main(
            [
                "--pairs",
                str(toy_corpus),
                "--run-dir",
                str(tmp_path / "r"),
                "--export-dir",
                str(tmp_path / "e"),
                *fractions,
            ]
        )


def test_resumed_patience_counts_on_from_the_recorded_epochs():
    import keras
    import numpy as np

    from training.callbacks import EarlyStopping, ReduceLROnPlateau

    def fit(callback, initial_epoch: int, epochs: int = 10) -> tuple[int, float]:
        # Zero inputs and targets and no bias: the validation loss is 0 every epoch.
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, use_bias=False)])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        data = np.zeros((4, 2)), np.zeros((4, 1))
        history = model.fit(
            *data,
            validation_data=data,
            epochs=epochs,
            initial_epoch=initial_epoch,
            verbose=0,
            callbacks=[callback],
        )
        return len(history.history["loss"]), float(model.optimizer.learning_rate)

    # Four epochs done, the best (-0.1, below any loss to come) two epochs ago; a fifth was
    # recorded but not backed up, so it is redone and must not count.
    recorded = [{"val_loss": v} for v in (0.5, -0.1, 0.2, 0.3, -0.2)]
    assert fit(EarlyStopping(recorded, patience=3), 4)[0] == 1  # waited 2, now 3
    assert fit(EarlyStopping([], patience=3), 0)[0] == 4  # a fresh run
    assert fit(ReduceLROnPlateau(recorded), 4, epochs=5)[1] == pytest.approx(0.05)  # no improvement
    assert fit(ReduceLROnPlateau([]), 0, epochs=1)[1] == pytest.approx(0.1)


def test_the_run_callbacks_count_on_from_the_run_state(tmp_path):
    import argparse

    import tensorflow as tf

    from training.callbacks import EarlyStopping, ReduceLROnPlateau, fit_callbacks
    from training.strategy import Worker

    state = RunState(tmp_path)
    state.update(history=[{"val_loss": 0.4}, {"val_loss": 0.3}, {"val_loss": 0.35}])
    args = argparse.Namespace(checkpoint_every=5, patience=2, average_last=0)
    callbacks = fit_callbacks(args, tmp_path, state, Worker(tf.distribute.get_strategy()))
    for kind in (EarlyStopping, ReduceLROnPlateau):
        (callback,) = [c for c in callbacks if isinstance(c, kind)]
        callback.on_train_begin()
        callback.on_epoch_begin(3)
        assert callback.best == 0.3


def test_validation_bleu_is_in_the_epoch_logs_the_clock_records(tmp_path):
    import keras
    import numpy as np

    from training.callbacks import ValidationBleu

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    references = ["the cat eats bread .", "Tom sees the dog ."]
    outputs = iter([references, ["the cat .", "nothing at all"]])  # perfect, then poor
    sources = ["el gato come pan .", "Tom ve el perro ."]
    bleu = ValidationBleu(lambda batch: next(outputs), sources, references)
    state = RunState(tmp_path)
    data = np.zeros((4, 2)), np.zeros((4, 1))
    model.fit(*data, validation_data=data, epochs=2, verbose=0, callbacks=[bleu, TrainingClock(state, 10)])
    history = json.loads((tmp_path / "state.json").read_text())["history"]
    assert history[0]["val_bleu"] == 100.0 and history[0]["val_chrf"] == 100.0
    assert 0 <= history[1]["val_bleu"] < 50 and history[1]["val_chrf"] < 100


def test_a_translation_run_logs_validation_bleu_from_its_current_weights(trained_export, tmp_path):
    import argparse
    import types

    import numpy as np

    from seq2seq_app import LoadedTranslator

    run_dir = trained_export[0].parent / "run"
    history = json.loads((run_dir / "state.json").read_text())["history"]
    assert len(history) == 3 and all(0 <= h["val_bleu"] <= 100 and 0 <= h["val_chrf"] <= 100 for h in history)
    # The epoch-end translations are the export's own, with the weights the model has at the time.
    shutil.copytree(run_dir, tmp_path / "run")
    task = translate.TranslateTask(argparse.Namespace(**json.loads((run_dir / "args.json").read_text())))
    task.prepare(types.SimpleNamespace(run_dir=tmp_path / "run"))
    model = task.build_model()
    greedy = task.greedy_now(model)
    sources = task.val.sources[:20]
    model.load_weights(run_dir / "final.weights.h5")
    trained = greedy(sources)
    assert trained == LoadedTranslator(trained_export[0]).translate(sources)
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    assert greedy(sources) != trained


def test_training_clock_saves_time_between_epochs(tmp_path):
    import keras
    import numpy as np

    state = RunState(tmp_path)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    clock = TrainingClock(state, every=2)
    model.fit(np.zeros((8, 2)), np.zeros((8, 1)), batch_size=2, epochs=2, verbose=0, callbacks=[clock])
    saved = json.loads((tmp_path / "state.json").read_text())
    assert saved["epochs_done"] == 2 and len(saved["history"]) == 2
    assert saved["train_seconds"] > 0


def test_backups_name_the_right_epoch_and_come_at_every_epoch_end_so_resumes_skip_finished_epochs(tmp_path):
    import keras
    import numpy as np

    metadata = tmp_path / "backup" / "training_metadata.json"
    seen = []

    class Watch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if metadata.exists():
                seen.append(json.loads(metadata.read_text())["epoch"])

    def fit(epochs: int, save_freq: int) -> int:
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        backup = BackupAndRestore(
            str(tmp_path / "backup"), save_freq=save_freq, delete_checkpoint=False, double_checkpoint=True
        )
        data = np.ones((8, 2)), np.ones((8, 1))
        history = model.fit(*data, batch_size=2, epochs=epochs, verbose=0, callbacks=[backup, Watch()])
        return len(history.history.get("loss", []))

    # save_freq above the 4 batches of an epoch: only the epoch-end backup can fire.
    assert fit(2, save_freq=100) == 2
    assert json.loads(metadata.read_text())["epoch"] == 2
    # A resumed run's mid-epoch backups name the epoch it is in, not 0.
    seen.clear()
    assert fit(3, save_freq=1) == 1
    assert seen == [2, 2, 2, 2] and json.loads(metadata.read_text())["epoch"] == 3
    assert fit(3, save_freq=1) == 0
    metadata.write_text("")  # a kill while the metadata was being rewritten
    # Resumed from the previous backup (the last batch of epoch 3, so it names epoch 2), not refused.
    assert fit(4, save_freq=100) == 2


def test_mixed_subword_run_trains_on_pieces_lists_its_sources_and_exports_words(subword_export):
    from seq2seq_app import LoadedTranslator
    from seq2seq_app.core.subword_vocabulary import SubwordVocabulary
    from seq2seq_app.translation.data_source import BACK_TRANSLATION_TAG

    export_dir, card = subword_export
    assert card["data"]["text_unit"] == "subword" and card["hyperparameters"]["text_unit"] == "subword"
    rows = card["data"]["sources"]
    assert [(r["pairs"], r["weight"], r["synthetic"]) for r in rows] == [
        (600, 1.0, False),
        (60, 2.0, False),
        (80, 0.5, True),
    ]
    assert rows[2]["validation_pairs"] == rows[2]["test_pairs"] == 0 and rows[1]["test_pairs"] > 0
    by_source = card["metrics"]["test_by_source"]
    assert [(s["source"], s["pairs"]) for s in by_source] == [
        (r["source"], r["test_pairs"]) for r in rows[:2]
    ]
    assert all({"bleu", "chrf", "loop_rate"} <= set(s["greedy"]) for s in by_source)
    pieces = SubwordVocabulary.load(export_dir.parent / "run" / "source_vocab.txt")
    assert len(pieces) == card["data"]["source_vocab"] and "##" in "".join(pieces.tokens)
    assert BACK_TRANSLATION_TAG in pieces.tokens
    assert "subword" in card["description"]
    out = LoadedTranslator(export_dir).run(["El gato come pan .", "Tom ve 45 perros 😀", ""])
    assert out["attention"].shape[1:] == (out["target_tokens"].shape[1], out["source_tokens"].shape[1])
    assert [t.decode() for t in out["source_tokens"][1][:5]] == ["Tom", "ve", "45", "perros", "😀"]
    translations = [t.decode() for t in out["translation"]]
    assert translations[2] == "" and not any("[UNK]" in t or "##" in t for t in translations)


def test_a_run_initialized_from_an_export_starts_where_it_ended_and_reruns_without_it(
    subword_export, toy_corpus, tmp_path, capsys
):
    from seq2seq_app import LoadedTranslator
    from tests.toy_data import SUBWORD_FLAGS, mixture_flags

    export_dir, card = subword_export
    initial = tmp_path / "initial"  # a copy, removed below
    shutil.copytree(export_dir, initial)
    run_dir = tmp_path / "run"
    flags = [*TINY_FLAGS, *SUBWORD_FLAGS, "--val-bleu-sentences", "0"]
    flags[flags.index("--epochs") + 1] = "1"
    # With a learning rate of 0 the one epoch changes nothing: the run must score and translate
    # exactly as the export it started from.
    command = [
        *["--pairs", str(toy_corpus), *mixture_flags(toy_corpus.parent), *flags, "--learning-rate", "0"],
        *["--init-from", str(initial), "--run-dir", str(run_dir), "--export-dir", str(tmp_path / "e")],
    ]
    new = translate.run(translate.build_parser().parse_args(command))
    before = json.loads((export_dir.parent / "run" / "state.json").read_text())["history"]
    after = json.loads((run_dir / "state.json").read_text())["history"]
    assert after[0]["val_loss"] == pytest.approx(min(h["val_loss"] for h in before), rel=1e-4)
    for name in ("source_vocab.txt", "target_vocab.txt"):
        assert (run_dir / name).read_text() == (export_dir.parent / "run" / name).read_text()
    sentences = ["El gato come pan .", "Tom ve 45 perros 😀", "¿ Dónde está el perro ?"]
    assert LoadedTranslator(tmp_path / "e").translate(sentences) == LoadedTranslator(export_dir).translate(
        sentences
    )
    record = new["training"]["initialized_from"]
    assert record["path"] == str(initial.resolve())
    assert record["command"] == card["training"]["command"] and record["epochs"] == card["training"]["epochs"]
    assert new["hyperparameters"]["init_from"] == str(initial)
    # The run has weights of its own now: the same command works without the export. The run
    # has finished, so it skips training and re-exports, replacing the export only when complete.
    shutil.rmtree(initial)
    shutil.rmtree(tmp_path / "e")  # so the export below is the rerun's
    capsys.readouterr()
    again = translate.run(translate.build_parser().parse_args(command))
    assert "already finished" in capsys.readouterr().out
    assert json.loads((run_dir / "state.json").read_text())["history"] == after
    assert again["training"]["initialized_from"] == record
    assert (tmp_path / "e" / "saved_model.pb").exists() and not (tmp_path / "e.partial").exists()


@pytest.mark.parametrize(
    "change, message",
    [
        (["--units", "48"], "does not fit the model flags"),
        (["--text-unit", "word"], "not a --text-unit word model"),
        (["--init-from", "nowhere"], "no SavedModel there"),
    ],
)
def test_init_from_an_export_that_does_not_fit_is_a_clear_error(
    subword_export, toy_corpus, tmp_path, change, message
):
    from tests.toy_data import SUBWORD_FLAGS

    flags = [*TINY_FLAGS, *SUBWORD_FLAGS, "--init-from", str(subword_export[0])]
    for flag, value in zip(change[::2], change[1::2]):
        flags[flags.index(flag) + 1] = value
    dirs = ["--run-dir", str(tmp_path / "run"), "--export-dir", str(tmp_path / "e")]
    with pytest.raises(SystemExit, match=message):
        translate.main(["--pairs", str(toy_corpus), *flags, *dirs])
