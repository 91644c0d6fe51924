"""Fit the answerability model (assistant/answering/answerability.json) on the tuning question sets.

    .venv/bin/python scripts/fit_answerability.py [--data-dir DIR] [--write]

Runs every question of the tuning sets through retrieval, computes the features of
assistant/answering/answerability.py, fits an L2-regularised logistic regression (answerable vs. not, both
classes weighted equally) and picks the thresholds from leave-one-set-out predictions, so they
reflect questions the model was not fitted on:

- refuse_below: refuse as many unanswerable questions as possible while refusing at most
  MAX_FALSE_REFUSALS of the answerable ones;
- hedge_below: the widest band above it in which most questions are unanswerable (the "no clear
  match" notice is right more often than not there); none if there is no such band.

The held-out set (HELD_OUT_SETS in assistant/evaluation/harness.py) is never read here. Without --write it only reports.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from assistant.answering.answerability import (  # noqa: E402
    DEFAULT_MODEL,
    FEATURES,
    features,
)
from assistant.answering.pipeline import build_knowledge_base, build_retriever  # noqa: E402
from assistant.answering.question import analyse  # noqa: E402
from assistant.audience import reader_groups  # noqa: E402
from assistant.config import load_settings  # noqa: E402
from assistant.evaluation.harness import TUNING_SETS, load_golden  # noqa: E402

MAX_FALSE_REFUSALS = 0.03
L2 = 0.5


def collect(data_dir: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, labels (1 answerable) and set names of every non-greeting tuning question."""
    settings = load_settings(**({"data_dir": Path(data_dir)} if data_dir else {}))
    # The retriever alone: the assistant would load the model this script is about to replace.
    retriever = build_retriever(settings, build_knowledge_base(settings))
    rows, labels, sets = [], [], []
    for name in TUNING_SETS:
        for item in load_golden(ROOT / "eval" / f"{name}.yaml"):
            if item.greeting:
                continue
            groups = reader_groups(item.groups)
            question = analyse(item.question, retriever.dictionary.language)
            # The ranking the pipeline judges: without the heading lift and the query adapter.
            _, passages = retriever.retrieve_judged(item.question, settings.top_k, groups)
            rows.append(features(question, passages, retriever.lexicon(groups)))
            labels.append(float(item.answerable))
            sets.append(name)
    return np.array(rows, dtype=float), np.array(labels), np.array(sets)


def fit(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Weights (last: bias) of a class-balanced, L2-regularised logistic regression."""
    weight = np.where(y == 0, (y == 1).sum() / max(1, (y == 0).sum()), 1.0)
    design = np.c_[z, np.ones(len(z))]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        p = 1 / (1 + np.exp(-np.clip(design @ w, -30, 30)))
        value = -(weight * (y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12))).sum()
        grad = design.T @ (weight * (p - y))
        value += L2 * w[:-1] @ w[:-1]
        grad[:-1] += 2 * L2 * w[:-1]
        return value, grad

    return minimize(loss, np.zeros(design.shape[1]), jac=True, method="L-BFGS-B").x


def probabilities(z: np.ndarray, w: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-np.clip(np.c_[z, np.ones(len(z))] @ w, -30, 30)))


def thresholds(p: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(refuse_below, hedge_below) from held-out probabilities (see the module docstring)."""
    answerable = np.sort(p[y == 1])
    allowed = int(np.floor(MAX_FALSE_REFUSALS * len(answerable)))
    refuse = float(answerable[allowed]) if allowed < len(answerable) else 1.0
    hedge = refuse
    for t in np.sort(p[p > refuse]):
        band = (p >= refuse) & (p < t)
        if band.sum() >= 5 and (y[band] == 0).mean() > 0.5:
            hedge = float(t)
    return refuse, hedge


def report(p: np.ndarray, y: np.ndarray, sets: np.ndarray, refuse: float, hedge: float) -> None:
    for name in [*TUNING_SETS, "all"]:
        m = np.ones(len(y), bool) if name == "all" else sets == name
        un, an = m & (y == 0), m & (y == 1)
        print(
            f"  {name:<13} unanswerable refused {np.mean(p[un] < refuse):.3f} "
            f"hedged {np.mean((p[un] >= refuse) & (p[un] < hedge)):.3f} | answerable refused "
            f"{np.mean(p[an] < refuse):.3f} hedged {np.mean((p[an] >= refuse) & (p[an] < hedge)):.3f}"
            f"  (n={an.sum()}+{un.sum()})"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="the store to search (default: ASSISTANT_DATA_DIR)")
    parser.add_argument("--write", action="store_true", help=f"write {DEFAULT_MODEL.name}")
    args = parser.parse_args()
    x, y, sets = collect(args.data_dir)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / scale
    held_out = np.zeros(len(y))
    for name in TUNING_SETS:  # leave one set out: probabilities for questions not fitted on
        held_out[sets == name] = probabilities(
            z[sets == name], fit(z[sets != name], y[sets != name])
        )
    refuse, hedge = thresholds(held_out, y)
    print(f"leave-one-set-out, refuse below {refuse:.3f}, hedge below {hedge:.3f}:")
    report(held_out, y, sets, refuse, hedge)
    w = fit(z, y)
    print(
        "weights (standardised):",
        {f: round(float(v), 3) for f, v in zip(FEATURES, w[:-1], strict=True)},
    )
    if args.write:
        model = {
            "features": list(FEATURES),
            "mean": mean.round(6).tolist(),
            "scale": scale.round(6).tolist(),
            "low": x.min(axis=0).round(6).tolist(),
            "high": x.max(axis=0).round(6).tolist(),
            "weights": w[:-1].round(6).tolist(),
            "bias": round(float(w[-1]), 6),
            "refuse_below": round(refuse, 6),
            "hedge_below": round(hedge, 6),
            "fitted_on": list(TUNING_SETS),
            "questions": int(len(y)),
            "max_false_refusals": MAX_FALSE_REFUSALS,
        }
        DEFAULT_MODEL.write_text(json.dumps(model, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {DEFAULT_MODEL.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
