"""The admin analytics of a running app: usage reports, knowledge gaps and the regression set, over
the runtime's databases, knowledge base and retriever (the admin page and the JSON/CSV API use it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from assistant.admin.gaps import (
    GapGroup,
    QuestionEmbedder,
    _clean,
    gap_questions,
    gaps_csv,
    knowledge_gaps,
    related_finder,
    store_catalog,
)
from assistant.admin.reports import DateRange, Report, build_report
from assistant.admin.unmentioned import AskedName, unmentioned_names
from assistant.records.regression import RegressionSet
from assistant.web.runtime import Runtime


class NotReady(RuntimeError):
    """The knowledge base is still loading (the gap queue needs its embeddings and retriever)."""


@dataclass
class Analytics:
    """Analytics for a web Runtime (settings, audit, feedback, kb, assistant)."""

    runtime: Runtime
    _embedder: QuestionEmbedder | None = field(default=None, init=False, repr=False)

    @property
    def show_users(self) -> bool:
        return bool(self.runtime.settings.analytics_show_users)

    def _ready(self):
        runtime = self.runtime
        if not runtime.ready.is_set() or runtime.assistant is None or runtime.kb is None:
            raise NotReady(runtime.error or "the knowledge base is still loading")
        return runtime.assistant, runtime.kb

    def _titles(self) -> dict[str, str]:
        try:
            _, kb = self._ready()
        except NotReady:
            return {}
        return {s: d["title"] for s, d in store_catalog(kb)[1].items()}

    def report(self, rng: DateRange) -> Report:
        return build_report(
            self.runtime.audit.engine, self.runtime.feedback.engine, rng, titles=self._titles()
        )

    def gaps(self, rng: DateRange) -> list[GapGroup]:
        assistant, kb = self._ready()
        if self._embedder is None or self._embedder.embeddings is not kb.embeddings:
            self._embedder = QuestionEmbedder(
                kb.embeddings,
                golden=self.runtime.settings.eval_dir / "golden.yaml",
                tell=assistant.retriever.dictionary.language,
            )
        items = gap_questions(
            self.runtime.audit.engine, self.runtime.feedback.engine, rng, self.show_users
        )
        groups, _ = store_catalog(kb)
        return knowledge_gaps(
            items,
            self._embedder,
            related_finder(assistant.retriever, groups),
            show_users=self.show_users,
        )

    def gaps_csv(self, rng: DateRange) -> bytes:
        return gaps_csv(self.gaps(rng), self.show_users)

    def unmentioned(self, rng: DateRange) -> list[AskedName]:
        """Names asked about that no document mentions (needs only the audit log)."""
        return unmentioned_names(self.runtime.audit.engine, rng)

    @property
    def regression(self) -> RegressionSet:
        return RegressionSet(self.runtime.feedback.engine)

    def promote(self, feedback_id: int, by: str = "") -> dict:
        """Promote a thumbs-up answer into the regression set (PromoteError if it cannot be);
        its expected passages must still be in the knowledge base."""
        assistant, kb = self._ready()

        def still_there(source: str, snippet: str) -> bool:
            wanted = _clean(snippet).lower()
            return any(wanted in _clean(text).lower() for text in kb.texts_of(source))

        return self.regression.promote(
            feedback_id, by=by, verify=still_there, tell=assistant.retriever.dictionary.language
        )
