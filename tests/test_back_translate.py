import pytest

from training import back_translate as bt

TEXT = [
    "The cat eats bread. The dog drinks water!",
    "",
    "The cat eats bread.",  # a duplicate, once normalised
    "Too short.",
    "Tom sees the big red house and Mary sees the small blue house near the old river bank.",
]


def _write(tmp_path, lines):
    path = tmp_path / "mono.en"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_sentences_are_split_deduplicated_and_length_filtered():
    sentences = list(bt.select_sentences(bt.split_into_sentences(TEXT), min_words=3, max_words=12))
    assert sentences == ["The cat eats bread.", "The dog drinks water!"]


def test_a_stopped_run_resumes_without_duplicates(tmp_path):
    out = tmp_path / "bt.tsv"
    sentences = [f"sentence number {i} here" for i in range(7)]
    calls = []

    def failing(batch):
        calls.append(len(batch))
        if len(calls) == 2:
            raise KeyboardInterrupt  # the user stops the run during the second batch
        return [s.upper() for s in batch]

    with pytest.raises(KeyboardInterrupt):
        bt.back_translate(failing, sentences, out, batch_size=3, verbose=0)
    assert len(out.read_text(encoding="utf-8").splitlines()) == 3  # the first batch is on disk
    todo = list(bt.select_sentences(sentences, 1, 10, bt.already_done(out)))
    assert todo == sentences[3:]
    bt.back_translate(lambda b: [s.upper() for s in b], todo, out, batch_size=3, verbose=0)
    lines = out.read_text(encoding="utf-8").splitlines()
    assert [line.split("\t")[0] for line in lines] == sentences
    assert all(line.split("\t")[1] == line.split("\t")[0].upper() for line in lines)


def test_tabs_and_newlines_in_translations_cannot_break_the_file_and_empty_ones_are_left_out(tmp_path):
    out = tmp_path / "bt.tsv"
    outputs = iter([["a\tb\nc", ""]])
    assert bt.back_translate(lambda b: next(outputs), ["one two three", "four five six"], out, 8, 0) == 1
    assert out.read_text(encoding="utf-8") == "one two three\ta b c\n"


def test_bad_flags_and_a_missing_model_are_clear_errors(tmp_path):
    mono = _write(tmp_path, TEXT)
    with pytest.raises(SystemExit, match="no SavedModel"):
        bt.main(["--model", str(tmp_path / "none"), "--input", str(mono), "--output", str(tmp_path / "o")])
    with pytest.raises(SystemExit, match="--max-words"):
        bt.main(
            ["--model", "x", "--input", str(mono), "--output", "o", "--min-words", "5", "--max-words", "2"]
        )


def test_end_to_end_with_a_trained_translator_and_resume(trained_export, tmp_path):
    mono = _write(tmp_path, ["El gato come pan. El perro bebe agua.", "María ve la casa."])
    out = tmp_path / "bt.tsv"
    flags = ["--model", str(trained_export[0]), "--input", str(mono), "--output", str(out), "--verbose", "0"]
    assert bt.run(bt.build_parser().parse_args([*flags, "--min-words", "2"])) == 3
    pairs = [line.split("\t") for line in out.read_text(encoding="utf-8").splitlines()]
    assert [p[0] for p in pairs] == ["El gato come pan.", "El perro bebe agua.", "María ve la casa."]
    assert all(p[1].strip() for p in pairs)
    assert bt.run(bt.build_parser().parse_args([*flags, "--min-words", "2"])) == 0  # all done already
    sampled = tmp_path / "sampled.tsv"
    flags[flags.index(str(out))] = str(sampled)
    assert bt.run(bt.build_parser().parse_args([*flags, "--min-words", "2", "--temperature", "1"])) == 3
    pairs = [line.split("\t") for line in sampled.read_text(encoding="utf-8").splitlines()]
    assert [p[0] for p in pairs] == ["El gato come pan.", "El perro bebe agua.", "María ve la casa."]
    assert all(p[1].strip() for p in pairs)


def test_a_column_of_tab_separated_lines_is_read_unquoted_and_without_html_breaks():
    imdb = 'train_pos_0\t9\t1\t"A ""cult"" film.<br /><br />I loved it."\n'
    assert bt.text_of(imdb, 3) == 'A "cult" film.  I loved it.'
    assert bt.text_of('"Go," he said.\t"Va", dit-il.\n', 0) == '"Go," he said.'
    assert bt.text_of('"Who is it?" "It\'s me."\t¿Quién es?\r\n', 0) == '"Who is it?" "It\'s me."'
    assert bt.text_of('id\t"a ""b"""\r\n', 1) == 'a "b"'
    assert bt.text_of("no tabs here\n", 2) == ""
    assert bt.text_of("line one<BR>line two\n", None) == "line one line two\n"
    sentences = list(bt.split_into_sentences([bt.text_of(imdb, 3)]))
    assert sentences == ['A "cult" film.', "I loved it."]


@pytest.mark.parametrize(
    "extra", [["--temperature", "0"], ["--temperature", "nan"], ["--temperature", "1", "--beam-size", "4"]]
)
def test_a_temperature_that_cannot_sample_is_a_clear_error(tmp_path, extra):
    mono = _write(tmp_path, TEXT)
    with pytest.raises(SystemExit, match="--temperature"):
        bt.main(["--model", "x", "--input", str(mono), "--output", "o", *extra])


def test_a_negative_column_is_a_clear_error(tmp_path):
    mono = _write(tmp_path, TEXT)
    with pytest.raises(SystemExit, match="--column"):
        bt.main(["--model", "x", "--input", str(mono), "--output", "o", "--column", "-1"])
