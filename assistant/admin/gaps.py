"""Knowledge gaps (`knowledge_gaps`): the questions the assistant could not answer (audit rows with
answered=0) and the questions whose answer got a thumbs-down, grouped by meaning:

- each question is embedded with the knowledge base's embedding model as a query (e5 "query: ");
- the vectors are centred per language (minus the mean vector of the golden set's questions in
  that language, eval/golden.yaml): e5 gives every German question a large shared component and
  every English one another, so a German question is nearer an unrelated German one than its own
  English translation until that component is removed;
- hierarchical clustering (scipy, average linkage, cosine distance), cut at GAP_DISTANCE.

GAP_DISTANCE was calibrated on eval/gap_paraphrases.yaml (10 gaps asked 5-6 ways each in German
and English, plus 12 unrelated questions; `python benchmarks/calibrate_gaps.py`): at 0.70 pairwise
precision 0.94 and recall 0.87, 11 of the 12 unrelated questions stay alone. Lower cuts split
groups (0.64: recall 0.83), higher ones merge unrelated questions (0.80: precision 0.88, only 3 of
12 alone). Without the centring the best cut (0.11) reached precision 0.97 but recall only 0.56:
German and English versions of a question were never grouped.

Each group names the document most related to it (retrieval for the group's most central
question, over every audience present in the store, so restricted documents count too) and the
document's owner: who should write the missing answer.

CSV (`gaps_csv`): for German Excel, UTF-8 with BOM, `;` as separator, CRLF line ends; cells that
Excel would read as a formula (starting with = + - @) are prefixed with an apostrophe. Columns:
Gruppe (rank), Anzahl (questions in the group), Unbeantwortet, Daumen runter (how many of them of
each kind), Frage (the most central question), Beispiele (up to 3 distinct questions, " | "),
Kommentare (up to 3 thumbs-down comments, " | "), Dokument (source path), Titel,
Verantwortlich (the document's owner), Ähnlichkeit (%) (cosine of question and passage),
Erstmals, Zuletzt (dates); Gefragt von (user ids) only when ASSISTANT_ANALYTICS_SHOW_USERS=true.

Privacy: user ids are read from the database only when `show_users` is on; without it no result
of this module contains one. Question text exists only as long as the retention keeps it
(retention.py).
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.engine import Engine

from assistant.admin.reports import DateRange, as_utc
from assistant.audience import EVERYONE, PREFIX
from assistant.records.audit import audit_table
from assistant.records.feedback import feedback_table
from assistant.search.lexical import Tell, detect_language

GAP_DISTANCE = 0.70
MAX_GAP_QUESTIONS = 5000  # the newest ones, when a range holds more
EXAMPLES = 3

KIND_UNANSWERED = "unanswered"
KIND_THUMBS_DOWN = "thumbs_down"


@dataclass(frozen=True)
class GapQuestion:
    """One question that is a gap: not answered, or answered with a thumbs-down."""

    kind: str  # KIND_UNANSWERED | KIND_THUMBS_DOWN
    question: str
    created_at: datetime
    user_id: str | None = None  # only when user ids may be shown
    comment: str = ""


@dataclass
class GapGroup:
    """Questions that ask for the same missing thing, and whom to ask to fill the gap."""

    count: int
    unanswered: int
    thumbs_down: int
    question: str  # the most central question of the group
    examples: list[str]
    comments: list[str]
    first_seen: date
    last_seen: date
    source: str = ""  # the most related document
    title: str = ""
    owner: str = ""
    relevance: float | None = None  # cosine similarity of the question and that passage
    users: list[str] | None = None  # user ids; None unless they may be shown

    def as_dict(self) -> dict:
        data = asdict(self)
        data["first_seen"] = self.first_seen.isoformat()
        data["last_seen"] = self.last_seen.isoformat()
        if self.users is None:
            data.pop("users")
        return data


def _clean(question: str) -> str:
    return re.sub(r"\s+", " ", question or "").strip()


def gap_questions(
    audit_engine: Engine,
    feedback_engine: Engine,
    rng: DateRange,
    show_users: bool = False,
    limit: int = MAX_GAP_QUESTIONS,
) -> list[GapQuestion]:
    """Unanswered questions and thumbs-down questions in the range, newest first."""
    a = audit_table.c
    columns = [a.created_at, a.question] + ([a.user_id] if show_users else [])
    with audit_engine.connect() as conn:
        unanswered = conn.execute(
            select(*columns)
            .where(a.answered == 0)
            .where(a.created_at >= rng.since)
            .where(a.created_at < rng.until)
            .order_by(a.created_at.desc())
            .limit(limit)
        ).all()
    f = feedback_table.c
    with feedback_engine.connect() as conn:
        disliked = conn.execute(
            select(f.created_at, f.question, f.comment)
            .where(f.rating < 0)
            .where(f.question != "")  # text removed after the retention period
            .where(f.created_at >= rng.since)
            .where(f.created_at < rng.until)
            .order_by(f.created_at.desc())
            .limit(limit)
        ).all()
    items = [
        GapQuestion(
            KIND_UNANSWERED,
            _clean(r.question),
            as_utc(r.created_at),
            r.user_id if show_users else None,
        )
        for r in unanswered
    ] + [
        GapQuestion(
            KIND_THUMBS_DOWN, _clean(r.question), as_utc(r.created_at), None, r.comment or ""
        )
        for r in disliked
    ]
    items = [i for i in items if i.question]
    items.sort(key=lambda i: i.created_at, reverse=True)
    return items[:limit]


def cluster(vectors: np.ndarray, threshold: float = GAP_DISTANCE) -> np.ndarray:
    """Cluster labels (1..k) by average-linkage hierarchical clustering on cosine distance."""
    from scipy.cluster.hierarchy import fcluster, linkage

    if len(vectors) == 0:
        return np.zeros(0, dtype=int)
    if len(vectors) == 1:
        return np.ones(1, dtype=int)
    tree = linkage(np.asarray(vectors, dtype=np.float64), method="average", metric="cosine")
    return fcluster(tree, t=threshold, criterion="distance")


def reference_questions(path: Path) -> list[tuple[str, str]]:
    """(language, question) of the golden set: the reference each language is centred on."""
    if not path.exists():
        return []
    from assistant.evaluation.harness import load_golden

    return [(item.lang, item.question) for item in load_golden(path)]


# Reference means per embedding model object (one per process): id -> (model, means).
_REFERENCE_MEANS: dict[int, tuple[object, dict[str, np.ndarray]]] = {}


class QuestionEmbedder:
    """Query embeddings for clustering, centred per language (see the module docstring)."""

    min_batch_for_own_mean = 5  # a language without reference questions: centre on the batch

    def __init__(
        self,
        embeddings,
        reference: list[tuple[str, str]] | None = None,
        golden: Path | None = None,
        tell: Tell | None = None,
    ) -> None:
        self.embeddings = embeddings
        self._reference = reference
        self._golden = golden
        self.tell = tell  # the language of a question without function words (detect_language)

    def _means(self) -> dict[str, np.ndarray]:
        cached = _REFERENCE_MEANS.get(id(self.embeddings))
        if self._reference is None and cached is not None and cached[0] is self.embeddings:
            return cached[1]
        if self._reference is not None:
            reference = self._reference
        else:
            reference = reference_questions(self._golden) if self._golden else []
        vectors: dict[str, list[list[float]]] = {}
        for lang, question in reference:
            vectors.setdefault(lang, []).append(self.embeddings.embed_query(question))
        means = {lang: np.mean(np.asarray(v), axis=0) for lang, v in vectors.items()}
        if self._reference is None and self._golden is not None:
            _REFERENCE_MEANS[id(self.embeddings)] = (self.embeddings, means)
        return means

    def __call__(self, questions: list[str]) -> np.ndarray:
        if not questions:
            return np.zeros((0, 0))
        vectors = np.asarray([self.embeddings.embed_query(q) for q in questions], dtype=np.float64)
        langs = np.asarray([detect_language(q, self.tell) for q in questions])
        means = self._means()
        for lang in set(langs):
            rows = langs == lang
            if lang in means and means[lang].shape[0] == vectors.shape[1]:
                vectors[rows] -= means[lang]
            elif rows.sum() >= self.min_batch_for_own_mean:
                vectors[rows] -= vectors[rows].mean(axis=0)
        return vectors


# The least cosine a gap group's question needs to its nearest passage for that document to be
# named: unrelated questions ("Was gibt es heute in der Kantine?", "VPN-Passwort") reach about
# 0.80-0.83 on the shipped corpus, related unanswered ones (a bonus for AI ideas, a licence price)
# 0.85 and more.
RELATED_FLOOR = 0.84


@dataclass(frozen=True)
class Related:
    source: str
    title: str
    owner: str
    relevance: float


def knowledge_gaps(
    items: list[GapQuestion],
    embed: Callable[[list[str]], np.ndarray],
    related: Callable[[str], Related | None] | None = None,
    threshold: float = GAP_DISTANCE,
    show_users: bool = False,
) -> list[GapGroup]:
    """Group gap questions by meaning; largest groups first (then the most recent)."""
    if not items:
        return []
    texts = sorted({i.question for i in items})
    vectors = embed(texts)
    labels = cluster(vectors, threshold)
    label_of = dict(zip(texts, labels, strict=True))
    index_of = {t: n for n, t in enumerate(texts)}
    normed = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    groups: list[GapGroup] = []
    for label in sorted(set(labels)):
        members = [i for i in items if label_of[i.question] == label]
        distinct = [t for t in texts if label_of[t] == label]
        rows = normed[[index_of[t] for t in distinct]]
        centrality = (rows @ rows.T).sum(axis=1)
        central = distinct[int(np.argmax(centrality))]
        frequency = Counter(i.question for i in members)
        latest: dict = {}
        for i in members:
            latest[i.question] = max(latest.get(i.question, i.created_at), i.created_at)
        others = sorted(
            (t for t in distinct if t != central),
            key=lambda t: (-frequency[t], -latest[t].timestamp()),
        )
        comments = [i.comment.strip() for i in members if i.comment and i.comment.strip()]
        group = GapGroup(
            count=len(members),
            unanswered=sum(i.kind == KIND_UNANSWERED for i in members),
            thumbs_down=sum(i.kind == KIND_THUMBS_DOWN for i in members),
            question=central,
            examples=[central, *others][:EXAMPLES],
            comments=list(dict.fromkeys(comments))[:EXAMPLES],
            first_seen=min(i.created_at for i in members).date(),
            last_seen=max(i.created_at for i in members).date(),
            users=sorted({i.user_id for i in members if i.user_id}) if show_users else None,
        )
        groups.append(group)
    groups.sort(key=lambda g: (-g.count, -g.last_seen.toordinal(), g.question))
    if related is not None:
        for group in groups:
            found = related(group.question)
            if found is not None:
                # Below the floor the nearest document is unrelated (a canteen question near
                # the AI policy): no document and no owner is named as the place to fix it.
                if found.relevance >= RELATED_FLOOR:
                    group.source, group.title, group.owner = found.source, found.title, found.owner
                group.relevance = round(float(found.relevance), 3)
    return groups


def store_catalog(kb) -> tuple[frozenset[str], dict[str, dict]]:
    """Every audience group present in the store, and per source its title and owner."""
    groups = {EVERYONE}
    documents: dict[str, dict] = {}
    for meta in kb.metadatas():
        groups.update(k[len(PREFIX) :] for k, v in meta.items() if k.startswith(PREFIX) and v)
        source = meta.get("source")
        if source and source not in documents:
            documents[source] = {"title": meta.get("title", ""), "owner": meta.get("owner", "")}
    return frozenset(groups), documents


def related_finder(retriever, groups: frozenset[str]) -> Callable[[str], Related | None]:
    """The most related passage's document for a question, searched with every audience."""

    def find(question: str) -> Related | None:
        passages = retriever.retrieve(question, k=1, groups=groups)
        if not passages:
            return None
        best = passages[0]
        return Related(best.source, best.title, str(best.metadata.get("owner", "")), best.dense)

    return find


def calibration_set(path: Path) -> tuple[list[str], list[str]]:
    """(questions, true group of each) from the calibration file: topics, then singles."""
    import yaml

    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    texts, truth = [], []
    for topic, questions in raw["topics"].items():
        texts += questions
        truth += [topic] * len(questions)
    for n, question in enumerate(raw["singles"]):
        texts.append(question)
        truth.append(f"single-{n}")
    return texts, truth


def pairwise_scores(labels, truth: list[str]) -> dict:
    """Pairwise precision/recall of a clustering against the true groups, and how many of the
    `single-` questions stay alone."""
    labels = np.asarray(labels)
    tp = fp = fn = 0
    for i, j in itertools.combinations(range(len(truth)), 2):
        same, grouped = truth[i] == truth[j], labels[i] == labels[j]
        tp += same and grouped
        fp += grouped and not same
        fn += same and not grouped
    singles = [i for i, t in enumerate(truth) if t.startswith("single-")]
    return {
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / max(tp + fn, 1),
        "alone": sum(int((labels == labels[i]).sum() == 1) for i in singles),
        "singles": len(singles),
    }


# --- CSV ----------------------------------------------------------------------------------------

CSV_COLUMNS = [
    "Gruppe",
    "Anzahl",
    "Unbeantwortet",
    "Daumen runter",
    "Frage",
    "Beispiele",
    "Kommentare",
    "Dokument",
    "Titel",
    "Verantwortlich",
    "Ähnlichkeit (%)",
    "Erstmals",
    "Zuletzt",
]
USERS_COLUMN = "Gefragt von"


def _cell(value: object) -> object:
    """No spreadsheet formulas from user-typed text (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def gaps_csv(groups: list[GapGroup], show_users: bool = False) -> bytes:
    """The gap groups as CSV bytes for Excel (see the module docstring for the format)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS + ([USERS_COLUMN] if show_users else []))
    for rank, g in enumerate(groups, start=1):
        row = [
            rank,
            g.count,
            g.unanswered,
            g.thumbs_down,
            g.question,
            " | ".join(g.examples),
            " | ".join(g.comments),
            g.source,
            g.title,
            g.owner,
            "" if g.relevance is None else round(g.relevance * 100),
            g.first_seen.isoformat(),
            g.last_seen.isoformat(),
        ]
        if show_users:
            row.append(", ".join(g.users or []))
        writer.writerow([_cell(v) for v in row])
    return out.getvalue().encode("utf-8-sig")


# --- the runtime's analytics --------------------------------------------------------------------
