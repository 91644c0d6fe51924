"""Evaluation on question sets: what the retriever ranks, and what the answer cites and quotes.

Per question set (and language): recall@1/3/5 and MRR of the retriever; of the whole answer (the
pipeline the chat uses), whether a passage that answers is cited, whether the first citation is
one, whether the sentence that answers is among the quoted ones, whether every part of a
multi-part question is cited; refusal recall and precision, false refusals, hedged answers,
greetings answered without citations, and the answer's length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from assistant.answering.answer import Answer, Citation
from assistant.answering.pipeline import Assistant
from assistant.audience import reader_groups
from assistant.search.passage import Passage

KS = (1, 3, 5)
# What `python -m assistant eval` reports by default (files <name>.yaml in settings.eval_dir): the sets
# retrieval weights, thresholds and the answerability model were chosen on, then the held-out one,
# written later from the documents alone and reported only (never used for a decision).
TUNING_SETS = (
    "golden",
    "holdout",
    "test-fresh",
    "test-fresh-2",
    "dev-employee",
    "test-unseen-3",
    "test-unseen-4",
    "test-unseen-5",
    "test-unseen-6",
    "test-unseen-7",
    "test-unseen-8",
    "test-unseen-9",
    "test-unseen-10",
    "test-unseen-11",
    "test-unseen-12",
    "test-unseen-13",
    "test-unseen-14",
    "test-unseen-15",
    "test-unseen-16",
    "test-unseen-17",
    "test-unseen-18",
    "test-unseen-19",
    "test-unseen-20",
    "test-unseen-21",
    "test-unseen-22",
    "test-unseen-23",
)
# test-unseen-6 to -23 were each reported in one round (third to twentieth) and are tuning sets
# since; test-unseen-24 is the twenty-first round's held-out set (reported only, before and after);
# test-unseen-25 is written during the twenty-first round and never run: its first run is the
# next round's "before". Move a set to TUNING_SETS before anything is chosen with it.
HELD_OUT_SETS = ("test-unseen-24", "test-unseen-25")
QUESTION_SETS = TUNING_SETS + HELD_OUT_SETS


@dataclass(frozen=True)
class GoldenItem:
    id: str
    lang: str
    question: str
    answerable: bool
    expected: list[dict]
    groups: list[str] = field(default_factory=list)  # the asker's audience groups
    kind: list[str] = field(default_factory=list)  # question style: typo, multi-part, greeting …

    @property
    def greeting(self) -> bool:
        return "greeting" in self.kind


def normalise_snippet(text: str) -> str:
    """Case, spacing and a table's cell borders do not count: the snippet "NordGPT: Chatverläufe
    30 Tage" matches the row "| NordGPT: Chatverläufe | 30 Tage |"."""
    return re.sub(r"\s+", " ", re.sub(r"\s*\|\s*", " ", text)).strip().lower()


def load_golden(path: Path) -> list[GoldenItem]:
    """Read a question set; every entry needs id, lang, question, answerable (and expected if
    answerable)."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    items = []
    for i, entry in enumerate(raw or []):
        missing = {"id", "lang", "question", "answerable"} - set(entry)
        if missing:
            raise ValueError(f"{path}: entry {i} lacks {', '.join(sorted(missing))}")
        if entry["answerable"] and not entry.get("expected"):
            raise ValueError(f"{path}: answerable entry {entry['id']} has no 'expected' passages")
        items.append(
            GoldenItem(
                entry["id"],
                entry["lang"],
                entry["question"],
                bool(entry["answerable"]),
                list(entry.get("expected") or []),
                list(entry.get("groups") or []),
                list(entry.get("kind") or []),
            )
        )
    return items


def is_relevant(passage: Passage, expected: list[dict]) -> bool:
    """A passage is relevant if it comes from an expected source and contains its snippet."""
    return _contains(passage.source, passage.content, expected)


def _contains(source: str, text: str, expected: list[dict]) -> bool:
    wanted = [e for e in expected if e["source"] == source]
    if not wanted:  # (most passages: then the text is not normalised)
        return False
    text = normalise_snippet(text)
    return any(not e.get("contains") or normalise_snippet(e["contains"]) in text for e in wanted)


def cites(citation: Citation, expected: list[dict]) -> bool:
    """Whether a citation's passage is one that answers."""
    return _contains(citation.source, citation.text, expected)


def quotes(citation: Citation, expected: list[dict]) -> bool:
    """Whether the sentences quoted from a citation include the one that answers."""
    return _contains(citation.source, " ".join(citation.quoted), expected)


def _judge(assistant: Assistant, item: GoldenItem) -> dict:
    """One question through the retriever (ranks) and the whole pipeline (the answer)."""
    groups = reader_groups(item.groups)
    passages = assistant.retriever.retrieve(item.question, k=max(KS), groups=groups)
    answer: Answer = assistant.ask(item.question, groups=groups)
    expected = item.expected if item.answerable else []
    rank = next((i + 1 for i, p in enumerate(passages) if is_relevant(p, expected)), None)
    cited = answer.citations
    parts = sorted({e["part"] for e in expected if e.get("part") is not None})
    parts_cited = [
        part
        for part in parts
        if any(cites(c, [e for e in expected if e.get("part") == part]) for c in cited)
    ]
    return {
        "id": item.id,
        "lang": item.lang,
        "question": item.question,
        "answerable": item.answerable,
        "greeting": item.greeting,
        "answered": answer.answered,
        "confident": answer.confident,
        # the opening before quoted passages (a refusal names them too, and is counted as one)
        "unmentioned": bool(answer.unmentioned) and answer.answered and bool(answer.citations),
        "rank": rank,
        "cited": any(cites(c, expected) for c in cited),
        "lead": bool(cited) and cites(cited[0], expected),
        "key": any(quotes(c, expected) for c in cited),
        "parts": len(parts),
        "parts_cited": len(parts_cited),
        "citations": len(cited),
        "length": len(answer.answer),
        "top_dense": passages[0].dense if passages else 0.0,
        "top_source": passages[0].source if passages else "",
        "first_cited": cited[0].source if cited else "",
    }


def evaluate(assistant: Assistant, items: list[GoldenItem]) -> dict:
    """Every question once through retrieval and the whole answer; the figures per language."""
    rows = [_judge(assistant, item) for item in items]
    results: dict = {"questions": len(rows), "by_language": {}}
    for lang in sorted({r["lang"] for r in rows}):
        answerable = [r for r in rows if r["lang"] == lang and r["answerable"]]
        if not answerable:
            continue
        stats = {
            f"recall@{k}": _mean([r["rank"] is not None and r["rank"] <= k for r in answerable])
            for k in KS
        }
        stats["mrr"] = _mean([1.0 / r["rank"] if r["rank"] else 0.0 for r in answerable])
        stats["answered"] = _mean([r["answered"] for r in answerable])
        stats["cited"] = _mean([r["cited"] for r in answerable])
        stats["lead"] = _mean([r["lead"] for r in answerable])
        stats["key"] = _mean([r["key"] for r in answerable])
        multi = [r for r in answerable if r["parts"] > 1]
        stats["all_parts"] = _mean([r["parts_cited"] == r["parts"] for r in multi])
        stats["multi_part"] = len(multi)
        stats["n"] = len(answerable)
        results["by_language"][lang] = stats
    unanswerable = [r for r in rows if not r["answerable"] and not r["greeting"]]
    answerable = [r for r in rows if r["answerable"]]
    greetings = [r for r in rows if r["greeting"]]
    refused = [r for r in unanswerable + answerable if not r["answered"]]
    results["refusal_accuracy"] = _mean([not r["answered"] for r in unanswerable])
    results["refusal_precision"] = _mean([not r["answerable"] for r in refused])
    results["false_refusals"] = _mean([not r["answered"] for r in answerable])
    # Answered with the "no clear match" notice: honest for an unanswerable question, a
    # needless hedge for an answerable one.
    results["unanswerable_hedged"] = _mean(
        [r["answered"] and not r["confident"] for r in unanswerable]
    )
    results["answerable_hedged"] = _mean([r["answered"] and not r["confident"] for r in answerable])
    # Answered with "the documents do not mention X" (a name of the question none of them uses).
    results["unanswerable_unmentioned"] = _mean([r["unmentioned"] for r in unanswerable])
    results["answerable_unmentioned"] = _mean([r["unmentioned"] for r in answerable])
    results["greetings"] = len(greetings)
    results["greetings_ok"] = _mean([r["citations"] == 0 for r in greetings])
    lengths = [r["length"] for r in answerable if r["answered"]]
    results["answer_chars_median"] = int(np.median(lengths)) if lengths else 0
    results["answer_chars_p90"] = int(np.percentile(lengths, 90)) if lengths else 0
    results["citations_mean"] = _mean([r["citations"] for r in answerable if r["answered"]])
    results["unanswerable"] = len(unanswerable)
    results["misses"] = [
        r
        for r in rows
        if (r["answerable"] and not (r["cited"] and r["lead"] and r["answered"]))
        or (not r["answerable"] and (r["answered"] if not r["greeting"] else r["citations"]))
    ]
    return results


def _mean(values: list) -> float:
    return round(float(np.mean(values)), 3) if values else 0.0


def format_results(results: dict) -> str:
    lines = [
        f"Questions: {results['questions']} ({results['unanswerable']} unanswerable, "
        f"{results['greetings']} greetings)"
        + (f" from {results['golden']}" if results.get("golden") else ""),
        "",
        "Retrieval (top 5) and answer (what is cited and quoted), answerable questions:",
        f"{'lang':<5}{'n':>4}"
        + "".join(f"{'R@' + str(k):>7}" for k in KS)
        + "".join(f"{h:>8}" for h in ("MRR", "answrd", "cited", "lead", "key", "parts")),
    ]
    for lang, s in results["by_language"].items():
        parts = f"{s['all_parts']:>8.3f}" if s["multi_part"] else f"{'-':>8}"
        lines.append(
            f"{lang:<5}{s['n']:>4}"
            + "".join(f"{s[f'recall@{k}']:>7.3f}" for k in KS)
            + "".join(f"{s[h]:>8.3f}" for h in ("mrr", "answered", "cited", "lead", "key"))
            + parts
        )
    lines += [
        "",
        f"Refusal: recall {results['refusal_accuracy']:.3f} (unanswerable refused), precision "
        f"{results['refusal_precision']:.3f}, false refusals {results['false_refusals']:.3f}",
        f"'No clear match' notice: unanswerable {results['unanswerable_hedged']:.3f}, "
        f"answerable {results['answerable_hedged']:.3f}",
        f"'Not mentioned' opening: unanswerable {results['unanswerable_unmentioned']:.3f}, "
        f"answerable {results['answerable_unmentioned']:.3f}",
        f"Greetings without citations: {results['greetings_ok']:.3f} of {results['greetings']}",
        f"Answer length (chars): median {results['answer_chars_median']}, p90 "
        f"{results['answer_chars_p90']}; citations per answer {results['citations_mean']:.2f}",
    ]
    if results["misses"]:
        lines.append("")
        lines.append(
            "Misses (answer not cited or not first, wrongly refused, or wrongly answered):"
        )
        for r in results["misses"]:
            lines.append(
                f"  {r['id']:<12} rank={r['rank']} answered={r['answered']} cited={r['cited']} "
                f"lead={r['lead']} first={r['first_cited'] or '-'}  {r['question']}"
            )
    return "\n".join(lines)
