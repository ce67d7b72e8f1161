import gzip
from importlib import resources
from types import SimpleNamespace
from typing import Any

import pytest
from probe_neighbours.vocabularies import default_vocabs, flag_categories, list_vocabs, load_vocab, read_entries

from probe.errors import DataError, UsageError
from probe.files.cache import cache_dir


def test_registry_lists_the_builtin_vocabularies():
    assert {"clip-bpe", "english", "flagged", "world"} <= set(list_vocabs())


def test_clip_bpe_words_are_single_whole_word_tokens_of_the_shipped_bpe(tiny_session):
    vocab = load_vocab("clip-bpe")
    merges = (
        gzip.decompress((resources.files("open_clip") / "bpe_simple_vocab_16e6.txt.gz").read_bytes())
        .decode()
        .split("\n")
    )
    ascii_merges = {m.replace(" ", "")[:-4] for m in merges[1:48895] if m.endswith("</w>")}
    assert len(vocab.words) == len(set(vocab.words)) > 30_000
    assert all(w.isalpha() for w in vocab.words)
    sample = vocab.words[::997]
    assert all(w in ascii_merges or not w.isascii() for w in sample)
    tokens = tiny_session.tokenize(sample)
    assert ((tokens != 0).sum(dim=1) == 3).all()  # start, the word, end: one token each


def test_derived_list_is_cached_and_a_truncated_cache_is_rederived():
    first = load_vocab("clip-bpe")
    [cached] = list(cache_dir("vocabs").glob("clip-bpe-*.txt"))
    cached.write_text("the\nof\nand", encoding="utf-8")  # cut mid-write: no final newline
    assert load_vocab("clip-bpe").words == first.words
    assert cached.read_text(encoding="utf-8").count("\n") == len(first.words)


def test_english_and_world_lists():
    from probe.world.vocab import world_vocabulary

    english = load_vocab("english")
    assert 45_000 < len(english.words) <= 50_000 and english.words[0] == "the"
    assert not any(w.isdigit() for w in english.words)
    assert load_vocab("world").words == world_vocabulary()


def test_flagged_list_merges_better_profanity_and_project_categories():
    flagged = load_vocab("flagged")
    categories = set(flagged.categories.values())
    assert {"profanity", "sexual", "nudity"} <= categories
    assert flagged.category("naked") == "nudity" and flagged.is_flagged("NSFW")
    assert flagged.category("shithead") == "profanity"
    assert not flagged.is_flagged("sunset")
    assert set(flagged.words) == set(flagged.categories)


def test_user_file_skips_comments_blanks_duplicates_and_reads_categories(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("# comment\n\nsun\n  big   cat \nsun\nbadword\tinsult\n", encoding="utf-8")
    vocab = load_vocab(str(path))
    assert vocab.words == ["sun", "big cat", "badword"]
    assert vocab.categories == {"badword": "insult"}
    path.write_text("sun\nmoon\n", encoding="utf-8")
    assert load_vocab(str(path)).content_hash != vocab.content_hash
    assert "badword" in flag_categories([vocab])


@pytest.mark.parametrize(
    "content, reason, line",
    [
        (b"one\ntwo\n\x00\x01\x02", "binary", 3),
        (b"one\ncaf\xe9\n", "not valid UTF-8", 2),
        (b"# only a comment\n\n   \n", "no words", 1),
        (b"", "no words", 1),
    ],
)
def test_bad_user_files_name_file_line_and_reason(tmp_path, content, reason, line):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(DataError) as exc:
        load_vocab(str(path))
    assert f"{path}:{line}:" in str(exc.value) and reason in str(exc.value)


def test_unknown_names_missing_files_and_folders(tmp_path):
    with pytest.raises(UsageError, match=r"unknown vocabulary 'flaged'.*did you mean flagged"):
        load_vocab("flaged")
    with pytest.raises(DataError, match="not found"):
        load_vocab(str(tmp_path / "missing.txt"))
    with pytest.raises(DataError, match="folder"):
        load_vocab(str(tmp_path))


def test_prompt_files_use_the_same_reader(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("a\nb\n", encoding="utf-8")
    assert read_entries(path, "prompts") == (["a", "b"], {})


def test_default_vocabs_world_for_the_builtin_model(tiny_session):
    shapes_tiny: Any = SimpleNamespace(spec=SimpleNamespace(arch="shapes-tiny"))  # only the spec is read
    assert default_vocabs(shapes_tiny) == ["world"]
    assert default_vocabs(tiny_session) == ["clip-bpe", "flagged"]


def test_a_vocabulary_prints_as_one_line_not_its_words():
    from probe.vocabulary import make_vocabulary

    vocab = make_vocabulary("english", [f"w{i}" for i in range(50_000)], {"w1": "nsfw"}, source="vocab/english.txt")
    assert repr(vocab) == "Vocabulary('english', 50,000 words, 1 flagged, source='vocab/english.txt')"
    assert repr(make_vocabulary("t", ["a"])) == "Vocabulary('t', 1 word)"
