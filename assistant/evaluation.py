"""Golden-set evaluation: recall@1/3/5 and MRR per language, refusal accuracy, threshold calibration."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from assistant.audience import reader_groups
from assistant.pipeline import Assistant
from assistant.retrieval import Passage

KS = (1, 3, 5)
# What `python -m assistant eval` reports by default (paths from the repository root): the golden
# set the retrieval was tuned on, then the held-out sets written later from the documents alone.
QUESTION_SETS = tuple(
    f"eval/{name}.yaml" for name in ("golden", "holdout", "test-fresh", "test-fresh-2")
)


@dataclass(frozen=True)
class GoldenItem:
    id: str
    lang: str
    question: str
    answerable: bool
    expected: list[dict]
    groups: list[str] = field(default_factory=list)  # the asker's audience groups


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def load_golden(path: Path) -> list[GoldenItem]:
    """Read the golden set; every entry needs id, lang, question, answerable (and expected if answerable)."""
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
            )
        )
    return items


def is_relevant(passage: Passage, expected: list[dict]) -> bool:
    """A passage is relevant if it comes from an expected source and contains its snippet."""
    content = _norm(passage.content)
    return any(
        passage.source == e["source"] and (not e.get("contains") or _norm(e["contains"]) in content)
        for e in expected
    )


def evaluate(assistant: Assistant, items: list[GoldenItem]) -> dict:
    """Run every golden question once through retrieval and the answerer."""
    rows = []
    for item in items:
        passages = assistant.retriever.retrieve(
            item.question, k=max(KS), groups=reader_groups(item.groups)
        )
        top = passages[: assistant.settings.top_k]
        answer = assistant.answerer.answer(item.question, top)
        confident = answer.answered and assistant.answerer.is_confident(top, answer.language)
        rank = next(
            (
                i + 1
                for i, p in enumerate(passages)
                if item.answerable and is_relevant(p, item.expected)
            ),
            None,
        )
        rows.append(
            {
                "id": item.id,
                "lang": item.lang,
                "question": item.question,
                "answerable": item.answerable,
                "answered": answer.answered,
                "confident": confident,
                "rank": rank,
                "top_dense": passages[0].dense if passages else 0.0,
                "candidates": [
                    (p.dense, p.metadata.get("language", "de") == answer.language)
                    for p in passages[: assistant.settings.top_k]
                ],
                "top_source": passages[0].source if passages else "",
            }
        )
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
        stats["n"] = len(answerable)
        results["by_language"][lang] = stats
    unanswerable = [r for r in rows if not r["answerable"]]
    answerable = [r for r in rows if r["answerable"]]
    results["refusal_accuracy"] = _mean([not r["answered"] for r in unanswerable])
    results["false_refusals"] = _mean([not r["answered"] for r in answerable])
    # Answered with the "no clear match" notice: honest for an unanswerable question, a
    # needless hedge for an answerable one.
    results["unanswerable_hedged"] = _mean(
        [r["answered"] and not r["confident"] for r in unanswerable]
    )
    results["answerable_hedged"] = _mean([r["answered"] and not r["confident"] for r in answerable])
    results["unanswerable"] = len(unanswerable)
    results["calibration"] = _calibrate(rows)
    results["misses"] = [
        r
        for r in rows
        if (r["answerable"] and (r["rank"] is None or r["rank"] > 3 or not r["answered"]))
        or (not r["answerable"] and r["answered"])
    ]
    return results


def _mean(values: list) -> float:
    return round(float(np.mean(values)), 3) if values else 0.0


def _calibrate(rows: list[dict], max_false_refusals: float = 0.05) -> dict:
    """Thresholds (same language, cross-lingual) that refuse the most unanswerable questions
    while refusing at most `max_false_refusals` of the answerable ones."""
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    if not answerable or not unanswerable:
        return {}

    def answers(row: dict, same: float, cross: float) -> bool:
        return any(d >= (same if is_same else cross) for d, is_same in row["candidates"])

    grid = np.round(np.arange(0.78, 0.95, 0.005), 3)
    best = None
    for same in grid:
        for cross in grid:
            false_refusals = _mean([not answers(r, same, cross) for r in answerable])
            refused = _mean([not answers(r, same, cross) for r in unanswerable])
            if false_refusals <= max_false_refusals:
                key = (refused, -false_refusals, -abs(same - cross))
                if best is None or key > best[0]:
                    best = (key, same, cross, false_refusals, refused)
    if best is None:
        return {}
    return {
        "min_relevance": float(best[1]),
        "min_relevance_cross_lingual": float(best[2]),
        "false_refusals": best[3],
        "refusal_accuracy": best[4],
        "max_false_refusals": max_false_refusals,
    }


def format_results(results: dict) -> str:
    lines = [
        f"Golden questions: {results['questions']} ({results['unanswerable']} unanswerable)"
        + (f" from {results['golden']}" if results.get("golden") else ""),
        "",
    ]
    lines.append(
        f"{'lang':<6}{'n':>4}  "
        + "  ".join(f"{'R@' + str(k):>6}" for k in KS)
        + f"  {'MRR':>6}  {'answered':>8}"
    )
    for lang, s in results["by_language"].items():
        lines.append(
            f"{lang:<6}{s['n']:>4}  "
            + "  ".join(f"{s[f'recall@{k}']:>6.3f}" for k in KS)
            + f"  {s['mrr']:>6.3f}  {s['answered']:>8.3f}"
        )
    lines.append("")
    lines.append(f"Refusal accuracy (unanswerable refused): {results['refusal_accuracy']:.3f}")
    lines.append(f"False refusals (answerable refused):    {results['false_refusals']:.3f}")
    lines.append(
        f"Answered with the 'no clear match' notice: unanswerable {results['unanswerable_hedged']:.3f}, "
        f"answerable {results['answerable_hedged']:.3f}"
    )
    if results["calibration"]:
        c = results["calibration"]
        lines.append(
            f"Calibration (at most {c['max_false_refusals']:.0%} false refusals): "
            f"ASSISTANT_MIN_RELEVANCE={c['min_relevance']} "
            f"ASSISTANT_MIN_RELEVANCE_CROSS_LINGUAL={c['min_relevance_cross_lingual']} "
            f"-> refusal accuracy {c['refusal_accuracy']:.3f}, false refusals {c['false_refusals']:.3f}"
        )
    if results["misses"]:
        lines.append("")
        lines.append("Misses (not in top 3, wrongly refused, or wrongly answered):")
        for r in results["misses"]:
            lines.append(
                f"  {r['id']:<10} rank={r['rank']} answered={r['answered']} "
                f"top={r['top_dense']:.3f} {r['top_source']}  {r['question']}"
            )
    return "\n".join(lines)
