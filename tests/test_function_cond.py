import pytest
import tensorflow as tf

from seq2seq_app.core.function_cond import function_cond


def _split_or_whole(texts, split):
    """A ragged result from either branch, as the translator's units."""
    return function_cond(
        split,
        lambda: tf.strings.split(texts),
        lambda: tf.RaggedTensor.from_row_lengths(texts, tf.ones_like(texts, tf.int64)),
    )


@pytest.mark.parametrize("split", [True, False])
def test_function_cond_equals_tf_cond_in_a_graph_and_eagerly(split):
    texts = tf.constant(["a b", "c"])
    traced = tf.function(_split_or_whole, autograph=False)
    expected = tf.strings.split(texts) if split else tf.RaggedTensor.from_row_lengths(texts, [1, 1])
    for result in (traced(texts, tf.constant(split)), _split_or_whole(texts, tf.constant(split))):
        assert result.to_list() == expected.to_list()


def test_the_branches_are_called_not_lowered():
    graph = (
        tf.function(_split_or_whole, autograph=False)
        .get_concrete_function(tf.TensorSpec([None], tf.string), tf.TensorSpec([], tf.bool))
        .graph
    )
    cases = [op for op in graph.get_operations() if op.type in ("Case", "StatelessCase")]
    assert len(cases) == 1
    assert cases[0].get_attr("_lower_using_switch_merge") is False
    assert not [op for op in graph.get_operations() if op.type in ("If", "StatelessIf")]
    assert len(cases[0].get_attr("branches")) == 2
