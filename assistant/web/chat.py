"""What the chat page does when something happens: a question, a rating, a language switch, a page
load, a conversation opened or deleted. Each handler is a method; ui.py lays out the page and
wires them to its components."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator

import gradio as gr
from fastapi import HTTPException

from assistant.answering.answer import Answer, Citation
from assistant.answering.pipeline import QuestionError
from assistant.identity import (
    ANONYMOUS,
    Identity,
    IdentityError,
    from_login,
    from_proxy,
    resolve,
    verify_token,
)
from assistant.records.conversations import new_id
from assistant.records.feedback import FeedbackError
from assistant.records.rollout import NotInStage
from assistant.store.embeddings import EmbeddingError
from assistant.web.chat_state import plain_messages, plain_turns
from assistant.web.errors import printable
from assistant.web.limits import BusyError
from assistant.web.render import answer_html, file_url, inert
from assistant.web.runtime import RateLimited, Runtime
from assistant.web.texts import EXAMPLES, LANGUAGES, SHORT_LANGUAGES, UI_TEXT, stage_line

log = logging.getLogger(__name__)


def browser_language(request: gr.Request | None) -> str:
    """'en' if the browser prefers English over German, else 'de'."""
    header = (request.headers.get("accept-language", "") if request else "").lower()
    for part in header.split(","):
        code = part.split(";")[0].strip()[:2]
        if code in ("de", "en"):
            return code
    return "de"


def _stream(text: str) -> Iterator[str]:
    """Prefixes of the answer text, a few words at a time."""
    words = text.split(" ")
    for end in range(4, len(words), 4):
        yield " ".join(words[:end])


def signed_in(who: object) -> bool:
    """Whether the session belongs to a named user (their conversations are kept for them)."""
    return isinstance(who, Identity) and who.user is not None


def browser_secret(runtime: Runtime) -> str:
    """The key that encrypts an anonymous chat in the browser's storage: from the session
    secret, so every replica (and the next start) can read it back."""
    return hashlib.sha256(runtime.links.key + b"chat-in-browser").hexdigest()[:32]


class ChatHandlers:
    """The chat page's event handlers for one runtime (compact: the widget)."""

    def __init__(self, runtime: Runtime, compact: bool = False) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.compact = compact

    # --- who is asking -----------------------------------------------------------------------

    def identify(self, request: gr.Request | None, token: str = "") -> Identity | dict:
        """Who this browser session belongs to: the widget's token (from the page URL's
        `#token=`, or `?token=`), the login, or the SSO proxy; a dict with the reason when a
        presented token is refused."""
        if request is None:
            return ANONYMOUS
        token = token or (request.query_params or {}).get("token") or ""
        try:
            if token:
                return verify_token(token, self.settings)
        except IdentityError as exc:
            return {"error": str(exc), "code": exc.code}
        client = request.client.host if request.client else None
        return (
            from_login(getattr(request, "username", None), self.settings)
            or from_proxy(request.headers, client, self.settings)
            or ANONYMOUS
        )

    def signin_refused(self, who: Identity | dict, lang: str) -> str:
        code = who["code"] if isinstance(who, dict) else "expired"
        return UI_TEXT[lang]["signin"].format(reason=UI_TEXT[lang][f"token_{code}"])

    def signed_link(self, citation: Citation, base: str, language: str) -> str:
        """The document link with a signature, so a restricted document opens for its reader."""
        url, _, fragment = file_url(citation, base, language).partition("#")
        joiner = "&" if "?" in url else "?"
        signed = f"{url}{joiner}{self.runtime.links.sign(citation.source)}"
        return signed + (f"#{fragment}" if fragment else "")

    # --- questions and answers ----------------------------------------------------------------

    @staticmethod
    def add_question(message: str, chat: list, turns: list):
        message, chat = (message or "").strip(), plain_messages(chat)
        if not message:
            return "", chat, turns
        shown = {"role": "user", "content": inert(message)}
        return "", [*chat, shown], [*turns, {"question": message, "answer": None}]

    def pick_example(self, chat: list, turns: list, data: gr.SelectData):
        text = data.value.get("text") if isinstance(data.value, dict) else None
        return self.add_question(text if isinstance(text, str) else "", chat, turns)[1:]

    def answer_question(self, chat: list, turns: list, lang: str, who, request: gr.Request):
        """Stream the answer to the last question into the chat (a refusal to answer, a rate
        limit or a sign-in problem as one friendly line)."""
        chat = plain_messages(chat)
        if not turns or turns[-1]["answer"] is not None:
            yield chat, turns
            return
        question = turns[-1]["question"]

        def refuse(message: str):
            return [*chat, {"role": "assistant", "content": inert(message)}], turns[:-1]

        if not self.runtime.ready.is_set():
            yield refuse(UI_TEXT[lang]["loading"])
            return
        who = who if who is not None else self.identify(request)
        if isinstance(who, dict) or who.expired:
            yield refuse(self.signin_refused(who, lang))
            return
        answer: Answer | None = None
        try:
            for event in self._ask(who, request, question, turns):
                if isinstance(event, Answer):
                    answer = event
                else:  # an LLM's text as it grows; the verified answer replaces it
                    yield [*chat, {"role": "assistant", "content": inert(event) + " …"}], turns
        except NotInStage as exc:
            yield refuse(stage_line(lang, exc.available_from))
            return
        except RateLimited as exc:
            yield refuse(UI_TEXT[lang]["rate"].format(wait=int(exc.wait_s) + 1))
            return
        except QuestionError as exc:
            log.info("chat question refused: %s", exc)
            text = UI_TEXT[lang].get(exc.code, str(exc))
            yield refuse(text.format(max=self.settings.max_question_chars))
            return
        except BusyError:
            yield refuse(UI_TEXT[lang]["busy"])
            return
        except EmbeddingError:
            log.exception("question not answered: the embedding endpoint failed")
            yield refuse(UI_TEXT[lang]["search_down"])
            return
        if answer is None:
            return
        if answer.mode != "llm":
            # Extractive answers are ready at once; show them growing like the LLM's, briefly.
            for partial in _stream(answer.answer):
                yield [*chat, {"role": "assistant", "content": inert(partial) + " …"}], turns
                time.sleep(0.02)
        final = answer_html(answer, self.runtime.public_base(request), link=self.signed_link)
        done = [*turns[:-1], self._turn(question, answer, len(chat), who.user or "")]
        yield [*chat, {"role": "assistant", "content": final}], done

    def _turn(self, question: str, answer: Answer, message: int, asker: str) -> dict:
        """The turn behind a shown answer: which chat message shows it (error and loading
        replies have no turn, so positions and turns do not line up one to one), and its
        receipt (a rating rates this answer, once; rating it again replaces the rating)."""
        shown = answer.as_dict()
        receipt = self.runtime.receipts.issue(shown, asker)
        return {"question": question, "answer": shown, "message": message, "receipt": receipt}

    def _ask(self, who: Identity, request: gr.Request, question: str, turns: list):
        history = [{"role": "user", "content": t["question"]} for t in turns[:-1]]
        channel = "widget" if self.compact else "chat"
        return self.runtime.ask_stream(
            who, self.runtime.address(request), question, history, channel
        )

    # --- ratings -------------------------------------------------------------------------------

    def rate(self, turns: list, lang: str, who, data: gr.LikeData):
        # The rated chat message identifies its turn (see answer_question).
        index = data.index[0] if isinstance(data.index, list | tuple) and data.index else data.index
        # (the turns are the session's state: made here, or reduced by plain_turns on load)
        turn = next((t for t in turns if t.get("message") == index), None)
        if not turn or not turn.get("answer") or data.liked not in (True, False):
            return None, gr.update(visible=False)  # (un-liking: nothing to store)
        # The turns come back from the browser with a saved chat: only an answer the assistant
        # gave, unchanged, carries a receipt that fits it.
        asker = (who.user if isinstance(who, Identity) else None) or ""
        receipt = self.runtime.receipts.check(turn["answer"], turn.get("receipt", ""), asker)
        if receipt is None:
            log.info("chat rating refused: the answer's receipt does not match")
            return None, gr.update(visible=False)
        try:
            groups = who.groups if isinstance(who, Identity) else ()
            rating = 1 if data.liked else -1
            feedback_id = self.runtime.feedback.add(
                turn["answer"], rating, groups=groups, receipt=receipt
            )
        except FeedbackError as exc:
            log.error("%s", exc)
            gr.Warning(UI_TEXT[lang]["feedback_failed"])
            return None, gr.update(visible=False)
        return feedback_id, gr.update(visible=True)

    def send_comment(self, feedback_id, comment: str, lang: str):
        try:
            if feedback_id is not None and comment.strip():
                self.runtime.feedback.set_comment(feedback_id, comment)
        except FeedbackError as exc:
            log.error("%s", exc)
            gr.Warning(UI_TEXT[lang]["feedback_failed"])
        else:
            gr.Info(UI_TEXT[lang]["thanks"])
        return None, "", gr.update(visible=False)

    # --- language -------------------------------------------------------------------------------

    def set_language(self, choice: str, who):
        lang = {**LANGUAGES, **SHORT_LANGUAGES}.get(choice, "de")
        t = UI_TEXT[lang]
        return (
            lang,
            gr.update(value=self.header(lang)),
            gr.update(placeholder=t["placeholder_short" if self.compact else "placeholder"]),
            gr.update(value=t["send"]),
            gr.update(value=t["new_short" if self.compact else "new"]),
            gr.update(examples=[{"text": q} for q in EXAMPLES[lang]], placeholder=t["welcome"]),
            gr.update(label=t["comment"]),
            gr.update(value=t["comment_send"]),
            gr.update(label=t["history"]),
            gr.update(value=t["delete"]),
        )

    def choice(self, lang: str) -> str:
        """The switch's label for a language."""
        names = SHORT_LANGUAGES if self.compact else LANGUAGES
        return next(name for name, code in names.items() if code == lang)

    def header(self, lang: str) -> str:
        t = UI_TEXT[lang]
        return f"### {t['title']}" if self.compact else f"### {t['title']}\n{t['intro']}"

    # --- conversations: kept for signed-in users, in the browser for anonymous ones ------------

    def on_load(self, token: str, saved, request: gr.Request):
        """The page opens: its language, who is asking, and the last conversation back."""
        lang = browser_language(request)
        who = self.identify(request, token)
        choice = self.choice(lang)
        hidden = gr.update(visible=False)
        if isinstance(who, dict):  # a refused sign-in is said at once
            log.info("chat sign-in refused: %s", printable(who.get("error", "")))
            notice = [{"role": "assistant", "content": inert(self.signin_refused(who, lang))}]
            return choice, who, notice, [], None, hidden, hidden
        try:  # so is a rollout that has not reached this user's groups yet
            self.runtime.check_stage(who)
        except NotInStage as exc:
            notice = [{"role": "assistant", "content": inert(stage_line(lang, exc.available_from))}]
            return choice, who, notice, [], None, hidden, hidden
        if signed_in(who) and who.user:
            recent = self.runtime.conversations.recent(who.user)
            history = gr.update(
                choices=[(r["title"], r["id"]) for r in recent],
                value=recent[0]["id"] if recent else None,
                visible=bool(recent) and not self.compact,
            )
            delete = gr.update(visible=bool(recent) and not self.compact)
            loaded = self.runtime.conversations.load(who.user, recent[0]["id"]) if recent else None
            if loaded is not None:
                messages, turns = plain_messages(loaded[0]), plain_turns(loaded[1])
                return choice, who, messages, turns, recent[0]["id"], history, delete
            return choice, who, [], [], None, history, delete
        messages = plain_messages(saved.get("messages")) if isinstance(saved, dict) else []
        if messages:
            return choice, who, messages, plain_turns(saved.get("turns")), None, hidden, hidden
        return choice, who, [], [], None, hidden, hidden

    def remember(self, chat: list, turns: list, conversation, who):
        """After an answer: keep the conversation (the database for a signed-in user, the
        browser for anyone else)."""
        if not turns:
            return conversation, gr.update(), gr.update(), gr.update()
        chat = plain_messages(chat)
        if not signed_in(who):
            return conversation, {"messages": chat, "turns": turns}, gr.update(), gr.update()
        conversation = conversation or new_id()
        try:
            self.runtime.conversations.save(who.user, conversation, chat, turns)
            recent = self.runtime.conversations.recent(who.user)
        except Exception as exc:  # noqa: BLE001 - keeping history must not break the chat
            log.error("conversation not saved: %s", str(exc).splitlines()[0] if str(exc) else exc)
            return conversation, gr.update(), gr.update(), gr.update()
        choices = [(r["title"], r["id"]) for r in recent]
        visible = not self.compact
        return (
            conversation,
            gr.update(),
            gr.update(choices=choices, value=conversation, visible=visible),
            gr.update(visible=visible),
        )

    @staticmethod
    def new_chat():
        """A new conversation; the old one stays in the history (signed in) or is gone."""
        return [], [], None, None, None

    def open_conversation(self, conversation, who):
        if not (signed_in(who) and conversation):
            return gr.update(), gr.update(), gr.update()
        found = self.runtime.conversations.load(who.user, conversation)
        if found is None:
            return gr.update(), gr.update(), gr.update()
        return plain_messages(found[0]), plain_turns(found[1]), conversation

    def delete_conversation(self, conversation, who):
        """Delete the conversation shown (signed in) and start a new one."""
        if signed_in(who) and conversation:
            self.runtime.conversations.delete(who.user, conversation)
        recent = self.runtime.conversations.recent(who.user) if signed_in(who) else []
        history = gr.update(
            choices=[(r["title"], r["id"]) for r in recent], value=None, visible=bool(recent)
        )
        return [], [], None, None, history, gr.update(visible=bool(recent))

    # --- the API endpoint next to the page -------------------------------------------------------

    def chat_api(self, question: str, request: gr.Request) -> dict:
        """Answer one question; the same JSON as POST /api/ask (an `error` instead when it
        cannot be answered). The same limits and audit as every other way in."""
        address = self.runtime.address(request)
        try:
            who = resolve(
                request.headers, request.client.host if request.client else None, self.settings
            )
            return self.runtime.ask(who, address, question, [], "api").as_dict()
        except IdentityError as exc:
            return {"error": str(exc), "status": 401}
        except NotInStage as exc:
            day = exc.available_from
            line = stage_line(browser_language(request), day)
            return {"error": line, "status": 403, "available_from": day and day.isoformat()}
        except RateLimited as exc:
            return {"error": str(exc), "status": 429}
        except QuestionError as exc:
            return {"error": str(exc), "status": 422}
        except BusyError as exc:
            return {"error": str(exc), "status": 503}
        except EmbeddingError as exc:
            log.error("question not answered: %s", exc)
            return {"error": str(exc), "status": 503}
        except HTTPException as exc:  # still loading
            return {"error": str(exc.detail), "status": exc.status_code}
