"""Named word lists for `probe neighbours` (CLIP-BPE words, English, flagged, the shapes world) and user files.

Every list is derived from data a package ships (open_clip's BPE file, wordfreq, better-profanity,
this project's `vocab/` folder), never hand-copied; derived lists are cached in the user cache.
Torch-free: listing and loading vocabularies stays cheap.
"""

from __future__ import annotations

import difflib
import gzip
import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe.files.cache import cache_path
from probe.files.versions import package_version
from probe.plugin import DataError, UsageError, Vocabulary, content_hash, data_files, make_vocabulary

if TYPE_CHECKING:
    from probe.plugin import Session

ENGLISH_SIZE = 50_000
BPE_FILE = "bpe_simple_vocab_16e6.txt.gz"
BPE_MERGES = 49152 - 256 - 2  # the merges open_clip's SimpleTokenizer reads from that file
PROFANITY_CATEGORY = "profanity"
FLAGGED_FILE = "flagged_words.tsv"
DERIVATION_VERSION = "1"  # bump when a derivation rule changes, so cached lists are remade

_PLAIN_WORD = re.compile(r"^[^\W\d_]+(?:[ '\-][^\W\d_]+)*$")  # letters, single inner spaces/hyphens/apostrophes


def _cached_list(kind: str, key: str, derive: Callable[[], list[str]]) -> list[str]:
    """Read a derived word list from the cache, deriving and writing it (atomically) on a miss."""
    from probe.plugin import atomic_write_text

    stem = cache_path("vocabs", f"{kind}-{content_hash(key, DERIVATION_VERSION)[:16]}")
    path = stem.with_name(f"{stem.name}.txt")
    try:
        cached = path.read_text(encoding="utf-8").split("\n")
        if cached and cached[-1] == "":  # written with a trailing newline; a truncated file lacks it
            return cached[:-1]
    except (OSError, UnicodeDecodeError):
        pass
    words = derive()
    atomic_write_text(path, "".join(w + "\n" for w in words))
    return words


def _bpe_whole_words(data: bytes) -> list[str]:
    """Whole-word tokens (merges ending in </w>) of CLIP's BPE, decoded from its byte alphabet."""
    from open_clip.tokenizer import bytes_to_unicode

    to_byte = {ch: b for b, ch in bytes_to_unicode().items()}
    merges = gzip.decompress(data).decode("utf-8").split("\n")[1 : BPE_MERGES + 1]
    words: list[str] = []
    for merge in merges:
        token = merge.replace(" ", "")
        if not token.endswith("</w>"):
            continue
        try:
            word = bytes(to_byte[ch] for ch in token[: -len("</w>")]).decode("utf-8")
        except (KeyError, UnicodeDecodeError):
            continue  # a fragment of a multi-byte character, not a word
        if word.isalpha():
            words.append(word)
    return list(dict.fromkeys(words))


def _clip_bpe() -> Vocabulary:
    data = (resources.files("open_clip") / BPE_FILE).read_bytes()
    words = _cached_list("clip-bpe", content_hash(data), lambda: _bpe_whole_words(data))
    return make_vocabulary("clip-bpe", words, source=f"open_clip {package_version('open_clip_torch')} {BPE_FILE}")


def _english() -> Vocabulary:
    def derive() -> list[str]:
        from wordfreq import top_n_list

        return [w for w in top_n_list("en", ENGLISH_SIZE) if any(c.isalpha() for c in w)]

    wf = package_version("wordfreq")
    words = _cached_list("english", f"wordfreq {wf} en {ENGLISH_SIZE}", derive)
    return make_vocabulary("english", words, source=f"wordfreq {wf}, top {ENGLISH_SIZE} English words")


def _project_flagged() -> dict[str, str]:
    """word -> category from this project's `vocab/flagged_words.tsv`."""
    text = (data_files() / FLAGGED_FILE).read_text(encoding="utf-8")
    entries: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        word, _, category = line.partition("\t")
        entries[word.strip().casefold()] = category.strip() or "flagged"
    return entries


def _profanity_words() -> list[str]:
    """better-profanity's shipped list, keeping real words and phrases (not leetspeak variants)."""
    text = (resources.files("better_profanity") / "profanity_wordlist.txt").read_text(encoding="utf-8")
    words = (line.strip().casefold() for line in text.splitlines())
    return [w for w in words if _PLAIN_WORD.match(w)]


def _flagged() -> Vocabulary:
    categories = dict.fromkeys(_profanity_words(), PROFANITY_CATEGORY)
    categories.update(_project_flagged())  # the project's categories win over the generic one
    words = list(categories)
    source = f"better-profanity {package_version('better-profanity')} wordlist + probe.vocab/{FLAGGED_FILE}"
    return make_vocabulary("flagged", words, categories, source)


def _world() -> Vocabulary:
    from probe.world.vocab import world_vocabulary

    return make_vocabulary("world", world_vocabulary(), source="probe.world.vocab (the shapes world's words)")


#: name -> (loader, one-line description): what this plugin registers through `register_vocabularies`.
BUILTIN_VOCABS: dict[str, tuple[Callable[[], Vocabulary], str]] = {
    "clip-bpe": (_clip_bpe, "whole-word tokens of CLIP's BPE vocabulary (from open_clip's shipped file)"),
    "english": (_english, f"the {ENGLISH_SIZE:,} most frequent English words (wordfreq)"),
    "flagged": (_flagged, "NSFW, violent and profane words with their category (better-profanity + vocab/)"),
    "world": (_world, "the shapes world's words (default for the built-in shapes-tiny model)"),
}


def _registered() -> Any:
    from probe.plugin import vocabularies

    return vocabularies()


def list_vocabs() -> list[str]:
    """Names of the registered vocabularies (built-in and plugins'), for --vocab."""
    return list(_registered())


def describe_vocab(name: str) -> str:
    return _registered()[name].about


def default_vocabs(session: Session) -> list[str]:
    """The built-in shapes models know only their world's words; real CLIPs get CLIP-BPE words + flagged."""
    from probe.plugin import BUILTIN_MODELS

    return ["world"] if session.spec.arch in BUILTIN_MODELS else ["clip-bpe", "flagged"]


def _looks_like_path(text: str) -> bool:
    return "/" in text or "\\" in text or text.startswith(("~", ".")) or Path(text).suffix != ""


def load_vocab(name_or_path: str) -> Vocabulary:
    """A registered vocabulary by name, or a user word-list file by path."""
    known = _registered()
    if name_or_path in known:
        return _checked(name_or_path, known[name_or_path])
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return read_vocab_file(path)
    if path.exists():
        raise DataError(
            f"vocabulary {name_or_path} is a folder, not a word-list file", hint="pass a text file, one word a line"
        )
    if _looks_like_path(name_or_path):
        raise DataError(
            f"vocabulary file not found: {name_or_path}",
            hint=f"check the path, or use a named list: {', '.join(known)}",
        )
    close = difflib.get_close_matches(name_or_path, list(known), n=1, cutoff=0.5)
    hint = f"did you mean {close[0]}? " if close else ""
    raise UsageError(
        f"unknown vocabulary {name_or_path!r}",
        hint=known.hint(f"{hint}named lists: {', '.join(known)}; or pass a word-list file path"),
    )


def check_vocab_names(names: list[str]) -> None:
    """An unknown vocabulary name or a missing word-list file fails now, before a model loads
    (a file that exists is read once, later)."""
    known = _registered()
    for name in names:
        if name not in known and not Path(name).expanduser().is_file():
            load_vocab(name)  # raises its one-line error


def _checked(name: str, ext) -> Vocabulary:
    """Call a registered loader; a plugin's list of words becomes a Vocabulary, anything else is its error."""
    value = ext.load()
    if isinstance(value, (list, tuple)) and all(isinstance(w, str) for w in value):
        value = make_vocabulary(name, list(value), source=f"plugin {ext.plugin}")
    if not isinstance(value, Vocabulary) or not value.words:
        raise DataError(
            f"vocabulary {name!r} from plugin {ext.plugin!r} gave no words",
            hint="its loader must return a non-empty Vocabulary or list of words",
        )
    return value


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def read_entries(path: Path, what: str = "words") -> tuple[list[str], dict[str, str]]:
    """Entries of a UTF-8 list file, one a line (`entry<TAB>category` gives a category); `#` comments,
    blank lines and duplicates skipped. Binary, non-UTF-8 or empty files are DataErrors naming the line."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    nul = data.find(b"\0")
    if nul >= 0:
        raise DataError(
            f"{path}:{_line_of(data, nul)}: binary data (NUL byte), not a text file",
            hint=f"pass a UTF-8 text file, one of the {what} a line",
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}:{_line_of(data, exc.start)}: not valid UTF-8 (byte 0x{data[exc.start]:02x})",
            hint="save the file as UTF-8",
        ) from exc
    entries: list[str] = []
    categories: dict[str, str] = {}
    for line in text.splitlines():
        entry, _, category = line.partition("\t")
        entry = " ".join(entry.split())
        if not entry or entry.startswith("#"):
            continue
        entries.append(entry)
        if category.strip():
            categories.setdefault(entry, category.strip())
    if not entries:
        raise DataError(
            f"{path}:1: no {what} in the file (only blank lines or # comments)", hint=f"add one of the {what} a line"
        )
    return list(dict.fromkeys(entries)), categories


def read_vocab_file(path: Path) -> Vocabulary:
    """A user word list (see `read_entries`); entries given a category count as flagged."""
    words, categories = read_entries(path, "words")
    return make_vocabulary(str(path), words, categories, source=f"file {path}")


def flag_categories(vocabs: list[Vocabulary]) -> dict[str, str]:
    """word (case-folded) -> category: the built-in flagged list plus any categories the given lists carry."""
    merged = dict(load_vocab("flagged").categories)
    for vocab in vocabs:
        merged.update({w.casefold(): c for w, c in vocab.categories.items()})
    return merged
