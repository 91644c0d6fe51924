"""Words, stems and language for keyword matching (BM25, sentence choice, answer language)."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import Stemmer
import yaml
from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_GERMAN

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STOP = frozenset(STOPWORDS_EN) | frozenset(STOPWORDS_GERMAN)
_DE_HINTS = frozenset(
    [
        "der",
        "die",
        "das",
        "und",
        "ist",
        "nicht",
        "ein",
        "eine",
        "wie",
        "was",
        "wer",
        "wo",
        "wann",
        "warum",
        "muss",
        "darf",
        "ich",
        "wir",
        "ihr",
        "sie",
        "mit",
        "für",
        "von",
        "zu",
        "auf",
        "bei",
        "den",
        "dem",
        "des",
        "im",
        "ja",
        "nein",
        "kann",
        "können",
        "welche",
        "welcher",
        "gibt",
        "es",
    ]
)
_EN_HINTS = frozenset(
    [
        "the",
        "and",
        "is",
        "are",
        "what",
        "who",
        "where",
        "when",
        "why",
        "how",
        "must",
        "may",
        "can",
        "i",
        "we",
        "you",
        "do",
        "does",
        "of",
        "to",
        "for",
        "with",
        "which",
        "there",
        "a",
        "an",
        "my",
        "our",
        "it",
        "in",
        "on",
        "need",
        "should",
    ]
)


@lru_cache(maxsize=1)
def _stemmers() -> tuple[Stemmer.Stemmer, Stemmer.Stemmer]:
    return Stemmer.Stemmer("german"), Stemmer.Stemmer("english")


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters and digits; hyphenated words split)."""
    return _WORD.findall(text.lower())


def content_words(text: str) -> list[str]:
    """The words of a text without the stop words of either language."""
    return [w for w in words(text) if w not in _STOP]


def stems(text: str) -> list[str]:
    """Stop-word-free German and English stems of every word.

    The corpus is mostly German and questions come in both languages, so each word contributes
    its German stem and, where different, its English stem: "Richtlinien" and "guidelines" both
    reduce to something a document in either language also produces.
    """
    german, english = _stemmers()
    tokens = [w for w in words(text) if w not in _STOP and (len(w) > 1 or w.isdigit())]
    out = []
    for token, de, en in zip(
        tokens, german.stemWords(tokens), english.stemWords(tokens), strict=True
    ):
        out.append(de)
        if en != de and token.isascii():
            out.append(en)
    return out


def keys(text: str) -> tuple[str, ...]:
    """The German stems of a text's content words, in order (what glossary terms match by)."""
    german, _ = _stemmers()
    return tuple(german.stemWords(content_words(text)))


class Glossary:
    """Groups of equivalent terms; a question is also searched with the equivalents of its terms."""

    def __init__(self, groups: list[list[str]]) -> None:
        self.groups = [[str(term) for term in group] for group in groups]
        self._by_length = sorted(
            (
                (len(key), g, i, key)
                for g, group in enumerate(self.groups)
                for i, key in enumerate(keys(term) for term in group)
                if key
            ),
            key=lambda entry: -entry[0],
        )
        self._with_key: dict[tuple[str, ...], list[tuple[int, int]]] = {}  # group, position
        for _, g, i, key in self._by_length:
            self._with_key.setdefault(key, []).append((g, i))

    @classmethod
    def load(cls, path: Path) -> Glossary:
        groups = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        if not all(isinstance(g, list) for g in groups):
            raise ValueError(f"{path}: every entry must be a list of equivalent terms")
        return cls(groups)

    def _hits(self, text: str) -> list[tuple[list[str], set[int]]]:
        """Groups the text mentions, longest terms first: words inside a matched term ("AI" in
        "AI Product Owner") do not match again."""
        sequence = list(keys(text))
        used = [False] * len(sequence)
        found: dict[int, set[int]] = {}
        for length, g, i, key in self._by_length:
            for start in range(len(sequence) - length + 1):
                if tuple(sequence[start : start + length]) == key and not any(
                    used[start : start + length]
                ):
                    used[start : start + length] = [True] * length
                    found.setdefault(g, set()).add(i)
        return [(self.groups[g], terms) for g, terms in sorted(found.items())]

    def group_hits(self, text: str) -> list[tuple[list[str], list[str]]]:
        """(terms of the group, the terms the text uses) for every group the text mentions."""
        return [(group, [group[i] for i in sorted(found)]) for group, found in self._hits(text)]

    def equivalents(self, text: str) -> list[str]:
        """Terms from every group that the text mentions, other than the ones it uses."""
        return [
            t for group, found in self._hits(text) for i, t in enumerate(group) if i not in found
        ]

    def synonyms(self, term: str) -> list[str]:
        """The other terms of every group that has this term as a whole ("KI-Board" for "AI
        board"; nothing for "AI Ethics Officer", which only contains a term)."""
        key = keys(term)
        return [
            other
            for g, i in self._with_key.get(key, [])
            for j, other in enumerate(self.groups[g])
            if j != i
        ]

    def mentions(self, text: str) -> list[str]:
        """The glossary terms the text uses."""
        return [t for group, found in self._hits(text) for i, t in enumerate(group) if i in found]


DEFAULT_GLOSSARY = Path(__file__).with_name("glossary.yaml")


class DocumentKinds:
    """The words that name a kind of document ("laut Artikel", "according to the FAQ"), by the
    doc_type documents declare: a question that names a kind is asking about those documents."""

    def __init__(self, kinds: dict[str, list[str]]) -> None:
        self.kinds = {kind: Glossary([terms]) for kind, terms in kinds.items()}

    @classmethod
    def load(cls, path: Path) -> DocumentKinds:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(raw, dict) or not all(isinstance(t, list) for t in raw.values()):
            raise ValueError(f"{path}: every entry must be doc_type: [words that name it]")
        return cls({str(kind): [str(t) for t in terms] for kind, terms in raw.items()})

    def named(self, text: str) -> frozenset[str]:
        """The doc_types the text names."""
        return frozenset(kind for kind, words in self.kinds.items() if words.mentions(text))


DEFAULT_KINDS = Path(__file__).with_name("kinds.yaml")


# Tells a text's language from its words when function words do not (Dictionary.language).
Tell = Callable[[list[str]], str | None]


def detect_language(text: str, tell: Tell | None = None) -> str:
    """'de' or 'en' from function words and umlauts; when they do not decide, from `tell` (the
    words only one language has: Dictionary.language); German when still unsure (the company's
    language)."""
    tokens = words(text)
    de = sum(t in _DE_HINTS for t in tokens) + 2 * len(re.findall(r"[äöüß]", text.lower()))
    en = sum(t in _EN_HINTS for t in tokens)
    if en == de and tell is not None:
        return tell(tokens) or "de"
    return "en" if en > de else "de"
