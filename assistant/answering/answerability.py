"""Whether the documents answer a question: refuse, answer with a "no clear match" notice, or answer.

Similarity alone cannot tell "close but not answered" from "answered in other words": employees
ask about a licence price next to the licence rules, or about a person the documents only name by
role. So the decision combines a few signals, each general (none is about one question):

- `similarity`: the best passage's cosine (its best unit: sentence, bullet or row), and its
  `margin` over the next passage (a question that matches everything a little answers nothing);
- `coverage`: how much of the question's wording (weighted by rarity among the documents the
  reader may see) the best-matching units and their headings carry;
- `unknown_name`: in a question of at most SHORT_QUESTION words, a name that no document the
  reader may see contains (in a short question a name is what it asks about; in a longer one it is
  mostly the asker's context: "I'm a project manager in Rotterdam and …"), in any
  spelling (a typo of a word they use is known) or glossary equivalent (DPIA for DSFA): a product
  or acronym (NordGPT, DSFA), or in an English question any capitalised word that does not start
  a sentence (English capitalises names, not nouns), or in a German one a capitalised word after
  "in", "am Standort", "Frau" …; a compound (KI-Ethikrat) when one of its parts is unknown.
  Such a name in a longer question is no reason to refuse (the rule that only registered tools
  are allowed answers "… switch to Tabnine?"), but the answer then says before it quotes
  anything that no document mentions it (`unknown_names`, the pipeline);
- `unknown_noun`: the same for a capitalised word of a German question (nouns, weaker);
- `no_amount`: the question asks what something costs, and none of the three best-matching units names
  an amount;
- `unseen_phrase`: a name of two or more capitalised words ("AI Ethics Officer", "Copilot
  Studio", "ISO 27001", "Katrin Wolters") that none of the passages found contains as such,
  although its words may each be known ("Chief Digital Officer" next to "Chief AI Officer"),
  compared by stem and with the glossary's terms for it ("AI Board" is found as "KI-Board"); in a
  German question only a run with a product, an acronym or a word no document uses (German
  capitalises every noun: "seit zwei Monaten Teamleiterin" names nothing);
- `english`: cross-lingual cosines run lower.

The passages are those of the ranking without the heading lift and the query adapter
(`HybridRetriever.retrieve_judged`): the lift pulls passages whose units say much beyond their
heading into the top 5 for unanswerable questions as well, so their best cosines and coverage
would no longer tell the two apart (leave-one-set-out 39.2 % refused with that ranking's
features, 37.0 % with the lifted one's, both at 3 % false refusals); the adapter is fitted on
answerable questions only.

Every signal reads the passages found, not the question's topic alone. A learnt one that reads
both (the best cosine of an adapted question with the passages' units, W fitted on answerable vs
unanswerable tuning questions) refused 81 % leave-one-set-out instead of 40 %, but a question-only
classifier nearly matched it (AUC .92): the sets ask about the same gaps. With one document's
questions left out of its fit, 15-66 % of them were refused, and 35-90 % where they had been
unanswerable before (an uploaded document that fills a knowledge gap): not used.

A logistic model over these is fitted on the tuning question sets by `scripts/fit_answerability.py`
(never on the held-out set); its weights and the two thresholds are in `answerability.json`:
below `refuse_below` the question is refused, below `hedge_below` answered with the notice, which
the fit only keeps where most of the answers it would mark were indeed not answered.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from assistant.answering.question import MONEY_VALUE, Question
from assistant.ingest.units import split_units
from assistant.search.lexical import keys, stems, words
from assistant.search.passage import Lexicon, Passage

FEATURES = (
    "similarity",
    "margin",
    "coverage",
    "unknown_name",
    "unknown_noun",
    "no_amount",
    "english",
    "unseen_phrase",
)
DEFAULT_MODEL = Path(__file__).with_name("answerability.json")
_NAME = re.compile(r"[A-ZÄÖÜ][\wÄÖÜäöüß-]{2,}")
# A capital after this starts a sentence ("… on Monday. She asked …"); it names nothing.
_SENTENCE_START = re.compile(r"(^|[.!?:;–-]\s+|[\"„“(]\s*)\W*$")
# English capitalises days and months: "on Friday" names nothing the documents should have.
_CALENDAR = frozenset(
    "monday tuesday wednesday thursday friday saturday sunday january february march april "
    "june july august september october november december".split()
)
# What stands before a German place or person name ("am Standort Nürnberg", "Frau Albers").
_NAME_BEFORE = re.compile(
    r"\b(in|aus|nach|am|Standort|Niederlassung|Werk|Büro|Frau|Herr|Herrn)\s+$", re.IGNORECASE
)
# A word of a name: capitalised, with an inner capital (NordGPT), or a number (ISO 27001).
_NAME_WORD = re.compile(r"[\wÄÖÜäöüß][\w.&'’ÄÖÜäöüß-]*")
TOP_UNITS = 5
SHORT_QUESTION = 12  # words (10-12 refused the most at the same false refusals, leave-one-set-out)


@dataclass(frozen=True)
class Verdict:
    """The decision for one question and the probability behind it."""

    probability: float  # that the documents answer the question
    answer: bool  # False: refuse
    confident: bool  # False: answer with the "no clear match" notice


@dataclass(frozen=True)
class Model:
    """A fitted logistic model: standardisation, weights, thresholds."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    refuse_below: float
    hedge_below: float
    # The range of each feature among the questions fitted on: a value beyond it (the margin of
    # a store with one passage) says no more than the range's end, so it is clamped to it.
    low: tuple[float, ...]
    high: tuple[float, ...]

    @classmethod
    def load(cls, path: Path = DEFAULT_MODEL) -> Model:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if tuple(raw["features"]) != FEATURES:
            raise ValueError(f"{path}: fitted for features {raw['features']}, not {FEATURES}")
        return cls(
            tuple(raw["mean"]),
            tuple(raw["scale"]),
            tuple(raw["weights"]),
            float(raw["bias"]),
            float(raw["refuse_below"]),
            float(raw["hedge_below"]),
            tuple(raw["low"]),
            tuple(raw["high"]),
        )

    def probability(self, values: tuple[float, ...]) -> float:
        clamped = [
            min(max(v, lo), hi) for v, lo, hi in zip(values, self.low, self.high, strict=True)
        ]
        z = self.bias + sum(
            w * (v - m) / s
            for w, v, m, s in zip(self.weights, clamped, self.mean, self.scale, strict=True)
        )
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def verdict(self, values: tuple[float, ...]) -> Verdict:
        p = self.probability(values)
        return Verdict(p, p >= self.refuse_below, p >= self.hedge_below)


def features(question: Question, passages: list[Passage], lexicon: Lexicon) -> tuple[float, ...]:
    """The signals for one question and its ranked passages (see the module docstring)."""
    if not passages:
        return (
            0.0,
            0.0,
            0.0,
            1.0,
            1.0,
            float(question.wants_money),
            float(question.language == "en"),
            1.0,
        )
    dense = sorted((p.dense for p in passages[:5]), reverse=True)
    units = best_units(passages)
    question_stems = list(dict.fromkeys(stems(question.text)))
    total = sum(lexicon.idf(t) for t in question_stems) or 1.0

    def coverage(text: str) -> float:
        present = set(stems(text))
        return sum(lexicon.idf(t) for t in question_stems if t in present) / total

    names, nouns = _names(question)
    texts = [text for text, _ in units]
    return (
        dense[0],
        dense[0] - (dense[1] if len(dense) > 1 else 0.0),
        max((coverage(f"{context} {text}") for text, context in units), default=0.0),
        float(len(words(question.text)) <= SHORT_QUESTION and any(map(lexicon.unknown, names))),
        float(any(lexicon.unknown(w) for w in nouns if w not in question.entities)),
        float(question.wants_money and not any(MONEY_VALUE.search(t) for t in texts[:3])),
        float(question.language == "en"),
        float(_unseen_phrase(question, passages[:5], lexicon)),
    )


def _names(question: Question) -> tuple[list[str], list[str]]:
    """The names a question uses, and (German) its other capitalised words, the nouns."""
    # Each capitalised word that does not start a sentence, with the text before it.
    before: dict[str, str] = {}
    for m in _NAME.finditer(question.text):
        if not _SENTENCE_START.search(question.text[: m.start()]):
            before.setdefault(m.group(0), question.text[: m.start()])
    capitalised = [w for w in before if w.lower() not in _CALENDAR]
    if question.language == "en":
        return list(question.entities) + capitalised, []
    # German capitalises every noun: a name is one after "in", "Standort", "Frau" …
    named = [w for w in capitalised if _NAME_BEFORE.search(before[w])]
    return list(question.entities) + named, capitalised


def unknown_names(question: Question, lexicon: Lexicon) -> list[str]:
    """The names of a question (of any length) that no document the reader may see uses, in any
    spelling or equivalent: "Tabnine", "Antwerp"; a word of a longer name as the whole name
    ("Copilot Studio" when no document says "Studio")."""
    unknown = [w for w in dict.fromkeys(_names(question)[0]) if lexicon.unknown(w)]
    longer: dict[str, str] = {}
    for phrase in phrases(question.text):
        run = phrase.split()
        while run and _NAME_BEFORE.search(run[0] + " "):  # "Standort Antwerp": "Antwerp"
            run = run[1:]
        longer.update({w: " ".join(run) for w in run if w in unknown})
    return list(dict.fromkeys(longer.get(w, w) for w in unknown))


def phrases(text: str) -> list[str]:
    """The names of two or more capitalised words in a question: runs of words that are
    capitalised, have an inner capital or are numbers, not broken by punctuation; a sentence's
    first word only when it is a name itself ("NordGPT Pro"), not "Does" or "Welche"."""
    found: list[str] = []
    run: list[str] = []
    end = 0
    for m in _NAME_WORD.finditer(text):
        raw, gap = m.group(0), text[end : m.start()]
        word = raw.strip(".'’")
        end = m.end()
        if re.search(r"[^\s&/]", gap):  # punctuation ends a name
            found, run = _close(found, run), []
        if _HONORIFIC.match(word):  # "Frau Dr. Albers": the name is "Albers"
            continue
        first = not run and (m.start() == 0 or _SENTENCE_START.search(text[: m.start()]))
        name_like = bool(word[:1].isupper() or word[:1].isdigit() or _ENTITY_LIKE.search(word))
        name_like = name_like and word.lower() not in _CALENDAR  # "June 2025" is a date
        if word and name_like and (not first or _ENTITY_LIKE.search(word)):
            run.append(word)
            if raw.endswith("."):  # "… in Antwerpen. Wer …": the sentence ends the name
                found, run = _close(found, run), []
        else:
            found, run = _close(found, run), []
    return _close(found, run)


_HONORIFIC = re.compile(r"^(frau|herr|herrn|dr|prof|mr|mrs|ms)$", re.IGNORECASE)
_ENTITY_LIKE = re.compile(r"^\w*[a-zäöü][A-Z]|^[A-ZÄÖÜ]{2,}")


def _close(found: list[str], run: list[str]) -> list[str]:
    return found + [" ".join(run)] if len(run) >= 2 else found


def _unseen_phrase(question: Question, passages: list[Passage], lexicon: Lexicon) -> bool:
    """Whether a name of the question (phrases()) is in none of the passages, word for word:
    compared by stem, an acronym's plural as its singular ("AI POs"), a word or the whole name
    also as the glossary's other terms for it ("AI Board" as "KI-Board"). German capitalises
    nouns: there a run of words the documents all use ("seit zwei Monaten Teamleiterin") is a
    name only with a product or acronym in it."""
    names = phrases(question.text)
    if question.language == "de":
        names = [
            n for n in names if any(_ENTITY_LIKE.search(w) or lexicon.unknown(w) for w in n.split())
        ]
    if not names:
        return False
    texts = [f" {' '.join(keys(p.content))} " for p in passages]
    return any(not any(_phrase_pattern(n, lexicon).search(t) for t in texts) for n in names)


def _phrase_pattern(name: str, lexicon: Lexicon) -> re.Pattern[str]:
    """A name's stems in a row, each word or the whole name also as a glossary synonym."""
    singular = [w[:-1] if w.endswith("s") and w[:-1].isupper() else w for w in name.split()]

    def alternatives(term: str) -> str:
        forms = {" ".join(keys(t)) for t in [term, *lexicon.synonyms(term)]} - {""}
        return "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))

    each = " ".join(f"(?:{alternatives(w)})" for w in singular if keys(w))
    whole = alternatives(" ".join(singular))
    return re.compile(rf" (?:{each}|{whole}) ")


def best_units(passages: list[Passage], limit: int = TOP_UNITS) -> list[tuple[str, str]]:
    """The units that matched the question best among the first passages: (text, context line)."""
    scored = []
    for passage in passages[:3]:
        units = split_units(passage.text)
        context = passage.content.split("\n", 1)[0]
        for position, cosine in passage.matched[:3]:
            if position < len(units):
                scored.append((cosine, units[position].text, context))
        if not passage.matched and units:
            scored.append((passage.dense, units[0].text, context))
    scored.sort(key=lambda s: -s[0])
    return [(text, context) for _, text, context in scored[:limit]]


class Answerability:
    """The fitted model applied to a question and the passages found for it."""

    def __init__(self, model: Model) -> None:
        self.model = model

    def judge(self, question: Question, passages: list[Passage], lexicon: Lexicon) -> Verdict:
        return self.model.verdict(features(question, passages, lexicon))
