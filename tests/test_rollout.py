"""The rollout: stages and who they admit, what a plan may not be, the plan shared through the app
database, the KPIs per stage, group and week against targets, privacy, and the board report."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from conftest import make_settings
from sqlalchemy import insert

from assistant.admin.board_report import report_csv, report_html
from assistant.admin.reports import date_range
from assistant.admin.rollout_report import TOO_FEW, rollout_kpis
from assistant.answering.answer import Answer
from assistant.audience import reader_groups
from assistant.identity import ANONYMOUS, Identity
from assistant.records.audit import AuditLog, admin_events, audit_table
from assistant.records.feedback import FeedbackStore, feedback_table
from assistant.records.rollout import (
    NotInStage,
    RolloutError,
    RolloutPlan,
    RolloutStore,
    parse_plan,
)
from assistant.store.database import make_engine

TODAY = datetime.now(UTC).date()


def pilot_plan(start: date = TODAY - timedelta(days=14), **extra) -> dict:
    """Pilot (hr, disposition) from `start`, wave 2 (vertrieb) in 10 days, everyone in 40."""
    return {
        "stages": [
            {"name": "Pilot", "groups": ["hr", "disposition"], "start": start.isoformat()},
            {"name": "Welle 2", "groups": "vertrieb", "start": str(TODAY + timedelta(days=10))},
            {"name": "Alle", "groups": ["all"], "start": str(TODAY + timedelta(days=40))},
        ],
        "targets": {
            "answer_rate": {"target": 0.8, "baseline": 0.5},
            "thumbs_up_share": {"target": "0,75"},
            "median_latency_ms": {"target": 500},
            "open_gaps": {"target": 3},
        },
        **extra,
    }


# --- stages ------------------------------------------------------------------------------------


def test_no_stages_admit_everyone_as_before():
    RolloutPlan().check(ANONYMOUS.groups, TODAY)
    assert parse_plan({}).admits(frozenset(), TODAY)


def test_pilot_members_are_admitted_others_get_the_start_of_their_stage():
    plan = parse_plan(pilot_plan())
    assert plan.current(TODAY).name == "Pilot"
    assert plan.admits(reader_groups(["HR"]), TODAY)
    with pytest.raises(NotInStage) as sales:
        plan.check(reader_groups(["vertrieb"]), TODAY)
    assert sales.value.available_from == TODAY + timedelta(days=10)
    with pytest.raises(NotInStage) as nobody:  # no groups at all: "not yet", not an error
        plan.check(ANONYMOUS.groups, TODAY)
    assert nobody.value.available_from == TODAY + timedelta(days=40)
    later = TODAY + timedelta(days=40)
    assert plan.current(later).name == "Alle" and plan.admits(ANONYMOUS.groups, later)
    # before the pilot starts, nobody (the plan governs once there is one)
    assert not parse_plan(pilot_plan(TODAY + timedelta(days=1))).admits(
        reader_groups(["hr"]), TODAY
    )


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda p: p["stages"][0].update(start="01.03.2026"), "is not a date"),
        (lambda p: p["stages"][0].update(start="2026-02-30"), "is not a date"),
        (lambda p: p["stages"][0].update(start="0001-01-01"), "outside 2000-01-01 to 2999"),
        (lambda p: p["stages"][2].update(start="9999-12-31"), "outside 2000-01-01 to 2999"),
        (lambda p: p["stages"][0].update(groups=[]), "group list is empty"),
        (lambda p: p["stages"][1].update(groups=""), "group list is empty"),
        (lambda p: p["stages"][1].update(start=p["stages"][0]["start"]), "both start"),
        (lambda p: p["stages"][1].update(groups=["hr"]), "'hr' is in both"),
        (lambda p: p["stages"][0].update(groups=["all", "hr"]), "list it alone"),
        (lambda p: p["stages"][0].update(groups=["HR team!"]), "group names"),
        (lambda p: p["targets"].update(answer_rate={"target": "viel"}), "not a number"),
        (lambda p: p["targets"].update(open_gaps={"target": True}), "not a number"),
        (lambda p: p["targets"].update(open_gaps={"target": 10**400}), "not a finite number"),
        (lambda p: p["targets"].update(answer_rate={"target": 80}), "between 0 and 1"),
        (lambda p: p["targets"].update(happiness={"target": 1}), "unknown KPI"),
        (lambda p: p.update(min_group_users=3), "at least 5"),
    ],
)
def test_a_bad_plan_is_refused_with_its_reason_and_nothing_is_stored(tmp_path, change, reason):
    store = RolloutStore(make_engine(f"sqlite:///{tmp_path / 'app.sqlite'}"))
    store.save(parse_plan(pilot_plan()), "hr-admin")
    bad = pilot_plan()
    change(bad)
    with pytest.raises(RolloutError, match=reason):
        store.save(parse_plan(bad), "hr-admin")
    assert store.load() == parse_plan(pilot_plan())
    assert len(admin_events(store.engine)) == 1


def test_a_change_is_logged_and_seen_by_another_replica_after_its_cache(tmp_path):
    url = f"sqlite:///{tmp_path / 'app.sqlite'}"
    mine, theirs = RolloutStore(make_engine(url)), RolloutStore(make_engine(url), ttl_s=0.2)
    assert theirs.plan() == RolloutPlan()  # cached now
    mine.save(parse_plan(pilot_plan()), "hr-admin")
    import time

    time.sleep(0.3)
    assert theirs.plan().current(TODAY).name == "Pilot"
    (event,) = admin_events(theirs.engine, "rollout.plan")
    assert event["actor"] == "hr-admin"
    assert event["before"]["stages"] == [] and event["after"]["stages"][0]["groups"] == [
        "disposition",
        "hr",
    ]


class FakeAssistant:
    """Answers after a pause the test controls (a question in flight)."""

    def __init__(self) -> None:
        self.retriever = None

    def ask_stream(self, question, history, groups):
        yield "Ein Teil …"
        yield Answer(question, True, "Antwort.", [], "de")


def test_a_question_in_flight_finishes_when_the_stage_changes(tmp_path):
    from assistant.web.runtime import Runtime

    runtime = Runtime(make_settings(tmp_path, tmp_path / "corpus"))
    runtime.assistant = FakeAssistant()  # type: ignore[assignment]
    runtime.ready.set()
    member = Identity("u-hr", reader_groups(["hr"]), "token")
    stream = runtime.ask_stream(member, None, "Frage?", [], "api")
    assert next(stream) == "Ein Teil …"  # admitted: pilot open to everyone so far
    closed = pilot_plan()
    closed["stages"][0]["groups"] = ["disposition"]
    runtime.rollout.save(parse_plan(closed), "hr-admin")
    assert isinstance(next(stream), Answer)  # finishes
    with pytest.raises(NotInStage):  # the next question meets the new plan
        runtime.ask(member, None, "Noch eine?", [], "api")


# --- KPIs, privacy, report ----------------------------------------------------------------------


def seed_rollout(db_url: str, start: date) -> None:
    """Six hr users (answered, fast) and three disposition users (unanswered) in the pilot, from
    `start`; ratings with a thumbs-down comment; an anonymous question."""
    audit, feedback = AuditLog(db_url, 90), FeedbackStore(db_url)
    rows = []
    for n in range(6):
        day = start + timedelta(days=n % 3)
        rows.append(
            (day, f"secret-hr-{n}", "all,hr", 1, 300 + n, "Welche KI-Tools darf ich nutzen?")
        )
    for n in range(3):
        rows.append(
            (start, f"secret-dispo-{n}", "all,disposition", 0, 900, "Wie plane ich Touren mit KI?")
        )
    rows.append((start, "anonymous", "all", 0, 100, "Anonyme Frage?"))
    with audit.engine.begin() as conn:
        for day, user, groups, answered, latency, question in rows:
            conn.execute(
                insert(audit_table).values(
                    created_at=datetime(day.year, day.month, day.day, 10, tzinfo=UTC),
                    user_id=user,
                    via="anonymous" if user == "anonymous" else "token",
                    groups=groups,
                    channel="api",
                    question=question,
                    answered=answered,
                    mode="extractive",
                    sources=json.dumps([]),
                    latency_ms=latency,
                )
            )
    with feedback.engine.begin() as conn:
        for rating, comment, groups in [
            (1, "", "all,hr"),
            (1, "", "all,hr"),
            (1, "", "all,disposition"),
            (-1, "Tourenplanung fehlt ganz", "all,hr"),
        ]:
            conn.execute(
                insert(feedback_table).values(
                    created_at=datetime(start.year, start.month, start.day, 11, tzinfo=UTC),
                    question="Wie plane ich Touren mit KI?",
                    answer="…",
                    citations="[]",
                    answered=1,
                    mode="extractive",
                    rating=rating,
                    comment=comment,
                    groups=groups,
                )
            )
    audit.engine.dispose()
    feedback.engine.dispose()


def test_kpis_per_stage_and_group_against_targets_with_small_groups_suppressed(tmp_path):
    url = f"sqlite:///{tmp_path / 'app.sqlite'}"
    start = TODAY - timedelta(days=14)
    seed_rollout(url, start)
    plan = parse_plan(pilot_plan(start))
    engine = make_engine(url)
    kpis = rollout_kpis(engine, engine, plan, date_range(start, TODAY))
    data = kpis.as_dict()
    (stage,) = data["stages"]
    assert stage["stage"] == "Pilot" and stage["users"] == 9 and stage["questions"] == 10
    assert stage["kpis"]["answer_rate"] == {
        "value": 0.6,
        "target": 0.8,
        "baseline": 0.5,
        "met": False,
    }
    assert stage["kpis"]["thumbs_up_share"]["value"] == 0.75
    assert stage["kpis"]["thumbs_up_share"]["met"] is True
    groups = {g["group"]: g for g in data["groups"]}
    assert groups["hr"]["users"] == 6 and groups["hr"]["kpis"]["answer_rate"]["value"] == 1.0
    assert groups["hr"]["kpis"]["median_latency_ms"]["met"] is True
    # ratings carry the rater's groups (no user id): hr rated 2 of 3 answers up
    assert groups["hr"]["kpis"]["thumbs_up_share"]["value"] == 0.667
    assert groups["disposition"]["suppressed"] and groups["disposition"]["note"] == TOO_FEW
    assert groups["disposition"]["users"] is None
    assert all(v["value"] is None for v in groups["disposition"]["kpis"].values())
    assert any("disposition" in item for item in data["open_items"])
    assert data["incidents"][0]["comment"] == "Tourenplanung fehlt ganz"
    weeks = [w for w in data["weeks"] if w["group"] == "alle"]
    assert sum(w["questions"] or 0 for w in weeks) <= 10
    assert {w["group"] for w in data["weeks"]} == {"alle", "hr", "disposition"}
    assert all(w["suppressed"] for w in data["weeks"] if w["group"] == "disposition")
    # a higher threshold hides the hr group too; never below 5
    strict = rollout_kpis(
        engine, engine, parse_plan(pilot_plan(start, min_group_users=7)), kpis.range
    )
    assert all(g.suppressed for g in strict.groups)
    page, table = report_html(kpis), report_csv(kpis).decode("utf-8")
    for text in (page, table, json.dumps(data)):
        assert "secret-" not in text  # no user ids anywhere
    assert TOO_FEW in page and "Tourenplanung fehlt ganz" in page and "<script" not in page
    assert table.startswith("\ufeff") and "Antwortquote" in table


def test_ratings_keep_the_raters_groups_and_old_tables_get_the_column(tmp_path):
    """A feedback table made before ratings kept groups gets the column on start; old rows have
    none, new ones the rater's groups (never a user id)."""
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE feedback (id INTEGER PRIMARY KEY, created_at DATETIME NOT NULL, "
            "question TEXT NOT NULL, answer TEXT NOT NULL, citations TEXT NOT NULL, "
            "answered INTEGER NOT NULL, mode VARCHAR(32) NOT NULL, rating INTEGER NOT NULL, "
            "comment TEXT NOT NULL)"
        )
        conn.exec_driver_sql(
            "INSERT INTO feedback VALUES (1, '2026-01-05 10:00:00', 'q', 'a', '[]', 1, "
            "'extractive', 1, '')"
        )
    store = FeedbackStore(url)
    new = store.add({"question": "q2", "answer": "a2"}, -1, groups={"hr", "all"})
    with store.engine.connect() as conn:
        rows = dict(conn.exec_driver_sql("SELECT id, groups FROM feedback").all())
    assert rows == {1: "", new: "all,hr"}
