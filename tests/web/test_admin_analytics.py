"""The analytics tabs as units: every event handler checks the admin first and is not public;
the chart frames say exactly what the report says."""

from __future__ import annotations

import inspect
import threading
from datetime import date, timedelta

import gradio as gr
import pandas as pd
import pytest
from conftest import make_settings

from assistant.admin.reports import build_report, date_range
from assistant.records.audit import AuditLog
from assistant.records.feedback import FeedbackStore
from assistant.web.admin_analytics import (
    ANSWERED,
    DOWN,
    NOT_FOUND,
    UP,
    analytics_tab,
    chart_frames,
    count_limit,
    summary_markdown,
)
from assistant.web.admin_auth import AdminDenied
from assistant.web.admin_gaps import gaps_tab, regression_tab


class Runtime:
    """What the tabs use of the web Runtime; nobody passes require_admin."""

    def __init__(self, tmp_path):
        self.settings = make_settings(tmp_path, tmp_path / "corpus")
        url = f"sqlite:///{tmp_path / 'app.sqlite'}"
        self.audit, self.feedback = AuditLog(url, 30), FeedbackStore(url)
        self.ready, self.error, self.kb, self.assistant = threading.Event(), None, None, None
        self.checked = 0

    def require_admin(self, request):
        self.checked += 1
        raise AdminDenied(403, "the admin pages are only for the group 'admin'")


def test_every_handler_refuses_non_admins_and_is_private(tmp_path):
    runtime = Runtime(tmp_path)
    with gr.Blocks() as page, gr.Tabs():
        analytics_tab(runtime)
        gaps_tab(runtime)
        regression_tab(runtime)
    handlers = [d for d in page.fns.values() if d.fn is not None]
    assert len(handlers) == 5  # analytics, gaps, regression list, pick a row, promote
    for dependency in handlers:
        assert dependency.api_visibility == "private", dependency.name
        arguments = [None] * len(inspect.signature(dependency.fn).parameters)
        with pytest.raises(gr.Error, match="only for the group 'admin'"):
            dependency.fn(*arguments)
    assert runtime.checked == len(handlers)


def test_long_ranges_are_drawn_per_week_and_count_axes_are_whole(tmp_path):
    from test_analytics import at, seed_audit

    runtime = Runtime(tmp_path)
    first = date(2025, 1, 6)  # a Monday: 90 days, to a Saturday, are 13 calendar weeks
    for offset in (0, 1, 8):
        seed_audit(runtime.audit, at(first + timedelta(days=offset)), answered=True)
    report = build_report(
        runtime.audit.engine,
        runtime.feedback.engine,
        date_range(first, first + timedelta(days=89)),
        {},
    )
    frames = chart_frames(report)
    assert frames["order"][:2] == ["KW 02/25", "KW 03/25"] and len(frames["order"]) == 13
    answered = frames["questions"][frames["questions"]["Ergebnis"] == ANSWERED]
    assert answered["Fragen"].tolist()[:3] == [2, 1, 0]
    assert count_limit(pd.Series([0, 0])) == [0, 5] and count_limit(pd.Series([7])) == [0, 10]


def test_chart_frames_and_summary(tmp_path):
    from test_analytics import at, seed_audit, seed_feedback

    runtime = Runtime(tmp_path)
    day1, day2 = date(2025, 3, 10), date(2025, 3, 11)
    seed_audit(runtime.audit, at(day1), answered=True, sources=["a.md"], latency=100)
    seed_audit(runtime.audit, at(day1), answered=False, latency=300)
    seed_feedback(runtime.feedback, at(day2), -1)
    report = build_report(
        runtime.audit.engine, runtime.feedback.engine, date_range(day1, day2), {"a.md": "A"}
    )
    frames = chart_frames(report)
    assert frames["questions"].values.tolist() == [
        ["10.03.", ANSWERED, 1],
        ["11.03.", ANSWERED, 0],
        ["10.03.", NOT_FOUND, 1],
        ["11.03.", NOT_FOUND, 0],
    ]
    assert frames["share"].values.tolist() == [["10.03.", 50.0]]  # days with questions
    assert frames["feedback"].values.tolist() == [
        ["10.03.", UP, 0],
        ["11.03.", UP, 0],
        ["10.03.", DOWN, 0],
        ["11.03.", DOWN, 1],
    ]
    assert frames["latency"].values.tolist() == [["10.03.", 200.0]]
    assert frames["order"] == ["10.03.", "11.03."]
    assert frames["documents"].values.tolist() == [["A", 1]]
    assert summary_markdown(report) == (
        "**10.03.2025 – 11.03.2025** · **2** Fragen · **50 %** beantwortet · "
        "**1** nicht in der Wissensbasis · Bewertungen: **0** hilfreich, **1** nicht hilfreich · "
        "Antwortzeit (Median) **200 ms**"
    )


def test_candidates_list_rows_whose_citations_have_any_shape(tmp_path):
    """Ratings stored before they needed a receipt could carry anything as citations: the
    regression tab lists them instead of failing for every admin."""
    from assistant.web.admin_gaps import _candidate_rows
    from assistant.web.analytics import Analytics

    runtime = Runtime(tmp_path)
    answer = {"question": "q", "answer": "a", "answered": True, "mode": "extractive"}
    for citations in ([1, "x", None], [{"source": "faq.md"}, {"n": 2}], "kaputt"):
        runtime.feedback.add({**answer, "citations": citations}, 1)
    table = _candidate_rows(Analytics(runtime))
    assert sorted(table.iloc[:, -1]) == ["", "", "faq.md"]
