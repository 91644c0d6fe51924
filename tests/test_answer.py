"""Cited extractive answers on the real corpus: numbering, markers, refusals, language."""

from __future__ import annotations

import re

import pytest

from assistant.answer import REFUSAL, TENTATIVE, cited_numbers, split_sentences, split_units
from assistant.pipeline import QuestionError, build_assistant, clean_question


def check_citations(answer):
    numbers = [c.n for c in answer.citations]
    assert numbers == list(range(1, len(numbers) + 1)), "citations are numbered 1..n in order"
    assert cited_numbers(answer.answer) == set(numbers), "every marker has a source and vice versa"
    for c in answer.citations:
        assert c.text and c.source and c.title
        units = [text for text, _ in split_units(c.text)]
        assert c.quoted and all(q in units for q in c.quoted), "quotes come from the passage"


@pytest.mark.parametrize("question", ["Was muss ein CAIO mitbringen?", "What must a CAIO bring?"])
def test_caio_competencies(real_assistant, question):
    answer = real_assistant.ask(question)
    assert answer.answered
    check_citations(answer)
    assert answer.citations[0].source == "rollen/rollenprofil-caio.docx"
    assert "Kompetenzen" in answer.citations[0].section
    # the answer quotes the competency fields, not just the section's opening sentence
    assert len(answer.citations) >= 3
    assert answer.answer.count("\n- ") >= 5


def test_answer_language_follows_question(real_assistant):
    de = real_assistant.ask("Welche Aufgaben hat ein AI Product Owner?")
    en = real_assistant.ask("What are the tasks of an AI Product Owner?")
    assert de.language == "de" and de.answer.startswith("Laut")
    assert en.language == "en" and en.answer.startswith("According to")
    for answer in (de, en):
        check_citations(answer)
        assert any("product-owner" in c.source for c in answer.citations)


def test_pdf_citation_has_page(real_assistant):
    answer = real_assistant.ask("Wie lange werden Prompts und Chatverläufe gespeichert?")
    assert answer.answered
    check_citations(answer)
    pdf = [c for c in answer.citations if c.source.endswith(".pdf")]
    assert pdf and all(isinstance(c.page, int) and c.page >= 1 for c in pdf)


@pytest.mark.parametrize(
    ("question", "language"),
    [
        ("Wie viele Urlaubstage habe ich im Jahr?", "de"),
        ("What is on the canteen menu on Friday?", "en"),
        ("Wie setze ich mein VPN-Passwort zurück?", "de"),
    ],
)
def test_not_in_knowledge_base(real_assistant, question, language):
    answer = real_assistant.ask(question)
    assert not answer.answered
    assert answer.citations == [] and answer.answer == REFUSAL[language]
    assert not re.search(r"\[\d+\]", answer.answer)


@pytest.mark.parametrize(
    ("question", "language"),
    [("Was muss ein CAIO mitbringen?", "de"), ("What must a CAIO bring?", "en")],
)
def test_loosely_related_answer_says_so(real_corpus_store, real_assistant, question, language):
    """Between the two thresholds the passages are quoted with a notice that they may not fit."""
    clear = real_assistant.ask(question)
    assert clear.answered and clear.confident and TENTATIVE[language] not in clear.notice

    settings, kb = real_corpus_store
    strict = settings.model_copy(
        update={"confident_relevance": 0.99, "confident_relevance_cross_lingual": 0.99}
    )
    loose = build_assistant(strict, kb).ask(question)
    assert loose.answered and not loose.confident
    assert loose.notice.startswith(TENTATIVE[language])
    assert loose.citations == clear.citations and loose.answer == clear.answer
    assert loose.as_dict()["confident"] is False


def test_split_units_bullets_and_sentences():
    units = split_units("Erster Satz. Zweiter Satz!\n- Punkt eins\n- Punkt zwei\n1. Nummer")
    assert units == [
        ("Erster Satz.", False),
        ("Zweiter Satz!", False),
        ("Punkt eins", True),
        ("Punkt zwei", True),
        ("Nummer", True),
    ]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "empty"),
        ("   \n\t ", "empty"),
        ("\x00\x01", "empty"),
        ("x" * 3000, "too long"),
        (None, "text"),
    ],
)
def test_bad_questions_are_refused_clearly(raw, message):
    with pytest.raises(QuestionError, match=message):
        clean_question(raw, 2000)


def test_control_and_bidi_characters_removed():
    assert clean_question("Was\u202e macht\x00 ein\tCAIO?\n", 2000) == "Was macht ein CAIO?"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Die Richtlinie gilt seit dem 1. März 2025. Sie ersetzt die alte Fassung.",
            ["Die Richtlinie gilt seit dem 1. März 2025.", "Sie ersetzt die alte Fassung."],
        ),
        (
            "Sensible Daten, z. B. Kundendaten, bleiben intern. Ansprechpartnerin ist Dr. Albers.",
            [
                "Sensible Daten, z. B. Kundendaten, bleiben intern.",
                "Ansprechpartnerin ist Dr. Albers.",
            ],
        ),
        (
            "Die 2. Stufe folgt nach Art. 6 Abs. 1 DSGVO. Danach entscheidet das KI-Board.",
            ["Die 2. Stufe folgt nach Art. 6 Abs. 1 DSGVO.", "Danach entscheidet das KI-Board."],
        ),
        (
            "Das Budget beträgt 2025 rund 1,2 Mio. Euro. Im Jahr 2026 steigt es.",
            ["Das Budget beträgt 2025 rund 1,2 Mio. Euro.", "Im Jahr 2026 steigt es."],
        ),
        (
            "Version 2. Gilt ab sofort. Fragen? An die Stabsstelle!",
            ["Version 2. Gilt ab sofort.", "Fragen?", "An die Stabsstelle!"],
        ),
    ],
)
def test_dates_ordinals_and_abbreviations_do_not_end_a_sentence(text, expected):
    assert split_sentences(text) == expected
