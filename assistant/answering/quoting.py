"""Which units of a passage an answer quotes (answer.py lays them out).

The units the question matched best by their vectors (word overlap breaks ties), not the
passage's first ones; a short list whole when the question asks for one, the sentence that
introduces a quoted list, a table row with its table's header row; and how many items of a
quoted list were left out, so the answer can say so.
"""

from __future__ import annotations

import re

from assistant.answering.question import Question
from assistant.ingest.units import Unit
from assistant.search.lexical import stems
from assistant.search.passage import Passage

# A question that asks for a list wants the whole (short) list: "welche" and "what are", not
# the singular "welches Training" or "what do I do if …".
LIST_QUESTION = re.compile(
    r"\b(welche|was (muss|müssen|sind|gehört|zählt)|aufgaben|kriterien|voraussetzung\w*|"
    r"anforderung\w*|schritte|phasen|which|what (are|must)|tasks|criteria|requirements|"
    r"steps|phases|list)\b",
    re.IGNORECASE,
)
MAX_LIST = 8  # items of a list quoted whole
NEAR_TIE = 0.02  # cosine: units this close to the best-matching one are quoted with it
NEXT_BEST = 0.03  # cosine: a unit up to the `least`th is quoted this far behind the best one
# A sentence that opens with one of these refers back to the one before it ("Er hat dort kein
# Stimmrecht …", "This applies …"): the two are quoted together (see pick_units).
REFERS_BACK = re.compile(
    r"^(er|es|dort|dabei|dafür|dazu|damit|daher|deshalb|deswegen|dies|diese[rsm]?|aber|doch|"
    r"jedoch|allerdings|zudem|außerdem|ebenso|auch|denn|stattdessen|dagegen|hierfür|hier|darüber|"
    r"danach|dann|he|she|it|they|this|these|that|those|there|but|however|also|instead|then|"
    r"das(?=\s+(?-i:[a-zäöü])))\b",  # "Das führt …", not the article of "Das KI-Board …"
    re.IGNORECASE,
)
# Adverbs that tie a sentence to the one before it wherever they stand ("Eine Vorlage für eine
# Stellenanzeige dürfen Sie sich dagegen mit KI entwerfen lassen." answers only next to the rule
# it is an exception to, and that rule alone would say the opposite).
CONTINUES = re.compile(
    r"\b(dagegen|hingegen|jedoch|dennoch|trotzdem|stattdessen|ebenfalls|however|instead|"
    r"nevertheless|nonetheless|likewise)\b",
    re.IGNORECASE,
)
# A sentence that ends with its conjunction ("Melden Sie den Vorfall …, wenn", "… if") has its
# condition in the list that follows, as one ending with a colon announces its list.
_ANNOUNCES = re.compile(
    r"(:|\b(wenn|falls|sofern|soweit|dass|ob|sobald|if|when|whenever|whether|unless|that|where))$",
    re.IGNORECASE,
)
# A question that asks for a list or for the cases in which something applies.
_ASKS_CONDITIONS = re.compile(
    rf"{LIST_QUESTION.pattern}|\b(wann|wenn|in welchen fällen|when|in which cases|what if|if)\b",
    re.IGNORECASE,
)


def announces(unit: Unit) -> bool:
    """Whether a unit ends where the list after it begins ("nach vier Kriterien:", "…, wenn")."""
    return not unit.listed and bool(_ANNOUNCES.search(unit.text.rstrip()))


def pick_units(
    units: list[Unit],
    passage: Passage,
    q: Question,
    question_stems: set[str],
    limit: int,
    skip: frozenset[int] = frozenset(),
    least: int = 1,
    whole_lists: bool = True,
) -> list[Unit]:
    """The units that answer, in reading order: those the question matched best (by their
    vectors; word overlap breaks ties), the first `least` of them when close enough, a short
    list whole when the question asks for one (if `whole_lists`: the lead's; in a later passage
    a whole list was padding), the list a quoted sentence announces, the sentence that
    introduces a quoted list, and a sentence that refers back (REFERS_BACK) with the one it
    refers to; never those at the positions `skip`.

    The best-matching unit often only restates what the question names ("Datenschutzbeauftragte:
    Anke Reimers" for "Who covers for Anke Reimers?") and the next one answers ("Vertretung:
    Malte Sievers"), so the lead passage quotes its second-best unit too when it is within
    NEXT_BEST of the best, although beyond the near-tie margin (tuning sets, questions whose lead
    passage answers and has more than four units: its answering unit among the quoted for 94.9
    instead of 94.2 % of German and 95.7 instead of 95.3 % of English ones, 0.2 units more)."""
    candidates = [i for i in range(len(units)) if i not in skip]
    if len(candidates) <= limit:
        return [units[i] for i in candidates if not units[i].furniture]
    chosen = _best(units, passage, question_stems, candidates, limit, least)
    chosen = _with_context(units, chosen, q, limit, skip, whole_lists)
    return [units[i] for i in sorted(chosen) if not units[i].furniture and i not in skip]


def _best(
    units: list[Unit],
    passage: Passage,
    question_stems: set[str],
    candidates: list[int],
    limit: int,
    least: int,
) -> set[int]:
    """The positions of the (at most `limit`) units the question matched best."""
    allowed = set(candidates)
    matched = {pos: cos for pos, cos in passage.matched if pos in allowed}
    overlap = [len(question_stems & set(stems(u.text))) for u in units]
    if matched:
        best = max(matched.values())
        ranked = sorted(matched, key=lambda i: (-matched[i], -overlap[i], i))
        near = [i for i in ranked if matched[i] >= best - NEAR_TIE]
        if len(near) < least:
            near = [i for i in ranked[:least] if matched[i] >= best - NEXT_BEST]
        ranked = near
    elif any(overlap[i] for i in candidates):
        ranked = sorted(candidates, key=lambda i: (-overlap[i], i))
    else:
        ranked = candidates
    return set(ranked[:limit])


def _with_context(
    units: list[Unit],
    chosen: set[int],
    q: Question,
    limit: int,
    skip: frozenset[int],
    whole_lists: bool,
) -> set[int]:
    """The chosen positions with what they are read with: lists, their introductions, the
    sentences they refer back to, a table's header row."""
    chosen = set(chosen)
    asks_conditions = bool(_ASKS_CONDITIONS.search(q.text))
    for i in sorted(chosen):  # a sentence that announces a list ("nach vier Kriterien:") is
        # quoted with its list: whole when short, else its first items (the rest is counted).
        # One that ends with its conjunction ("… CET) if") brings its conditions only when the
        # question asks for them; else the answer counts them (omitted_items).
        brings = units[i].text.endswith(":") or asks_conditions
        if brings and announces(units[i]) and i + 1 < len(units) and units[i + 1].listed:
            members = _members(units, units[i + 1].block)
            chosen.update(members if len(members) <= MAX_LIST else members[:limit])
    if whole_lists and LIST_QUESTION.search(q.text):
        for block in {units[i].block for i in chosen if units[i].listed}:
            members = _members(units, block)
            if len(members) <= MAX_LIST:
                chosen.update(members)
    for i in sorted(chosen):  # a sentence is read with one that refers back to it, and the
        # reverse: "Er hat dort kein Stimmrecht" answers "Does the AI PO get a vote in the
        # KI-Board?", but only the sentence before it names the board and the AI PO.
        for j in (i, i + 1):
            if _refers_back(units, j, skip):
                chosen.update((j - 1, j))
        opens_list = i > 0 and units[i].listed and units[i - 1].block != units[i].block
        if opens_list and announces(units[i - 1]):
            chosen.add(i - 1)
        if units[i].kind == "row":  # a table row is read with its table's header row
            chosen.add(next(j for j, u in enumerate(units) if u.block == units[i].block))
    # A sentence between two quoted ones of its paragraph is quoted too: the reader gets the
    # paragraph's thread, not a hole where "Erreicht Sie ein solches Anliegen, …" stood.
    for i in range(1, len(units) - 1):
        if (
            i not in chosen
            and i not in skip
            and {i - 1, i + 1} <= chosen
            and units[i - 1].kind == units[i].kind == units[i + 1].kind == "sentence"
            and units[i - 1].block == units[i].block == units[i + 1].block
        ):
            chosen.add(i)
    return chosen


def _refers_back(units: list[Unit], i: int, skip: frozenset[int]) -> bool:
    """Whether unit i is a sentence that continues the sentence before it in the same paragraph:
    it opens with a back-reference (REFERS_BACK) or holds an adverb that ties it (CONTINUES)."""
    if not 0 < i < len(units) or i in skip or i - 1 in skip:
        return False
    this, before = units[i], units[i - 1]
    return (
        this.kind == before.kind == "sentence"
        and this.block == before.block
        and bool(REFERS_BACK.match(this.text) or CONTINUES.search(this.text))
    )


def _members(units: list[Unit], block: int) -> list[int]:
    """The positions of a block's units (a list's items, a table's rows)."""
    return [i for i, u in enumerate(units) if u.block == block]


def omitted_items(units: list[Unit], picked: list[Unit]) -> int:
    """How many items of the lists the answer quotes from it, or announces, left out."""
    shown = {id(u) for u in picked}
    blocks = {u.block for u in picked if u.listed}
    blocks |= {  # a quoted sentence announces the list after it
        units[i + 1].block
        for i, u in enumerate(units[:-1])
        if id(u) in shown and announces(u) and units[i + 1].listed
    }
    return sum(1 for u in units if u.block in blocks and u.listed and id(u) not in shown)
