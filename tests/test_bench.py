"""The benchmark's machine report, FLOP counts and side-by-side timing (not its speeds)."""

import collections
import itertools
import time

import keras
import pytest
import tensorflow as tf

from seq2seq_app.translation.translator import Translator
from training import bench, flops
from training.hardware import cpu_description, cpu_summary


def test_cpu_features_are_read_from_cpuinfo():
    cpu = cpu_description("processor : 0\nmodel name : Test CPU 9000\nflags : avx2 fma avx512f amx_tile\n")
    assert cpu["model"] == "Test CPU 9000"
    assert cpu["features"] == {
        "AVX2": True,
        "FMA": True,
        "AVX-512": True,
        "AVX-512 bf16": False,
        "AMX": True,
        "AMX bf16": False,
    }
    assert "no AVX-512 bf16 / AMX bf16" in cpu_summary(cpu)
    assert cpu_description("")["features"]["AVX2"] is False  # no /proc/cpuinfo: nothing claimed


def test_translator_flops_follow_the_documented_formula():
    e, u, sv, tv = 8, 16, 30, 20
    model = Translator(sv, tv, embedding_dim=e, units=u, cell="gru")
    model({"source": tf.ones((1, 3), "int32"), "target_in": tf.ones((1, 2), "int32")})
    gru = lambda inputs: 3 * u * (inputs + u)  # noqa: E731 — kernel + recurrent kernel
    encoder = 2 * gru(e)
    keys = 2 * u * u
    decoder = gru(e) + u * u + (u + 2 * u) * e + tv * e  # cell, query, combine, tied output
    bridges = 2 * u * u
    source, target, pairs, sentences = 7, 5, 20, 2
    expected = (
        3 * 2 * ((encoder + keys) * source + decoder * target + (u + 2 * u) * pairs + bridges * sentences)
    )
    assert flops.encoder_decoder_flops(model, source, target, pairs, sentences) == expected
    inputs = {"source": tf.constant([[5, 6, 7, 0], [5, 6, 7, 8]]), "target_in": tf.ones((2, 3), "int32")}
    targets = tf.constant([[4, 3, 0], [4, 4, 3]])
    assert flops.translation_batch_flops(model, inputs, targets) == flops.encoder_decoder_flops(
        model, 7, 5, 3 * 2 + 4 * 3, 2
    )


def test_matrix_weights_leave_embeddings_out():
    model = keras.Sequential(
        [keras.Input((3,), dtype="int32"), keras.layers.Embedding(50, 4), keras.layers.Dense(2)]
    )
    assert flops.matrix_weights(model) == 4 * 2


class _Echo(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="sentences")])
    def run(self, sentences):
        return {"out": tf.strings.upper(sentences)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def numbers(self, x):
        return {"y": x}


def test_a_reference_savedmodel_is_called_through_its_string_signature(tmp_path):
    module = _Echo()
    tf.saved_model.save(module, str(tmp_path / "echo"), signatures={"serving_default": module.run})
    call = bench.string_signature(tf.saved_model.load(str(tmp_path / "echo")))
    assert call(["ab"])["out"].numpy().tolist() == [b"AB"]
    tf.saved_model.save(module, str(tmp_path / "numbers"), signatures={"numbers": module.numbers})
    with pytest.raises(ValueError, match="single string batch"):
        bench.string_signature(tf.saved_model.load(str(tmp_path / "numbers")))


def test_side_by_side_times_every_function_on_the_same_texts_in_rotating_order():
    calls = {"a": [], "b": []}
    order = []

    def fn(name, batch):
        calls[name].append(list(batch))
        order.append(name)
        time.sleep(0.002)

    fns = {name: (lambda batch, name=name: fn(name, batch)) for name in calls}
    results = bench.side_by_side(fns, ["x", "y", "z"], repeats=4, batch=2)
    assert set(results) == {"a", "b"}
    assert calls["a"] == calls["b"]  # interleaved on identical inputs
    samples = order[6 : 6 + 8]  # after three warm-up calls each: one pair per latency sample
    assert samples == ["a", "b", "b", "a", "a", "b", "b", "a"]  # neither always goes first
    for r in results.values():
        assert 0 < r["p50_ms"] <= r["p95_ms"] and r["batch2_per_s"] > 0


def test_side_by_side_runs_each_function_right_after_each_other_equally_often():
    order = []
    fns = {name: (lambda batch, name=name: order.append(name)) for name in "abc"}
    bench.side_by_side(fns, ["x", "y", "z"], repeats=12, batch=1)
    samples = [tuple(order[9 + 3 * i : 12 + 3 * i]) for i in range(12)]  # after 3 warm-ups each
    assert collections.Counter(samples) == {p: 2 for p in itertools.permutations("abc")}


@pytest.mark.parametrize("texts", [list("uvwxy"), list("uvwxyz")])  # three batches, or an even two
def test_throughput_times_every_batch_under_each_function_in_turn(texts):
    calls = []
    fns = {name: (lambda batch, name=name: calls.append((name, tuple(batch)))) for name in "ab"}
    results = bench.side_by_side(fns, texts, repeats=2, batch=2)
    timed = calls[6 + 4 + 2 :]  # after the warm-ups, the latency samples and one call at the batch size
    batches = -(-len(texts) // 2)
    assert len(timed) == 2 * batches * bench.THROUGHPUT_PASSES  # every batch under a and b
    pairs = [timed[i : i + 2] for i in range(0, len(timed), 2)]
    assert all(x[1] == y[1] and {x[0], y[0]} == {"a", "b"} for x, y in pairs)  # the same batch, back to back
    leaders = collections.defaultdict(set)
    for first, _ in pairs:
        leaders[first[1]].add(first[0])
    assert all(names == {"a", "b"} for names in leaders.values())  # every batch led by each in turn
    assert results["a"]["batch2_per_s"] > 0 and results["b"]["batch2_per_s"] > 0


def test_utilisation_holds_a_mixed_precision_model_against_its_own_dtypes_peak(monkeypatch):
    measured = []
    monkeypatch.setattr(bench, "matmul_peak_gflops", lambda dtype: measured.append(dtype) or 50.0)

    def model(policy):  # as the benchmarks build them: under the global policy
        keras.mixed_precision.set_global_policy(policy)
        return keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])

    count = lambda m, x, y: 4e9  # noqa: E731 — FLOPs of one batch
    fp32 = bench.utilisation(model("float32"), [(None, None)], 1.0, count, 100.0)
    assert (fp32["matmul_peak_gflops"], fp32["peak_dtype"], fp32["flops_utilization"]) == (
        100.0,
        "float32",
        0.04,
    )
    bf16 = bench.utilisation(model("mixed_bfloat16"), [(None, None)], 1.0, count, 100.0)
    assert (bf16["matmul_peak_gflops"], bf16["peak_dtype"], bf16["flops_utilization"]) == (
        50.0,
        "bfloat16",
        0.08,
    )
    assert measured == ["bfloat16"]
