"""The assistant as one object: question in, cited answer out. Factories wire the real parts."""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import replace

from assistant.answer import Answer, ExtractiveAnswerer
from assistant.config import Settings
from assistant.conversation import FollowUpResolver
from assistant.embeddings import build_embeddings
from assistant.index import KnowledgeBase
from assistant.lexical import DEFAULT_GLOSSARY, Glossary
from assistant.retrieval import HybridRetriever

log = logging.getLogger(__name__)


class QuestionError(ValueError):
    """A question that cannot be answered as given; `code` names the problem for translations."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def clean_question(question: object, max_chars: int) -> str:
    """The question with control and bidi-override characters removed; QuestionError if unusable."""
    if not isinstance(question, str):
        raise QuestionError("question must be text", "not_text")
    # Cc = control characters (NUL, escape ...), Cf = format characters such as the
    # right-to-left override that can disguise text; whitespace controls become spaces.
    cleaned = "".join(
        " " if ch in "\t\n\r" else ch
        for ch in question
        if ch in "\t\n\r" or unicodedata.category(ch) not in {"Cc", "Cf", "Cs", "Co"}
    )
    cleaned = re.sub(r"\s+", " ", cleaned).strip()
    if not cleaned:
        raise QuestionError("question is empty", "empty")
    if len(cleaned) > max_chars:
        raise QuestionError(
            f"question is too long ({len(cleaned)} characters, at most {max_chars})", "too_long"
        )
    return cleaned


class Assistant:
    """Retrieves passages for a question and builds the cited answer."""

    def __init__(
        self,
        retriever: HybridRetriever,
        answerer: ExtractiveAnswerer,
        follow_ups: FollowUpResolver,
        settings: Settings,
    ) -> None:
        self.retriever = retriever
        self.answerer = answerer
        self.follow_ups = follow_ups
        self.settings = settings

    def ask(self, question: str, history: list[dict] | None = None) -> Answer:
        """Answer one question from the knowledge base; `history` holds earlier turns
        ({"role": "user" | "assistant", "content": ...}) for follow-up questions."""
        question = clean_question(question, self.settings.max_question_chars)
        query = self.follow_ups.resolve(question, history)
        passages = self.retriever.retrieve(query)
        answer = self.answerer.answer(question, passages, self.retriever.subsections)
        return replace(answer, query=query) if query != question else answer


def build_knowledge_base(settings: Settings) -> KnowledgeBase:
    """The store under settings.data_dir with the configured embedding backend."""
    return KnowledgeBase(settings, build_embeddings(settings))


def build_assistant(settings: Settings, kb: KnowledgeBase | None = None) -> Assistant:
    """An Assistant over the store (opened from the settings unless given)."""
    kb = kb or build_knowledge_base(settings)
    glossary = Glossary.load(settings.glossary_path or DEFAULT_GLOSSARY)
    return Assistant(
        HybridRetriever(kb, settings, glossary),
        ExtractiveAnswerer(settings),
        FollowUpResolver(glossary),
        settings,
    )
