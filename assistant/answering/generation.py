"""Optional LLM answers over the retrieved passages, verified before anyone sees them.

The model (any OpenAI-compatible endpoint or Ollama, through langchain chat models) gets the
passages numbered [1]..[n] inside <passage> tags and the rules in prompts/answer.md. Its answer is
then checked sentence by sentence: a marker that points to no passage is removed; a cited passage
that does not support its sentence (embedding similarity and word overlap both below calibrated
thresholds) loses the marker and the sentence is flagged; an answer left without any valid
citation is replaced by the extractive one. So is every fault of the endpoint (down, HTTP error,
garbage, empty or cut-off output, too slow): the whole LLM step has one deadline, and a worker
never waits longer than that (llm.py: the endpoint, its retries and its breaker).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings
from langchain_core.messages import HumanMessage, SystemMessage

from assistant.answering.answer import REFUSAL, Answer, Citation
from assistant.answering.llm import Generator, LLMError
from assistant.answering.llm import build_chat_model as build_chat_model  # re-exported
from assistant.config import Settings
from assistant.ingest.units import split_units
from assistant.search.lexical import Glossary, stems
from assistant.search.passage import Passage

log = logging.getLogger(__name__)

PROMPTS = Path(__file__).with_name("prompts")
REFUSAL_TOKEN = "NOT_IN_KNOWLEDGE_BASE"
LANGUAGE_NAMES = {"de": "German (Deutsch)", "en": "English"}
_MARKERS = re.compile(r"\s*\[(\d+)\]")
_SENTENCES = re.compile(r"(?<=[.!?])\s+(?=\S)")

NOTICES = {
    "de": {
        "unavailable": "Hinweis: Das Sprachmodell ist gerade nicht erreichbar; "
        "die Antwort zitiert direkt aus den Dokumenten.",
        "timeout": "Hinweis: Das Sprachmodell hat zu lange gebraucht; "
        "die Antwort zitiert direkt aus den Dokumenten.",
        "invalid": "Hinweis: Die Antwort des Sprachmodells war unbrauchbar; "
        "die Antwort zitiert direkt aus den Dokumenten.",
        "unverified": "Hinweis: Die Antwort des Sprachmodells ließ sich nicht mit den Quellen "
        "belegen; die Antwort zitiert direkt aus den Dokumenten.",
        "flagged": "Mit ⚠ markierte Sätze sind durch die Quellen nicht belegt.",
    },
    "en": {
        "unavailable": "Note: the language model is unavailable right now; "
        "the answer quotes the documents directly.",
        "timeout": "Note: the language model took too long; the answer quotes the documents "
        "directly.",
        "invalid": "Note: the language model's reply was unusable; the answer quotes the "
        "documents directly.",
        "unverified": "Note: the language model's answer could not be backed by the sources; "
        "the answer quotes the documents directly.",
        "flagged": "Sentences marked ⚠ are not backed by the sources.",
    },
}


def load_prompt(name: str) -> str:
    return (PROMPTS / f"{name}.md").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Verification:
    """The answer text after checking, the passages it cites (in order of first citation) and
    the sentences that lost a citation or had none that held."""

    text: str
    cited: list[int]
    flagged: list[str]


class Verifier:
    """Checks every cited sentence against its passage: word overlap or embedding similarity.

    Overlap is the share of the sentence's content words (stems) found in the passage; a word
    also counts when a glossary equivalent is there, so an English sentence can be backed by a
    German passage. Measured with benchmarks/bench_verify.py: overlap separates a passage's own
    statements from a neighbouring passage's far better than the embedding, which therefore only
    counts at a high similarity.
    """

    def __init__(
        self,
        embeddings: Embeddings,
        vectors: Callable[[list[str]], dict[str, np.ndarray]],
        settings: Settings,
        glossary: Glossary | None = None,
    ) -> None:
        self.embeddings = embeddings
        self.vectors = vectors
        self.settings = settings
        self.glossary = glossary or Glossary([])

    def overlap(self, sentence: str, passage_text: str) -> float:
        """Share of the sentence's content words that the passage has (or an equivalent of)."""
        words = set(stems(sentence))
        if not words:
            return 0.0
        have = set(stems(passage_text))
        covered = words & have
        for group, used in self.glossary.group_hits(sentence):
            if any(set(stems(term)) <= have for term in group):
                covered |= words & {s for term in used for s in stems(term)}
        return len(covered) / len(words)

    def support(self, sentence: str, passage: Passage, vector: np.ndarray | None) -> float:
        """How well a passage backs a sentence: the larger of word overlap and cosine, each
        divided by its threshold (>= 1.0 means supported)."""
        overlap = self.overlap(sentence, passage.content)
        score = overlap / max(self.settings.min_support_overlap, 1e-9)
        if vector is not None and score < 1.0:
            query = np.asarray(self.embeddings.embed_query(sentence), dtype=np.float32)
            cosine = float(query @ vector / (np.linalg.norm(query) * np.linalg.norm(vector)))
            score = max(score, cosine / max(self.settings.min_support, 1e-9))
        return score

    def verify(self, text: str, passages: list[Passage]) -> Verification:
        vectors = self.vectors([p.id for p in passages])
        cited: list[int] = []
        flagged: list[str] = []
        lines = []
        for line in text.strip().splitlines():
            bullet = re.match(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+", line)
            prefix, body = (line[: bullet.end()], line[bullet.end() :]) if bullet else ("", line)
            kept = []
            for sentence in _SENTENCES.split(body.strip()) if body.strip() else []:
                numbers = [int(n) for n in _MARKERS.findall(sentence)]
                plain = _MARKERS.sub("", sentence).strip()
                if not plain:
                    continue
                valid = []
                for n in dict.fromkeys(numbers):
                    if not 1 <= n <= len(passages):
                        log.info("LLM cited [%d] of %d passages: removed", n, len(passages))
                        continue
                    passage = passages[n - 1]
                    if self.support(plain, passage, vectors.get(passage.id)) >= 1.0:
                        valid.append(n)
                    else:
                        log.info("sentence not supported by [%d]: %r", n, plain[:80])
                if numbers and not valid:
                    flagged.append(plain)
                    kept.append(f"⚠ {plain}")
                    continue
                for n in valid:
                    if n not in cited:
                        cited.append(n)
                kept.append(plain + "".join(f" [{n}]" for n in valid))
            if kept:
                lines.append(prefix + " ".join(kept))
            elif not body.strip():
                lines.append("")
        # Renumber in order of first citation: [1] is the first source the answer uses.
        number = {old: new for new, old in enumerate(cited, start=1)}
        renumbered = re.sub(
            r"\[(\d+)\]", lambda m: f"[{number[int(m.group(1))]}]", "\n".join(lines).strip()
        )
        return Verification(renumbered, cited, flagged)


def format_passages(passages: list[Passage]) -> str:
    """The passages as numbered, delimited data blocks (a closing tag inside a passage is
    defused so a document cannot end its own block)."""
    blocks = []
    for n, p in enumerate(passages, start=1):
        where = " > ".join(x for x in (p.title, p.section) if x)
        page = f", page {p.page}" if p.page is not None else ""
        body = re.sub(
            r"</?\s*passages?\b", lambda m: m.group(0).replace("<", "‹"), p.text, flags=re.I
        )
        blocks.append(f'<passage n="{n}" source="{where}{page}">\n{body}\n</passage>')
    return "\n".join(blocks)


class LLMAnswerer:
    """Answers with the chat model, verified; falls back to the extractive answer."""

    def __init__(self, generator: Generator, verifier: Verifier, settings: Settings) -> None:
        self.generator = generator
        self.verifier = verifier
        self.settings = settings
        self.prompt = load_prompt("answer")
        self.rewrite_prompt = load_prompt("rewrite")

    def rewrite(self, question: str, history: list[dict], deadline: float) -> str:
        """The question made self-contained from the conversation (LLMError on failure)."""
        turns = "\n".join(
            f"{t.get('role', 'user')}: {str(t.get('content', ''))[:1000]}" for t in history[-6:]
        )
        prompt = self.rewrite_prompt.format(history=turns, question=question)
        text = self.generator.complete([HumanMessage(prompt)], deadline).strip()
        line = text.splitlines()[0].strip().strip('"“”') if text else ""
        if not line or len(line) > 3 * len(question) + 200:
            raise LLMError("invalid", f"unusable rewrite {text[:80]!r}")
        return line

    def messages(self, question: str, passages: list[Passage], language: str) -> list:
        system = self.prompt.format(
            language_name=LANGUAGE_NAMES[language],
            max_sentences=self.settings.max_answer_units,
            count=len(passages),
            refusal_token=REFUSAL_TOKEN,
            passages=format_passages(passages),
        )
        return [SystemMessage(system), HumanMessage(question)]

    def stream(
        self,
        question: str,
        passages: list[Passage],
        language: str,
        fallback: Callable[[], Answer],
        deadline: float,
    ) -> Iterator[str | Answer]:
        """The answer text as it grows, then the verified Answer (or the fallback's)."""
        text = ""
        try:
            for piece in self.generator.stream(
                self.messages(question, passages, language), deadline
            ):
                text += piece
                yield text
        except LLMError as exc:
            log.warning("LLM failed (%s); extractive answer instead", exc)
            yield self._fallback(fallback(), exc.kind)
            return
        if REFUSAL_TOKEN in text or not text.strip():
            if not text.strip():
                yield self._fallback(fallback(), "invalid")
                return
            yield Answer(question, False, REFUSAL[language], [], language, mode="llm")
            return
        checked = self.verifier.verify(text, passages)
        if not checked.cited:
            yield self._fallback(fallback(), "unverified")
            return
        citations = [
            self._citation(new, passages[old - 1], checked.text)
            for new, old in enumerate(checked.cited, start=1)
        ]
        yield Answer(
            question,
            True,
            checked.text,
            citations,
            language,
            mode="llm",
            notice=NOTICES[language]["flagged"] if checked.flagged else "",
            flagged=checked.flagged,
        )

    @staticmethod
    def _fallback(answer: Answer, reason: str) -> Answer:
        return replace(answer, mode="fallback", notice=NOTICES[answer.language][reason])

    @staticmethod
    def _citation(n: int, passage: Passage, text: str) -> Citation:
        """The passage as source n; `quoted` holds its units closest to the sentences citing it."""
        citing = [s for s in _SENTENCES.split(text.replace("\n", " ")) if f"[{n}]" in s]
        units = [u.text for u in split_units(passage.text)]
        quoted = []
        for sentence in citing:
            words = set(stems(_MARKERS.sub("", sentence)))
            best = max(units, key=lambda u: len(words & set(stems(u))), default=None)
            if best and words & set(stems(best)) and best not in quoted:
                quoted.append(best)
        return Citation.of(n, passage, quoted)
