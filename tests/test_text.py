import tensorflow as tf

from seq2seq_app.core import text
from seq2seq_app.core.vocabulary import UNK_ID, Vocabulary


def tokens(s, lowercase=True):
    return [t.decode() for t in text.tokenize(tf.constant([s]), lowercase).to_list()[0]]


def test_tokenize_splits_punctuation_and_keeps_accents_and_case_on_request():
    assert tokens("¿Dónde está la BIBLIOTECA?") == ["¿", "dónde", "está", "la", "biblioteca", "?"]
    assert tokens("Tom's car", lowercase=False) == ["Tom's", "car"]


def test_numbers_hyphens_and_apostrophes_stay_whole():
    assert tokens("It costs 3,50 at 12:30, well-known don't") == [
        "it",
        "costs",
        "3,50",
        "at",
        "12:30",
        ",",
        "well-known",
        "don't",
    ]


def test_decomposed_accents_are_composed_and_spaces_unified():
    assert tokens("Jose\u0301\u00a0\u00a0comio\u0301\tpan") == ["josé", "comió", "pan"]


def test_typographic_quotes_become_plain():
    assert tokens("\u201cHola\u201d, it\u2019s") == ['"', "hola", '"', ",", "it's"]


def test_hangul_emoji_and_mixed_scripts_survive():
    assert tokens("너무재밓었다 😀 Привет") == ["너무재밓었다", "😀", "привет"]


def test_invalid_utf8_is_replaced_not_fatal():
    out = text.tokenize(tf.constant([b"\xff\xfeabc"])).to_list()[0]
    assert out[-1] == b"abc" and "\ufffd".encode() in out[0]


def test_empty_and_whitespace_give_no_tokens():
    assert text.tokenize(tf.constant(["", "   \t"])).to_list() == [[], []]


def test_detokenize_writes_natural_text():
    cases = [
        (["where", "is", "Tom's", "car", "?"], "Where is Tom's car?"),
        (["he", "said", ",", '"', "hi", '"', "."], 'He said, "hi".'),
        (["¿", "qué", "?"], "¿Qué?"),
        (["éste", "(", "no", ")", "!"], "Éste (no)!"),
        (["Привет", ",", ",", "what", "?"], "Привет, what?"),
        ([], ""),
    ]
    for toks, expected in cases:
        assert text.detokenize(tf.ragged.constant([toks], dtype=tf.string)).numpy()[0].decode() == expected


def test_tokenize_detokenize_round_trip_on_plain_sentences():
    for s in ["I don't know where Tom is.", "It's 12:30, isn't it?", 'She said "no".']:
        assert text.detokenize(text.tokenize(tf.constant([s]), lowercase=False)).numpy()[0].decode() == s


def test_vocabulary_build_is_deterministic_and_reserves_ids(tmp_path):
    vocab = Vocabulary.build([["b", "a", "a", "c"], ["b", "d"]], max_size=6, min_count=1)
    assert vocab.tokens[:4] == ["[PAD]", "[UNK]", "[START]", "[END]"]
    assert vocab.tokens[4:] == ["a", "b"]  # ties broken alphabetically, capped at max_size
    vocab.save(tmp_path / "v.txt")
    assert Vocabulary.load(tmp_path / "v.txt").tokens == vocab.tokens
    ids = vocab.encode(tf.ragged.constant([["a", "zzz"]])).to_list()
    assert ids == [[4, UNK_ID]]
    assert vocab.encode_numpy([["a", "zzz"]])[0].tolist() == [4, UNK_ID]


def test_vocabulary_min_count_drops_rare_tokens():
    vocab = Vocabulary.build([["x", "x", "y"]], min_count=2)
    assert "y" not in vocab.tokens and "x" in vocab.tokens


def test_split_sentences_keeps_abbreviations_numbers_and_quotes_together():
    paragraph = (
        'El Dr. García dijo: "Llegamos a las 8:30." Luego se fue.\n¡Qué día! ¿Vienes mañana? '
        "Costó 3.5 millones... y nadie protestó. J. K. Rowling escribió 7 libros."
    )
    got = [
        s.decode() for s in text.split_sentences(tf.constant([paragraph, "", "  ", "sin punto"]))[0].numpy()
    ]
    assert got == [
        'El Dr. García dijo: "Llegamos a las 8:30."',
        "Luego se fue.",
        "¡Qué día!",
        "¿Vienes mañana?",
        "Costó 3.5 millones... y nadie protestó.",
        "J. K. Rowling escribió 7 libros.",
    ]
    rows = text.split_sentences(tf.constant([paragraph, "", "  ", "sin punto"])).to_list()
    assert rows[1:] == [[], [], [b"sin punto"]]


def test_split_sentences_never_splits_inside_a_quotation():
    texts = [
        'A veces dicen, "No puedo ir hoy. Iré mañana." Luego se van.',
        "Dijo «Sí. Vale.» Bien. “Otra. Más.” Fin.",
        'Un "comillas sin cerrar. Sigue. Y sigue.',
        "Un\x1emarcador\x1fajeno. Nada más.",
    ]
    assert [[s.decode() for s in row] for row in text.split_sentences(tf.constant(texts)).to_list()] == [
        ['A veces dicen, "No puedo ir hoy. Iré mañana."', "Luego se van."],
        ["Dijo «Sí. Vale.»", "Bien.", "“Otra. Más.”", "Fin."],
        ['Un "comillas sin cerrar. Sigue. Y sigue.'],
        ["Un marcador ajeno.", "Nada más."],
    ]
