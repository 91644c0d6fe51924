"""Policy versions: expiry, supersession, effective dates, and what an answer says about them."""

from __future__ import annotations

from datetime import date

from assistant.answering.answer import Citation
from assistant.search.validity import Validity, Versions, outdated_notice, parse_date

TODAY = date(2026, 6, 1)


def meta(source, title="KI-Nutzungsrichtlinie", **extra):
    return {"source": source, "title": title, **extra}


def test_dates_parse_leniently_and_bad_ones_count_as_absent():
    assert parse_date("2025-03-01") == date(2025, 3, 1)
    assert parse_date("2025-03-01T10:00:00") == date(2025, 3, 1)
    assert parse_date("01.03.2025") is None
    assert parse_date("2025-02-30") is None
    assert parse_date(None) is None


def test_a_document_without_dates_is_current():
    versions = Versions([meta("a.md")])
    assert versions.validity("a.md", TODAY) == Validity()
    assert versions.validity("unknown.md", TODAY).current


def test_expired_and_pending_documents():
    versions = Versions(
        [
            meta("old.md", "Parkplatzregel", expiry_date="2026-05-31"),
            meta("today.md", "Kantinenregel", expiry_date="2026-06-01"),
            meta("later.md", "Reiserichtlinie", effective_date="2026-07-01"),
        ]
    )
    assert versions.validity("old.md", TODAY) == Validity("expired", "2026-05-31")
    assert versions.validity("today.md", TODAY).current  # valid through its expiry day
    assert versions.validity("later.md", TODAY) == Validity("pending", "2026-07-01")
    # The same document, a month on.
    assert versions.validity("later.md", date(2026, 7, 1)).current


def test_the_newest_version_in_force_supersedes_older_ones_of_the_same_title():
    versions = Versions(
        [
            meta("v1.md", effective_date="2024-01-01", version="1"),
            meta("v2.md", "  ki-nutzungsrichtlinie ", effective_date="2025-01-01", version="2"),
            meta("v3.md", effective_date="2027-01-01", version="3"),  # not yet in force
            meta("chunk-2-of-v1.md", "Anderes Dokument", effective_date="2020-01-01"),
        ]
    )
    v1 = versions.validity("v1.md", TODAY)
    assert v1.status == "superseded"
    assert (v1.replaced_by, v1.since, v1.replaced_by_title) == (
        "v2.md",
        "2025-01-01",
        "  ki-nutzungsrichtlinie ",
    )
    assert versions.validity("v2.md", TODAY).current
    assert versions.validity("v3.md", TODAY).status == "pending"
    assert versions.validity("chunk-2-of-v1.md", TODAY).current
    # Once v3 applies, it supersedes v2.
    assert versions.validity("v2.md", date(2027, 1, 1)).replaced_by == "v3.md"


def test_document_id_groups_versions_with_different_titles_and_versions_compare_as_numbers():
    versions = Versions(
        [
            meta("a.md", "Datenschutz bei KI-Tools (2.9)", document_id="DS-7", version="2.9"),
            meta("b.md", "Datenschutz für KI-Werkzeuge", document_id="ds-7", version="2.10"),
        ]
    )
    assert versions.validity("a.md", TODAY).replaced_by == "b.md"
    assert versions.validity("b.md", TODAY).current


def test_an_expired_newer_version_does_not_supersede_the_one_in_force():
    versions = Versions(
        [
            meta("v1.md", effective_date="2024-01-01"),
            meta("v2.md", effective_date="2025-01-01", expiry_date="2025-12-31"),
        ]
    )
    assert versions.validity("v1.md", TODAY).current
    assert versions.validity("v2.md", TODAY).status == "expired"


def test_the_answer_notice_names_each_outdated_citation_in_the_question_language():
    def cite(n, status="current", since="", by=""):
        return Citation(n, f"s{n}.md", f"Titel {n}", "", None, "text", 1.0, [], status, since, by)

    citations = [
        cite(1),
        cite(2, "expired", "2025-12-31"),
        cite(3, "superseded", "2026-01-01", "Neu"),
    ]
    german = outdated_notice(citations, "de")
    assert german.startswith("Achtung, nicht die aktuell gültige Fassung")
    assert "[2] „Titel 2“ ist seit 31.12.2025 nicht mehr gültig" in german
    assert "[3] „Titel 3“ ist ersetzt durch „Neu“ (gültig ab 01.01.2026)" in german
    assert "[1]" not in german
    english = outdated_notice(citations, "en")
    assert "expired on 2025-12-31" in english and "superseded by “Neu”" in english
    assert outdated_notice([cite(1)], "de") == ""
