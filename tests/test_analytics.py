"""Admin analytics as units: exact aggregations over seeded rows, the latency column migration,
knowledge-gap clustering, CSV export, privacy, retention, and the regression set (promote + eval).

Store-backed tests run on SQLite and on the session's real PostgreSQL server."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
import yaml
from conftest import ROOT, make_settings
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, insert, inspect

from assistant.admin.gaps import (
    CSV_COLUMNS,
    GAP_DISTANCE,
    USERS_COLUMN,
    GapQuestion,
    QuestionEmbedder,
    calibration_set,
    cluster,
    gap_questions,
    gaps_csv,
    knowledge_gaps,
    pairwise_scores,
    related_finder,
    store_catalog,
)
from assistant.admin.reports import RangeError, build_report, date_range
from assistant.admin.unmentioned import unmentioned_names
from assistant.answering.answer import Answer
from assistant.answering.pipeline import build_assistant
from assistant.identity import Identity
from assistant.ingest.corpus import ingest_corpus
from assistant.records.audit import AuditLog, audit_table
from assistant.records.feedback import FeedbackStore, feedback_table
from assistant.records.regression import PromoteError, RegressionSet, load_promoted
from assistant.records.retention import RetentionJob, purge_feedback_text
from assistant.store.database import make_engine
from assistant.store.knowledge_base import KnowledgeBase

DAY1, DAY2, DAY3 = date(2025, 3, 10), date(2025, 3, 11), date(2025, 3, 12)

GOLDEN = ROOT / "eval" / "golden.yaml"
PARAPHRASES = ROOT / "eval" / "gap_paraphrases.yaml"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """A fresh app database: a SQLite file, or a new database on the session's PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'app.sqlite'}"
    return request.getfixturevalue("postgres").create_database()


@pytest.fixture
def stores(db_url):
    return AuditLog(db_url, retention_days=30), FeedbackStore(db_url)


def at(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def seed_audit(
    audit: AuditLog,
    when,
    question="Frage?",
    answered=True,
    sources=(),
    latency=None,
    user="u1",
    unmentioned=None,
):
    with audit.engine.begin() as conn:
        conn.execute(
            insert(audit_table).values(
                created_at=when,
                user_id=user,
                via="token",
                groups="all",
                channel="chat",
                question=question,
                answered=int(answered),
                mode="extractive",
                sources=json.dumps(list(sources)),
                latency_ms=latency,
                unmentioned=unmentioned,
            )
        )


def seed_feedback(
    feedback: FeedbackStore,
    when,
    rating,
    question="Frage?",
    answered=True,
    comment="",
    citations=(),
):
    with feedback.engine.begin() as conn:
        return conn.execute(
            insert(feedback_table).values(
                created_at=when,
                question=question,
                answer="Antwort [1].",
                citations=json.dumps(list(citations), ensure_ascii=False),
                answered=int(answered),
                mode="extractive",
                rating=rating,
                comment=comment,
            )
        ).inserted_primary_key[0]


# --- date ranges --------------------------------------------------------------------------------


def test_date_range_defaults_and_errors():
    rng = date_range(today=date(2025, 3, 31))
    assert (rng.start, rng.end) == (date(2025, 3, 2), date(2025, 3, 31))
    assert len(rng.days) == 30
    assert date_range("2025-03-10", "2025-03-10").days == [date(2025, 3, 10)]
    assert date_range("2025-03-10 00:00:00", "2025-03-12").end == date(2025, 3, 12)
    stamp = datetime(2025, 3, 11, 8, tzinfo=UTC).timestamp()
    assert date_range(stamp, stamp).start == date(2025, 3, 11)
    assert date_range("2025-03-10", "2025-03-12").until == at(date(2025, 3, 13), 0)
    with pytest.raises(RangeError, match="not a date"):
        date_range("10.03.2025", "2025-03-12")
    with pytest.raises(RangeError, match="not a date"):
        date_range("2025-02-30", "2025-03-12")
    with pytest.raises(RangeError, match="before start"):
        date_range("2025-03-12", "2025-03-10")
    with pytest.raises(RangeError, match="longer than"):
        date_range("2000-01-01", "2025-01-01")


# --- usage report -------------------------------------------------------------------------------


def test_report_exact_numbers_per_day(stores):
    audit, feedback = stores
    seed_audit(audit, at(DAY1, 0, 0), answered=True, sources=["a.md", "b.md"], latency=100)
    seed_audit(audit, at(DAY1, 9), answered=True, sources=["a.md"], latency=300)
    seed_audit(audit, at(DAY1, 23, 59), answered=False, latency=200)
    seed_audit(audit, at(DAY3, 8), answered=True, sources=["b.md", "c.md"], latency=1000)
    seed_audit(audit, at(DAY3, 9), answered=True, sources=["a.md"], latency=None)  # older row
    seed_audit(audit, at(DAY3 + timedelta(days=1), 0, 0), answered=False, latency=5)  # after
    seed_audit(audit, at(DAY1, 0) - timedelta(seconds=1), answered=False, latency=5)  # before
    seed_feedback(feedback, at(DAY1, 10), 1)
    seed_feedback(feedback, at(DAY1, 11), -1)
    seed_feedback(feedback, at(DAY3, 10), -1)
    seed_feedback(feedback, at(DAY3, 11), -1)
    seed_feedback(feedback, at(DAY3 + timedelta(days=2)), 1)  # after the range

    report = build_report(
        audit.engine, feedback.engine, date_range(DAY1, DAY3), titles={"a.md": "Dokument A"}
    )
    rows = report.as_dict()["daily"]
    assert rows == [
        {
            "date": "2025-03-10",
            "questions": 3,
            "answered": 2,
            "unanswered": 1,
            "answered_share": 0.667,
            "thumbs_up": 1,
            "thumbs_down": 1,
            "median_latency_ms": 200.0,
        },
        {
            "date": "2025-03-11",
            "questions": 0,
            "answered": 0,
            "unanswered": 0,
            "answered_share": None,
            "thumbs_up": 0,
            "thumbs_down": 0,
            "median_latency_ms": None,
        },
        {
            "date": "2025-03-12",
            "questions": 2,
            "answered": 2,
            "unanswered": 0,
            "answered_share": 1.0,
            "thumbs_up": 0,
            "thumbs_down": 2,
            "median_latency_ms": 1000.0,
        },
    ]
    assert report.summary == {
        "days": 3,
        "questions": 5,
        "answered": 4,
        "unanswered": 1,
        "answered_share": 0.8,
        "thumbs_up": 1,
        "thumbs_down": 3,
        "median_latency_ms": 250.0,  # of 100, 300, 200, 1000 (the NULL row left out)
    }
    assert report.as_dict()["top_documents"] == [
        {"source": "a.md", "title": "Dokument A", "answers": 3},
        {"source": "b.md", "title": "", "answers": 2},
        {"source": "c.md", "title": "", "answers": 1},
    ]
    json.dumps(report.as_dict())  # JSON-ready as it is

    empty = build_report(audit.engine, feedback.engine, date_range("2024-01-01", "2024-01-02"))
    assert empty.summary["questions"] == 0 and empty.summary["answered_share"] is None
    assert empty.summary["median_latency_ms"] is None and empty.top_documents.empty


def test_latency_column_added_to_an_existing_audit_table(db_url):
    # The audit_log table as the first release made it, with a row in it.
    old = MetaData()
    Table(
        "audit_log",
        old,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("created_at", DateTime(timezone=True), nullable=False, index=True),
        Column("user_id", String(200), nullable=False),
        Column("via", String(16), nullable=False),
        Column("groups", String(500), nullable=False),
        Column("channel", String(16), nullable=False),
        Column("question", Text, nullable=False),
        Column("answered", Integer, nullable=False),
        Column("mode", String(32), nullable=False),
        Column("sources", Text, nullable=False),
    )
    engine = make_engine(db_url)
    old.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            old.tables["audit_log"]
            .insert()
            .values(
                created_at=datetime.now(UTC),
                user_id="u0",
                via="token",
                groups="all",
                channel="api",
                question="alt?",
                answered=1,
                mode="extractive",
                sources="[]",
            )
        )
    assert "latency_ms" not in {c["name"] for c in inspect(engine).get_columns("audit_log")}

    log = AuditLog(db_url, retention_days=30)
    AuditLog(db_url, retention_days=30)  # a second start changes nothing
    columns = {c["name"] for c in inspect(engine).get_columns("audit_log")}
    assert {"latency_ms", "unmentioned"} <= columns
    answer = Answer("neu mit Tabnine?", True, "A", [], "de", unmentioned=["Tabnine"])
    log.record(Identity("u1", frozenset({"all"}), "token"), answer, "api", 412)
    assert [(r["question"], r["latency_ms"], r["unmentioned"]) for r in log.rows()] == [
        ("alt?", None, []),
        ("neu mit Tabnine?", 412, ["Tabnine"]),
    ]


def test_names_no_document_mentions_counted_per_name(stores):
    """Each name once per question, spellings differing only in case or spacing as one (shown
    as asked most often), refused ones counted, the range kept, a damaged row ignored."""
    audit, _ = stores
    who = Identity("u-1", frozenset({"all"}), "token")
    for question, answered, names in [
        ("Can we switch to Tabnine?", True, ["Tabnine"]),
        ("Ist Tabnine erlaubt?", False, ["Tabnine"]),
        ("Tabnine oder TABNINE?", True, ["Tabnine", "TABNINE"]),  # one name, one question
        ("Wer ist KI-Lotse in Antwerpen?", True, ["Standort  Antwerpen"]),
        ("Was steht in der KI-Richtlinie?", True, []),  # no name: no row to count
    ]:
        audit.record(who, Answer(question, answered, "A", [], "de", unmentioned=names), "chat")
    earlier = datetime.now(UTC).date() - timedelta(days=40)
    seed_audit(audit, at(earlier), "Kaputt?", unmentioned="{not json")
    seed_audit(audit, at(earlier), "Alt mit Tabnine?", unmentioned=json.dumps(["Tabnine"]))
    names = unmentioned_names(audit.engine, date_range(None, None))  # the last 30 days
    assert [(n.name, n.count, n.refused) for n in names] == [
        ("Tabnine", 3, 1),
        ("Standort  Antwerpen", 1, 0),
    ]
    assert names[0].examples == [
        "Tabnine oder TABNINE?",
        "Ist Tabnine erlaubt?",
        "Can we switch to Tabnine?",
    ]
    assert names[0].as_dict()["last_seen"] == datetime.now(UTC).date().isoformat()
    everything = date_range(earlier.isoformat(), None)
    assert [n.count for n in unmentioned_names(audit.engine, everything)] == [4, 1]


# --- knowledge gaps -----------------------------------------------------------------------------


def test_a_short_english_question_is_centred_on_the_english_questions(shared_embeddings):
    """Questions are centred per language before clustering; "office hours english?" has no
    function word, so its language comes from the dictionary (`tell`), not the German default."""
    reference = [
        ("de", "Wer ist die Chief AI Officer?"),
        ("de", "Wie lange dauert die Pflichtschulung?"),
        ("en", "Who is the Chief AI Officer?"),
        ("en", "How long does the mandatory training take?"),
    ]
    question = "office hours english?"
    raw = np.asarray(shared_embeddings.embed_query(question), dtype=np.float64)
    english = np.mean(
        [shared_embeddings.embed_query(q) for lang, q in reference if lang == "en"], 0
    )
    german = np.mean([shared_embeddings.embed_query(q) for lang, q in reference if lang == "de"], 0)

    def centred(tell) -> np.ndarray:
        return QuestionEmbedder(shared_embeddings, reference=reference, tell=tell)([question])[0]

    assert np.allclose(centred(None), raw - german)
    assert np.allclose(centred(lambda tokens: "en"), raw - english)


def test_clustering_groups_paraphrases_across_languages_and_keeps_unrelated_apart(
    shared_embeddings,
):
    texts, truth = calibration_set(PARAPHRASES)
    raw = yaml.safe_load(PARAPHRASES.read_text(encoding="utf-8"))
    labels = cluster(QuestionEmbedder(shared_embeddings, golden=GOLDEN)(texts), GAP_DISTANCE)
    score = pairwise_scores(labels, truth)
    assert score["precision"] >= 0.9 and score["recall"] >= 0.85, score
    assert score["alone"] >= score["singles"] - 1, score
    label = dict(zip(texts, labels, strict=True))
    # German and English versions of one gap end up together ...
    for topic in ("copilot-license", "ai-hackathon", "meeting-transcription", "deepl-translation"):
        assert len({label[q] for q in raw["topics"][topic]}) == 1, topic
    # ... and unrelated questions stay alone, even next to similar vocabulary.
    for alone in ("Can I bring my dog to the office?", "Wie viele Urlaubstage habe ich?"):
        assert list(labels).count(label[alone]) == 1, alone

    # Without the per-language centring (at its own best cut) most translations stay apart.
    raw_vectors = np.asarray([shared_embeddings.embed_query(q) for q in texts])
    plain = pairwise_scores(cluster(raw_vectors, 0.11), truth)
    assert plain["recall"] < 0.7, plain


GAP_CORPUS = {
    "reisekosten.md": "---\ntitle: Reisekosten für KI-Konferenzen\nowner: Finanzen – Jana Roth\n"
    "audience: all\nlanguage: de\n---\n# Reisekosten für KI-Konferenzen\n\n## Erstattung\n\n"
    "Erstattet werden Bahnfahrten in der 2. Klasse und Konferenzgebühren bis 800 Euro. "
    "Flüge werden nicht erstattet.\n",
    "gehalt.md": "---\ntitle: Gehaltsbänder KI-Rollen\nowner: HR – Eva Marx\naudience: hr\n"
    "language: de\n---\n# Gehaltsbänder KI-Rollen\n\n## AI Product Owner\n\n"
    "Das Gehaltsband für AI Product Owner liegt zwischen 72.000 und 95.000 Euro brutto im Jahr.\n",
}


@pytest.fixture
def gap_assistant(tmp_path, shared_embeddings):
    corpus = tmp_path / "gap-corpus"
    corpus.mkdir()
    for name, text in GAP_CORPUS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    settings = make_settings(tmp_path, corpus)
    kb = KnowledgeBase(settings, shared_embeddings)
    assert ingest_corpus(kb, corpus).ok
    return build_assistant(settings, kb), kb


def test_gap_queue_groups_counts_examples_and_owner(stores, gap_assistant, shared_embeddings):
    audit, feedback = stores
    assistant, kb = gap_assistant
    salary = [
        ("Wie viel verdient ein AI Product Owner bei uns?", "u-7"),
        ("Gehalt AI Product Owner?", "u-8"),
        ("How much does an AI product owner earn here?", "u-9"),
    ]
    for n, (question, user) in enumerate(salary):
        seed_audit(audit, at(DAY1, 9 + n), question=question, answered=False, user=user)
    seed_audit(audit, at(DAY2, 9), question="Gehalt AI Product Owner?", answered=False, user="u-8")
    seed_feedback(
        feedback,
        at(DAY2, 10),
        -1,
        question="Werden Flüge zu KI-Konferenzen erstattet?",
        comment="Antwort passt nicht",
    )
    seed_feedback(
        feedback, at(DAY3, 10), -1, question="Zahlt die Firma Flüge zur KI-Konferenz?", comment=""
    )
    seed_audit(audit, at(DAY2, 11), question="Beantwortet, zählt nicht", answered=True)
    seed_feedback(feedback, at(DAY2, 12), 1, question="Gut bewertet, zählt nicht")
    seed_audit(
        audit, at(DAY3 + timedelta(days=3)), question="Gehalt AI Product Owner?", answered=False
    )

    rng = date_range(DAY1, DAY3)
    items = gap_questions(audit.engine, feedback.engine, rng)
    assert len(items) == 6 and {i.user_id for i in items} == {None}
    groups_present, documents = store_catalog(kb)
    assert groups_present == {"all", "hr"}
    assert documents["gehalt.md"]["owner"] == "HR – Eva Marx"
    groups = knowledge_gaps(
        items,
        QuestionEmbedder(shared_embeddings, golden=GOLDEN),
        related_finder(assistant.retriever, groups_present),
    )
    assert [(g.count, g.unanswered, g.thumbs_down) for g in groups] == [(4, 4, 0), (2, 0, 2)]
    salary_group, travel_group = groups
    assert set(salary_group.examples) == {q for q, _ in salary} and len(salary_group.examples) == 3
    assert (salary_group.first_seen, salary_group.last_seen) == (DAY1, DAY2)
    # The restricted HR document is found although the askers' groups were not recorded.
    assert (salary_group.source, salary_group.owner) == ("gehalt.md", "HR – Eva Marx")
    assert (travel_group.source, travel_group.owner) == ("reisekosten.md", "Finanzen – Jana Roth")
    assert travel_group.comments == ["Antwort passt nicht"]
    assert salary_group.users is None and "users" not in salary_group.as_dict()

    # With the setting on, who asked is shown (and only then read).
    shown = gap_questions(audit.engine, feedback.engine, rng, show_users=True)
    groups = knowledge_gaps(
        shown, QuestionEmbedder(shared_embeddings, golden=GOLDEN), show_users=True
    )
    assert groups[0].users == ["u-7", "u-8", "u-9"]


def _gap_groups(show_users: bool):
    items = [
        GapQuestion(
            "unanswered", '=HYPERLINK("http://x")', at(DAY1), "u-1" if show_users else None
        ),
        GapQuestion(
            "unanswered", '=HYPERLINK("http://x") ', at(DAY2), "u-2" if show_users else None
        ),
        GapQuestion(
            "thumbs_down", "Gilt die Richtlinie im Homeoffice?", at(DAY3), None, "-veraltet"
        ),
    ]

    def embed(texts):  # two fixed directions: the formula twice, the home-office question once
        return np.asarray([[1.0, 0.0] if "HYPERLINK" in t else [0.0, 1.0] for t in texts])

    return knowledge_gaps(items, embed, show_users=show_users)


def test_csv_export_for_excel():
    data = gaps_csv(_gap_groups(show_users=False))
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads the umlauts right
    text = data.decode("utf-8-sig")
    assert "\r\n" in text
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
    assert rows[0] == CSV_COLUMNS
    assert len(rows) == 3
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["Gruppe"] == "1" and first["Anzahl"] == "2" and first["Unbeantwortet"] == "2"
    # Text a spreadsheet would run as a formula is defused.
    assert first["Frage"] == '\'=HYPERLINK("http://x")'
    assert (first["Erstmals"], first["Zuletzt"]) == ("2025-03-10", "2025-03-11")
    second = dict(zip(rows[0], rows[2], strict=True))
    assert second["Daumen runter"] == "1" and second["Kommentare"] == "'-veraltet"
    assert second["Frage"] == "Gilt die Richtlinie im Homeoffice?"


def test_csv_names_users_only_when_allowed():
    hidden = gaps_csv(_gap_groups(show_users=False)).decode("utf-8-sig")
    assert USERS_COLUMN not in hidden and "u-1" not in hidden
    shown = gaps_csv(_gap_groups(show_users=True), show_users=True).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(shown, newline=""), delimiter=";"))
    assert rows[0][-1] == USERS_COLUMN and rows[1][-1] == "u-1, u-2"


def test_gap_questions_never_read_user_ids_unless_allowed(stores):
    audit, feedback = stores
    seed_audit(audit, at(DAY1), question="Wer zahlt Copilot?", answered=False, user="secret-user")
    rng = date_range(DAY1, DAY1)
    assert [i.user_id for i in gap_questions(audit.engine, feedback.engine, rng)] == [None]
    shown = gap_questions(audit.engine, feedback.engine, rng, show_users=True)
    assert [i.user_id for i in shown] == ["secret-user"]


# --- retention ----------------------------------------------------------------------------------

CITATION = {
    "n": 1,
    "source": "reisekosten.md",
    "title": "Reisekosten für KI-Konferenzen",
    "section": "Erstattung",
    "page": None,
    "text": "Erstattet werden Bahnfahrten in der 2. Klasse und Konferenzgebühren bis 800 Euro. "
    "Flüge werden nicht erstattet.",
    "score": 0.9,
    "quoted": [
        "Erstattet werden Bahnfahrten in der 2. Klasse und Konferenzgebühren bis 800 Euro.",
        "Flüge werden nicht erstattet.",
    ],
}


def test_retention_blanks_old_feedback_text_except_promoted(stores):
    audit, feedback = stores
    now = datetime.now(UTC)
    old_kept = seed_feedback(
        feedback, now - timedelta(days=40), 1, "Alt, übernommen?", citations=[CITATION]
    )
    old = seed_feedback(feedback, now - timedelta(days=40), -1, "Alt?", comment="privat")
    recent = seed_feedback(feedback, now - timedelta(days=29), 1, "Neu?", comment="gut")
    seed_audit(audit, now - timedelta(days=40), question="alte Frage")
    seed_audit(audit, now - timedelta(days=1), question="neue Frage")
    RegressionSet(feedback.engine).promote(old_kept)

    job = RetentionJob(audit, feedback.engine, retention_days=30)
    assert job.run_once() == {"audit_deleted": 1, "feedback_blanked": 1}
    rows = {r["id"]: r for r in feedback.all()}
    assert (rows[old]["question"], rows[old]["answer"], rows[old]["comment"]) == ("", "", "")
    assert rows[old]["citations"] == [] and rows[old]["rating"] == -1  # the count stays
    assert rows[old_kept]["question"] == "Alt, übernommen?"
    assert rows[recent]["comment"] == "gut"
    assert [r["question"] for r in audit.rows()] == ["neue Frage"]
    assert job.run_once() == {"audit_deleted": 0, "feedback_blanked": 0}

    # Taken out of the regression set, a row expires like any other.
    assert RegressionSet(feedback.engine).demote(old_kept)
    assert purge_feedback_text(feedback.engine, 30) == 1
    assert {r["id"]: r["question"] for r in feedback.all()}[old_kept] == ""
    # A blanked row is neither a gap question nor promotable any more.
    rng = date_range((now - timedelta(days=41)).date(), now.date())
    assert "Alt?" not in [i.question for i in gap_questions(audit.engine, feedback.engine, rng)]
    with pytest.raises(PromoteError, match="retention") as err:
        RegressionSet(feedback.engine).promote(old_kept)
    assert err.value.status == 409


def test_retention_job_runs_in_the_background(stores):
    audit, feedback = stores
    seed_feedback(feedback, datetime.now(UTC) - timedelta(days=31), -1, "Alt?")
    job = RetentionJob(audit, feedback.engine, retention_days=30, every_s=3600)
    job.start()
    try:
        for _ in range(200):
            if feedback.all()[0]["question"] == "":
                break
            job._stop.wait(0.05)
        assert feedback.all()[0]["question"] == ""
    finally:
        job.stop()


# --- regression set -----------------------------------------------------------------------------


def test_promote_builds_a_golden_item_and_refuses_what_it_cannot_use(stores, db_url):
    _, feedback = stores
    regression = RegressionSet(feedback.engine)
    good = seed_feedback(
        feedback, at(DAY1), 1, "Werden Konferenzgebühren erstattet?", citations=[CITATION]
    )
    refusal = seed_feedback(feedback, at(DAY1), 1, "What is the canteen menu?", answered=False)
    bad = seed_feedback(feedback, at(DAY1), -1, "Schlecht?", citations=[CITATION])
    nothing = seed_feedback(feedback, at(DAY1), 1, "Ohne Zitat?", citations=[])
    # Rows from before ratings needed a receipt: citations in any shape.
    odd = seed_feedback(
        feedback, at(DAY1), 1, "Komisch?", citations=[{**CITATION, "quoted": 5}, "x", {"n": 1}]
    )

    item = regression.promote(good, by="admin-1")
    assert item == {
        "id": f"fb-{good}",
        "lang": "de",
        "question": "Werden Konferenzgebühren erstattet?",
        "answerable": True,
        "expected": [
            {
                "source": "reisekosten.md",
                "contains": "Erstattet werden Bahnfahrten in der 2. Klasse und",
            }
        ],
        "groups": [],
    }
    assert regression.promote(good, by="admin-2") == item  # idempotent
    assert [(r["feedback_id"], r["promoted_by"]) for r in regression.rows()] == [(good, "admin-1")]
    unanswerable = regression.promote(refusal)
    assert (unanswerable["lang"], unanswerable["answerable"], unanswerable["expected"]) == (
        "en",
        False,
        [],
    )
    for feedback_id, status, message in (
        (bad, 409, "thumbs-down"),
        (987654, 404, "no feedback"),
        (nothing, 422, "no quoted passage"),
    ):
        with pytest.raises(PromoteError, match=message) as err:
            regression.promote(feedback_id)
        assert err.value.status == status
    assert regression.promote(odd)["expected"][0]["source"] == "reisekosten.md"
    # "caio salary?" has no function word: the dictionary (`tell`) says it is English.
    short = seed_feedback(feedback, at(DAY1), 1, "caio salary?", answered=False)
    assert regression.promote(short, tell=lambda tokens: "en")["lang"] == "en"
    changed = seed_feedback(feedback, at(DAY2), 1, "Noch da?", citations=[CITATION])
    with pytest.raises(PromoteError, match="no longer in reisekosten.md"):
        regression.promote(changed, verify=lambda source, snippet: False)
    promoted = [f"fb-{good}", f"fb-{refusal}", f"fb-{odd}", f"fb-{short}"]
    assert [i.id for i in regression.items()] == promoted
    # Candidates: thumbs-up, not promoted, newest first.
    assert [r["id"] for r in regression.candidates()] == [changed, nothing]
    assert [i.id for i in load_promoted(db_url)] == promoted


def test_load_promoted_leaves_no_database_behind(tmp_path):
    assert load_promoted(f"sqlite:///{tmp_path / 'none.sqlite'}") == []
    assert not (tmp_path / "none.sqlite").exists()


def test_promoted_item_changes_the_eval_output(tmp_path):
    """`python -m assistant eval` adds the promoted items from the app database."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "reisekosten.md").write_text(GAP_CORPUS["reisekosten.md"], encoding="utf-8")
    golden = tmp_path / "golden.yaml"
    golden.write_text(
        yaml.safe_dump(
            [
                {
                    "id": "g-1",
                    "lang": "de",
                    "question": "Wie hoch dürfen Konferenzgebühren sein?",
                    "answerable": True,
                    "expected": [{"source": "reisekosten.md", "contains": "bis 800 Euro"}],
                },
                {
                    "id": "g-2",
                    "lang": "de",
                    "question": "Wann öffnet die Kantine?",
                    "answerable": False,
                },
            ],
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    data = tmp_path / "data"
    env = {
        **os.environ,
        "ASSISTANT_CORPUS_DIR": str(corpus),
        "ASSISTANT_DATA_DIR": str(data),
    }
    for key in ("ASSISTANT_DATABASE_URL", "ASSISTANT_FEEDBACK_DB_URL", "ASSISTANT_CHROMA_URL"):
        env.pop(key, None)

    def run_eval(*extra):
        done = subprocess.run(
            [sys.executable, "-m", "assistant", "eval", "--golden", str(golden), *extra],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    before = json.loads(run_eval("--json"))
    assert (before["questions"], before["promoted"]) == (2, 0)
    assert before["by_language"]["de"]["n"] == 1

    feedback = FeedbackStore(f"sqlite:///{(data / 'app.sqlite').resolve()}")
    good = seed_feedback(
        feedback, datetime.now(UTC), 1, "Which train tickets are refunded?", citations=[CITATION]
    )
    RegressionSet(feedback.engine).promote(good, by="admin")

    after = json.loads(run_eval("--json"))
    assert (after["questions"], after["promoted"]) == (3, 1)
    assert after["by_language"]["en"]["n"] == 1  # the promoted English question
    assert after["by_language"]["en"]["recall@3"] == 1.0  # its passage is found
    text = run_eval()
    assert text.startswith("Promoted from feedback: 1\n") and "Questions: 3" in text
    assert json.loads(run_eval("--json", "--no-promoted"))["questions"] == 2
