"""English words of a question in German, for the keyword search over German documents.

The embedding model matches an English question to German text only loosely, and BM25 not at
all: "Which logistics centres fall under the AI policy?" shares no word with "Logistikzentren
Hamburg-Altenwerder, Bremen …". So the English words of a question are looked up in a bilingual
dictionary, and the German translations that the reader's documents use join the keyword search
(the glossary does the same for the company's own terms; this covers ordinary words).

The dictionary is the TU Chemnitz German-English dictionary ("Ding", GPL), read where Debian's
package `trans-de-en` installs it: never downloaded and not shipped here. Parsed once per machine
into an SQLite table in the cache folder (about 5 s), then looked up word by word.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path

from bm25s.stopwords import STOPWORDS_EN
from filelock import FileLock

from assistant.search.lexical import words

log = logging.getLogger(__name__)

# Annotations of the Ding format: {f} {pl} {vt}, [Br.] [ugs.], (explanations), <abbreviations>,
# and the placeholders for objects (etw., jdn., sth., sb.) and the reflexive "sich".
_NOTE = re.compile(
    r"\{[^}]*\}|\[[^\]]*\]|\([^)]*\)|<[^>]*>|\b(?:etw|jdn|jdm|jds|sth|sb)\.|\bsich\b|\bsb's\b"
)
# Words of a question that ask rather than name (and so have no German counterpart to search).
_ASKING = frozenset(
    "who whom whose what which when where why how much many also still really allowed may might "
    "would could should can do does did must need get got ok okay yes via per someone something "
    "anything i my our we us you your has have had having is are was were be been being am "
    "let make made there their this that these those".split()
)
MAX_PHRASE_WORDS = 2
PER_WORD = 2  # German words per English word (1-4 tried on the tuning sets: 2 ranked best)


_WORD_ONLY = re.compile(r"^[^\W\d_]+(?:-[^\W\d_]+)*$")


def _terms(side: str) -> list[str]:
    """The terms of one sense, without annotations (removed first: "{+Dat.; +Akk.}" holds a
    semicolon too)."""
    return [" ".join(term.split()) for term in _NOTE.sub(" ", side).split(";")]


def parse(lines: Iterator[str]) -> Iterator[tuple[str, str, int]]:
    """(English word or two-word phrase, German word, rank) from Ding lines "de :: en", whose
    senses are separated by " | " on both sides in the same order."""
    rank = 0
    for line in lines:
        if line.startswith("#") or " :: " not in line:
            continue
        german, english = (side.split(" | ") for side in line.rstrip("\n").split(" :: ", 1))
        if len(german) != len(english):
            continue
        for de_side, en_side in zip(german, english, strict=True):
            targets = [t for t in _terms(de_side) if _WORD_ONLY.match(t)]
            for term in _terms(en_side):
                term = term.lower().removeprefix("to ")
                if targets and term and len(term.split()) <= MAX_PHRASE_WORDS:
                    for target in targets:
                        rank += 1
                        yield term, target, rank


class Dictionary:
    """English-to-German lookups from a Ding-format file, cached as an SQLite table."""

    def __init__(self, source: Path | None, cache_dir: Path) -> None:
        self.source = source
        self.cache_dir = cache_dir
        self._path: Path | None = None
        self._failed = False

    def _table(self) -> Path | None:
        """The SQLite table, built from the source the first time (None: no dictionary)."""
        if self._path is not None or self._failed:
            return self._path
        source = self.source
        if source is None:
            return None
        if not source.is_file():
            self._failed = True
            log.warning(
                "no English-German dictionary at %s: English questions are searched without "
                "it (install Debian's trans-de-en, or set ASSISTANT_DICTIONARY_PATH)",
                source,
            )
            return None
        stat = source.stat()
        # "-2": the table of German words was added (a cache without it is not read).
        path = self.cache_dir / f"{source.name}-{stat.st_size}-{int(stat.st_mtime)}-2.sqlite"
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            with FileLock(str(path) + ".lock"):  # another process may be building it
                if not path.exists():
                    self._build(source, path)
        except OSError as exc:
            self._failed = True
            log.warning("English-German dictionary not usable (%s): searched without it", exc)
            return None
        self._path = path
        return path

    @staticmethod
    def _build(source: Path, path: Path) -> None:
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        with source.open(encoding="utf-8", errors="replace") as lines:
            db = sqlite3.connect(partial)
            try:
                db.execute("CREATE TABLE words (en TEXT, de TEXT, rank INTEGER)")
                db.executemany("INSERT INTO words VALUES (?, ?, ?)", parse(lines))
                db.execute("CREATE INDEX words_en ON words (en, rank)")
                db.execute("CREATE TABLE german (word TEXT PRIMARY KEY) WITHOUT ROWID")
                german = {de.lower() for (de,) in db.execute("SELECT DISTINCT de FROM words")}
                db.executemany("INSERT INTO german VALUES (?)", ((w,) for w in german))
                db.commit()
            finally:
                db.close()
        partial.replace(path)  # whole or not at all
        log.info("English-German dictionary cached at %s", path)

    def lookup(self, english: str) -> tuple[str, ...]:
        """German translations of an English word or two-word phrase, the dictionary's first
        senses first."""
        return _lookup(self._table(), english)

    def language(self, tokens: Sequence[str]) -> str | None:
        """'en' or 'de' by the words that only one side of the dictionary knows ("hours",
        "salary", "launched" / "Durchwahl", "gespeichert"); None when they do not tell (or
        there is no dictionary). Short questions have no function words to tell them by:
        "office hours english?" was taken for German."""
        table = self._table()
        if table is None:
            return None
        en = de = 0
        for token in tokens:
            english, german = bool(_lookup(table, token)), _is_german(table, token)
            en += english and not german
            de += german and not english
        return "en" if en > de else "de" if de > en else None

    def translations(
        self, question: str, known: Callable[[str], bool], per_word: int = PER_WORD
    ) -> list[str]:
        """German words for the question's English words that the documents use (`known`): per
        word (a two-word phrase such as "works council" first) the first `per_word` of them."""
        tokens = words(question)
        found: list[str] = []
        i = 0
        while i < len(tokens):
            for size in (2, 1):
                phrase = tokens[i : i + size]
                if len(phrase) < size or (size == 1 and _asks(phrase[0])):
                    continue
                german = [t for t in self._forms(" ".join(phrase)) if known(t)][:per_word]
                if german:
                    found += german
                    i += size - 1
                    break
            i += 1
        return list(dict.fromkeys(found))

    def _forms(self, english: str) -> list[str]:
        """German nouns for the phrase or, when it has none, for its singular. Nouns only (German
        capitalises them): they name what a question is about, while the verbs of a question
        ("bring", "work", "keep") translate to words every passage uses in some other sense."""
        for form in _singulars(english):
            german = [word for word in self.lookup(form) if word[0].isupper()]
            if german:
                return german
        return []


def _asks(word: str) -> bool:
    return word in _ASKING or word in STOPWORDS_EN or len(word) < 3


def _singulars(english: str) -> list[str]:
    forms = [english]
    if english.endswith("ies"):
        forms.append(english[:-3] + "y")
    if english.endswith("es"):
        forms.append(english[:-2])
    if english.endswith("s"):
        forms.append(english[:-1])
    return forms


@lru_cache(maxsize=20_000)
def _is_german(table: Path, word: str) -> bool:
    """Whether the dictionary knows a lower-case word as German (as English: _lookup)."""
    db = sqlite3.connect(f"file:{table}?mode=ro", uri=True)
    try:
        return db.execute("SELECT 1 FROM german WHERE word = ?", (word,)).fetchone() is not None
    finally:
        db.close()


@lru_cache(maxsize=20_000)
def _lookup(table: Path | None, english: str) -> tuple[str, ...]:
    if table is None:
        return ()
    db = sqlite3.connect(f"file:{table}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT de FROM words WHERE en = ? ORDER BY rank", (english,))
        return tuple(dict.fromkeys(row[0] for row in rows))
    finally:
        db.close()
