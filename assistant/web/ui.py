"""The Gradio chat: full page at / and a compact widget at /embed. Formatting and wiring only."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import gradio as gr
from fastapi import HTTPException

from assistant.answer import Answer, Citation
from assistant.embeddings import EmbeddingError
from assistant.feedback import FeedbackError
from assistant.identity import (
    ANONYMOUS,
    Identity,
    IdentityError,
    from_login,
    from_proxy,
    resolve,
    verify_token,
)
from assistant.pipeline import QuestionError
from assistant.web.limits import BusyError
from assistant.web.render import answer_html, file_url, inert
from assistant.web.runtime import RateLimited, Runtime

log = logging.getLogger(__name__)

EXAMPLES = {
    "de": [
        "Was muss ein CAIO mitbringen?",
        "Welche KI-Tools sind bei uns freigegeben?",
        "Wie reiche ich eine KI-Idee ein?",
    ],
    "en": [
        "What must a CAIO bring?",
        "Which AI tools am I allowed to use?",
        "What does an AI Product Owner do?",
    ],
}

UI_TEXT = {
    "de": {
        "title": "KI-Rollen-Assistent",
        "intro": "Fragen zu KI-Rollen und unseren KI-Richtlinien – jede Antwort mit Quellen. "
        "KI-System: Antworten können unvollständig sein, bitte die zitierte Quelle prüfen.",
        "placeholder": "Ihre Frage, z. B. „Was muss ein CAIO mitbringen?“",
        "send": "Senden",
        "clear": "Unterhaltung löschen",
        "comment": "Kommentar zu Ihrer Bewertung (optional)",
        "comment_send": "Kommentar senden",
        "thanks": "Danke für Ihr Feedback!",
        "loading": "Die Wissensbasis wird noch geladen … bitte gleich noch einmal versuchen.",
        "empty": "Bitte geben Sie eine Frage ein.",
        "too_long": "Die Frage ist zu lang – bitte kürzer fassen (höchstens {max} Zeichen).",
        "not_text": "Die Frage muss Text sein.",
        "signin": "Anmeldung abgelehnt: {reason}. Bitte öffnen Sie den Assistenten erneut über "
        "das Intranet.",
        "token_expired": "die Anmeldung ist abgelaufen",
        "token_signature": "die Anmeldung ist ungültig (falsche Signatur)",
        "token_invalid": "die Anmeldung ist ungültig",
        "token_unconfigured": "Anmeldungen sind auf diesem Server nicht eingerichtet",
        "feedback_failed": "Ihre Bewertung konnte nicht gespeichert werden (Speicher nicht "
        "beschreibbar). Der Assistent beantwortet weiter Fragen.",
        "search_down": "Die Suche ist gerade nicht erreichbar – bitte versuchen Sie es später "
        "noch einmal.",
        "rate": "Sie haben gerade sehr viele Fragen gestellt – bitte warten Sie {wait} Sekunden.",
        "busy": "Der Assistent ist gerade ausgelastet – bitte versuchen Sie es gleich noch einmal.",
    },
    "en": {
        "title": "AI Roles Assistant",
        "intro": "Questions about AI roles and our AI policies – every answer with sources. "
        "AI system: answers may be incomplete, please check the cited source.",
        "placeholder": "Your question, e.g. “What must a CAIO bring?”",
        "send": "Send",
        "clear": "Clear conversation",
        "comment": "Comment on your rating (optional)",
        "comment_send": "Send comment",
        "thanks": "Thank you for your feedback!",
        "loading": "The knowledge base is still loading … please try again in a moment.",
        "empty": "Please enter a question.",
        "too_long": "The question is too long – please shorten it (at most {max} characters).",
        "not_text": "The question must be text.",
        "signin": "Sign-in refused: {reason}. Please open the assistant again from the intranet.",
        "token_expired": "the sign-in has expired",
        "token_signature": "the sign-in is invalid (wrong signature)",
        "token_invalid": "the sign-in is invalid",
        "token_unconfigured": "sign-in is not set up on this server",
        "feedback_failed": "Your rating could not be saved (storage not writable). The assistant "
        "keeps answering questions.",
        "search_down": "The search is unreachable right now – please try again later.",
        "rate": "You have asked a lot of questions just now – please wait {wait} seconds.",
        "busy": "The assistant is busy right now – please try again in a moment.",
    },
}
LANGUAGES = {"Deutsch": "de", "English": "en"}

CSS = """
.source-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 4px 10px; margin: 6px 0; }
.source-card summary { cursor: pointer; }
.source-card .passage { font-size: 0.92em; margin: 6px 0; }
.source-card mark { background: #fde68a; padding: 0 2px; }
.source-meta { font-size: 0.8em; opacity: 0.8; }
a.cite { text-decoration: none; font-weight: 600; }
.notice { font-size: 0.85em; border-left: 3px solid #f59e0b; padding-left: 8px; }
.answer-mode { font-size: 0.75em; opacity: 0.7; }
.outdated { font-size: 0.75em; background: #fee2e2; color: #991b1b; border-radius: 4px; padding: 0 5px; margin-left: 4px; }
"""


# The load event's JavaScript: the `token` parameter of the page URL's fragment (#token=...).
_TOKEN_FROM_FRAGMENT = """() => {
    const found = new URLSearchParams(window.location.hash.slice(1)).get("token");
    return found || "";
}"""


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


def build_ui(runtime: Runtime, compact: bool = False) -> gr.Blocks:
    """The chat page (compact=True: the widget for an iframe)."""
    settings = runtime.settings

    def identify(request: gr.Request | None, token: str = "") -> Identity | dict:
        """Who this browser session belongs to: the widget's token (from the page URL's
        `#token=`, or `?token=`), the login, or the SSO proxy; a dict with the reason when a
        presented token is refused."""
        if request is None:
            return ANONYMOUS
        token = token or (request.query_params or {}).get("token")
        try:
            if token:
                return verify_token(token, settings)
        except IdentityError as exc:
            return {"error": str(exc), "code": exc.code}
        client = request.client.host if request.client else None
        return (
            from_login(getattr(request, "username", None), settings)
            or from_proxy(request.headers, client, settings)
            or ANONYMOUS
        )

    def signed_link(citation: Citation, base: str) -> str:
        """The document link with a signature, so a restricted document opens for its reader."""
        url, _, page = file_url(citation, base).partition("#")
        return f"{url}?{runtime.links.sign(citation.source)}" + (f"#{page}" if page else "")

    def add_question(message: str, chat: list, turns: list):
        message = (message or "").strip()
        if not message:
            return "", chat, turns
        shown = {"role": "user", "content": inert(message)}
        return "", [*chat, shown], [*turns, {"question": message, "answer": None}]

    def answer_question(chat: list, turns: list, lang: str, who, request: gr.Request):
        if not turns or turns[-1]["answer"] is not None:
            yield chat, turns
            return
        question = turns[-1]["question"]
        history = [{"role": "user", "content": t["question"]} for t in turns[:-1]]

        def refuse(message: str):
            return [*chat, {"role": "assistant", "content": inert(message)}], turns[:-1]

        if not runtime.ready.is_set():
            yield refuse(UI_TEXT[lang]["loading"])
            return
        who = who if who is not None else identify(request)
        if isinstance(who, dict) or who.expired:
            yield refuse(signin_refused(who, lang))
            return
        answer = None
        channel = "widget" if compact else "chat"
        try:
            # An LLM's text streams as it is generated; the verified answer replaces it.
            for event in runtime.ask_stream(
                who, runtime.address(request), question, history, channel
            ):
                if isinstance(event, Answer):
                    answer = event
                else:
                    yield [*chat, {"role": "assistant", "content": inert(event) + " …"}], turns
        except RateLimited as exc:
            yield refuse(UI_TEXT[lang]["rate"].format(wait=int(exc.wait_s) + 1))
            return
        except QuestionError as exc:
            yield refuse(
                UI_TEXT[lang].get(exc.code, str(exc)).format(max=settings.max_question_chars)
            )
            return
        except BusyError:
            yield refuse(UI_TEXT[lang]["busy"])
            return
        except EmbeddingError:
            log.exception("question not answered: the embedding endpoint failed")
            yield refuse(UI_TEXT[lang]["search_down"])
            return
        base = runtime.public_base(request)
        if answer.mode != "llm":
            # Extractive answers are ready at once; show them growing like the LLM's, briefly.
            for partial in _stream(answer.answer):
                yield [*chat, {"role": "assistant", "content": inert(partial) + " …"}], turns
                time.sleep(0.02)
        final = answer_html(answer, base, link=signed_link)
        # Remember which chat message shows this answer: error and loading replies have no turn,
        # so chat positions and turns do not line up one to one.
        done = [
            *turns[:-1],
            {"question": question, "answer": answer.as_dict(), "message": len(chat)},
        ]
        yield [*chat, {"role": "assistant", "content": final}], done

    def rate(turns: list, lang: str, data: gr.LikeData):
        # The rated chat message identifies its turn (see answer_question).
        index = data.index if isinstance(data.index, int) else data.index[0]
        turn = next((t for t in turns if t.get("message") == index), None)
        if not turn or not turn.get("answer"):
            return None, gr.update(visible=False)
        if data.liked not in (True, False):  # un-liking: nothing to store
            return None, gr.update(visible=False)
        try:
            feedback_id = runtime.feedback.add(turn["answer"], 1 if data.liked else -1)
        except FeedbackError as exc:
            log.error("%s", exc)
            gr.Warning(UI_TEXT[lang]["feedback_failed"])
            return None, gr.update(visible=False)
        return feedback_id, gr.update(visible=True)

    def send_comment(feedback_id, comment: str, lang: str):
        try:
            if feedback_id is not None and comment.strip():
                runtime.feedback.set_comment(feedback_id, comment)
        except FeedbackError as exc:
            log.error("%s", exc)
            gr.Warning(UI_TEXT[lang]["feedback_failed"])
        else:
            gr.Info(UI_TEXT[lang]["thanks"])
        return None, "", gr.update(visible=False)

    def set_language(choice: str):
        lang = LANGUAGES.get(choice, "de")
        t = UI_TEXT[lang]
        return (
            lang,
            gr.update(value=f"### {t['title']}" if compact else f"### {t['title']}\n{t['intro']}"),
            gr.update(placeholder=t["placeholder"]),
            gr.update(value=t["send"]),
            gr.update(value=t["clear"]),
            gr.update(examples=[{"text": q} for q in EXAMPLES[lang]]),
            gr.update(label=t["comment"]),
            gr.update(value=t["comment_send"]),
        )

    def signin_refused(who: Identity | dict, lang: str) -> str:
        code = who["code"] if isinstance(who, dict) else "expired"
        return UI_TEXT[lang]["signin"].format(reason=UI_TEXT[lang][f"token_{code}"])

    def on_load(token: str, request: gr.Request):
        lang = browser_language(request)
        who = identify(request, token)
        # A refused sign-in is said at once, not only when the first question is refused.
        notice = (
            [{"role": "assistant", "content": inert(signin_refused(who, lang))}]
            if isinstance(who, dict)
            else gr.update()
        )
        return ("Deutsch" if lang == "de" else "English"), who, notice

    def pick_example(chat: list, turns: list, data: gr.SelectData):
        return add_question(data.value["text"], chat, turns)[1:]

    t = UI_TEXT["de"]
    with gr.Blocks(title="KI-Rollen-Assistent", fill_height=True) as ui:
        lang = gr.State("de")
        turns = gr.State([])
        who = gr.State(None)  # the session's Identity (or {"error": ...}), set on page load
        # The widget's token arrives in the URL fragment (never sent to a server, so never in an
        # access log or a Referer); the load event's JavaScript hands it to on_load.
        token_box = gr.Textbox(visible=False)
        feedback_id = gr.State(None)
        with gr.Row(equal_height=True):
            # The widget is narrow: its header is the title alone.
            header = gr.Markdown(
                f"### {t['title']}" if compact else f"### {t['title']}\n{t['intro']}",
                elem_id="header",
            )
            switch = gr.Radio(
                list(LANGUAGES),
                value="Deutsch",
                show_label=False,
                container=False,
                elem_id="language",
                scale=0,
                min_width=120 if compact else 200,
            )
        chatbot = gr.Chatbot(
            elem_id="chat",
            height=420 if compact else 600,
            sanitize_html=True,
            render_markdown=True,
            examples=[
                {"text": q} for q in EXAMPLES["de"] + ([] if compact else EXAMPLES["en"][:1])
            ],
            feedback_options=("Like", "Dislike"),
            buttons=["copy"],
            show_label=False,
        )
        with gr.Row():
            box = gr.Textbox(
                placeholder=t["placeholder"],
                show_label=False,
                container=False,
                scale=8,
                elem_id="question",
                max_length=4000,
                autofocus=not compact,
            )
            send = gr.Button(t["send"], variant="primary", scale=1, elem_id="send")
            clear = gr.Button(t["clear"], scale=1, elem_id="clear")
        with gr.Row(visible=False, elem_id="comment-row") as comment_row:
            comment = gr.Textbox(label=t["comment"], scale=8, elem_id="comment", max_length=2000)
            comment_send = gr.Button(t["comment_send"], scale=1, elem_id="comment-send")

        submit_events = [box.submit, send.click]
        for event in submit_events:
            event(add_question, [box, chatbot, turns], [box, chatbot, turns], queue=False).then(
                answer_question, [chatbot, turns, lang, who], [chatbot, turns], api_name=False
            )
        chatbot.example_select(pick_example, [chatbot, turns], [chatbot, turns], queue=False).then(
            answer_question, [chatbot, turns, lang, who], [chatbot, turns], api_name=False
        )
        chatbot.like(rate, [turns, lang], [feedback_id, comment_row], api_name=False)
        comment_send.click(
            send_comment,
            [feedback_id, comment, lang],
            [feedback_id, comment, comment_row],
            api_name=False,
        )
        clear.click(
            lambda: ([], [], None), None, [chatbot, turns, feedback_id], queue=False, api_name=False
        )
        switch.change(
            set_language,
            [switch],
            [lang, header, box, send, clear, chatbot, comment, comment_send],
            api_name=False,
        )
        ui.load(
            on_load, [token_box], [switch, who, chatbot], api_name=False, js=_TOKEN_FROM_FRAGMENT
        )

        def chat(question: str, request: gr.Request) -> dict:
            """Answer one question; the same JSON as POST /api/ask (an `error` instead when it
            cannot be answered). The same limits and audit as every other way in."""
            address = runtime.address(request)
            try:
                who = resolve(
                    request.headers, request.client.host if request.client else None, settings
                )
                return runtime.ask(who, address, question, [], "api").as_dict()
            except IdentityError as exc:
                return {"error": str(exc), "status": 401}
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

        gr.api(chat, api_name="chat")  # for gradio_client and scripts
    # Several conversations are answered at once (Gradio's default is one per event); a bounded
    # queue tells the rest to wait instead of piling up.
    ui.queue(default_concurrency_limit=8, max_size=256)
    return ui
