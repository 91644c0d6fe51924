"""The Gradio chat: full page at / and a compact widget at /embed. Layout and wiring only; what
happens on each event is in chat.py."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from assistant.web.chat import ChatHandlers, browser_secret
from assistant.web.runtime import Runtime
from assistant.web.texts import EXAMPLES, LANGUAGES, SHORT_LANGUAGES, UI_TEXT

CSS = """
.source-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 4px 10px; margin: 6px 0; }
.source-card summary { cursor: pointer; }
.source-card .passage { font-size: 0.92em; margin: 6px 0; }
.source-card mark { background: #fde68a; padding: 0 2px; }
.source-card.flash { outline: 2px solid #f59e0b; }
.passage-table { border-collapse: collapse; margin: 4px 0; }
.passage-table td, .passage-table th { border: 1px solid var(--border-color-primary); padding: 2px 6px; vertical-align: top; }
.source-meta { font-size: 0.8em; opacity: 0.8; }
a.cite { text-decoration: none; font-weight: 600; }
.notice { font-size: 0.85em; border-left: 3px solid #f59e0b; padding-left: 8px; }
.answer-mode { font-size: 0.75em; opacity: 0.7; }
.outdated { font-size: 0.75em; background: #fee2e2; color: #991b1b; border-radius: 4px; padding: 0 5px; margin-left: 4px; }
/* One way to start over: the "New chat" button (Gradio's own trash icon is hidden). */
#chat .icon-button-wrapper.top-panel { display: none; }
/* The language switch stays on one line, also in the narrow widget. */
#language .wrap { flex-wrap: nowrap; flex-direction: row; gap: 4px; }
#language label { padding: 2px 8px; white-space: nowrap; }
#new-chat { white-space: nowrap; min-width: max-content; }
#question textarea { min-width: 8rem; }
"""

# Gradio scopes CSS= to the page's content; the page's own margins need a style of their own.
HEAD = """<style>
/* Table cells break between words, never inside one; a wide table scrolls inside its answer. */
#chat .message table { display: block; max-width: 100%; overflow-x: auto; }
#chat .message td, #chat .message th { word-break: normal !important; overflow-wrap: normal !important; hyphens: auto; }
@media (max-width: 640px) {
  .gradio-container > .main { padding-left: 6px !important; padding-right: 6px !important; }
  #chat .message-row { margin-left: 0 !important; margin-right: 0 !important; max-width: 100% !important; }
  #chat .message { max-width: 100% !important; }
  #header { flex: 1 1 100% !important; min-width: 100% !important; }
}
/* The widget's iframe (380x600) and small screens: no room for the page's margins. */
@media (max-height: 640px), (max-width: 420px) {
  .gradio-container > .main { padding: 6px 8px !important; }
  .gradio-container .contain { gap: 6px !important; }
  #header h3 { font-size: 1rem; margin: 0; white-space: nowrap; }
}
</style>"""

# On load: a click on [n] opens source card n under its answer and scrolls to it (the chat
# stays; "Dokument öffnen" in the card opens the document).
CITE_JS = """() => {
    document.addEventListener("click", (event) => {
        const link = event.target.closest ? event.target.closest("a.cite") : null;
        if (!link) { return; }
        const id = (link.getAttribute("href") || "").replace(/^#/, "");
        const card = id ? document.getElementById(id) : null;
        if (!card) { return; }
        event.preventDefault();
        event.stopPropagation();
        card.open = true;
        card.scrollIntoView({block: "center"});
        card.classList.add("flash");
        setTimeout(() => card.classList.remove("flash"), 1500);
    }, true);
}"""

# The load event's JavaScript: the `token` parameter of the page URL's fragment (#token=...).
_TOKEN_FROM_FRAGMENT = """(token, saved) => {
    const found = new URLSearchParams(window.location.hash.slice(1)).get("token");
    return [found || token || "", saved];
}"""


@dataclass
class Page:
    """The components of one chat page."""

    lang: gr.State
    turns: gr.State
    who: gr.State
    feedback_id: gr.State
    conversation: gr.State
    saved: gr.BrowserState
    token: gr.Textbox
    header: gr.Markdown
    switch: gr.Radio
    chatbot: gr.Chatbot
    box: gr.Textbox
    send: gr.Button
    new: gr.Button
    history: gr.Dropdown
    delete: gr.Button
    comment_row: gr.Row
    comment: gr.Textbox
    comment_send: gr.Button


def build_ui(runtime: Runtime, compact: bool = False) -> gr.Blocks:
    """The chat page (compact=True: the widget for an iframe)."""
    handlers = ChatHandlers(runtime, compact)
    with gr.Blocks(title="KI-Rollen-Assistent", fill_height=True) as ui:
        page = _layout(handlers, runtime, compact)
        _wire_questions(page, handlers)
        _wire_feedback(page, handlers)
        _wire_conversations(ui, page, handlers)
        gr.api(handlers.chat_api, api_name="chat")  # for gradio_client and scripts
    # Several conversations are answered at once (Gradio's default is one per event); a bounded
    # queue tells the rest to wait instead of piling up.
    ui.queue(default_concurrency_limit=8, max_size=256)
    return ui


# Long: Gradio layout: the page's components in page order.
def _layout(handlers: ChatHandlers, runtime: Runtime, compact: bool) -> Page:
    t = UI_TEXT["de"]
    states = {
        "lang": gr.State("de"),
        "turns": gr.State([]),
        "who": gr.State(None),  # the session's Identity (or {"error": ...}), set on page load
        "feedback_id": gr.State(None),
        "conversation": gr.State(None),  # the saved conversation shown (signed-in users)
        # An anonymous user's last conversation, in their browser only (encrypted).
        "saved": gr.BrowserState(
            None, storage_key="ki-rollen-chat", secret=browser_secret(runtime)
        ),
        # The widget's token arrives in the URL fragment (never sent to a server, so never in
        # an access log or a Referer); the load event's JavaScript hands it over.
        "token": gr.Textbox(visible=False),
    }
    with gr.Row(equal_height=True):
        header = gr.Markdown(handlers.header("de"), elem_id="header")
        switch = gr.Radio(
            list(SHORT_LANGUAGES if compact else LANGUAGES),
            value=handlers.choice("de"),
            show_label=False,
            container=False,
            elem_id="language",
            scale=0,
            min_width=130 if compact else 230,
        )
    with gr.Row(visible=True):
        history = gr.Dropdown(
            label=t["history"], choices=[], visible=False, scale=4, elem_id="history"
        )
        delete = gr.Button(t["delete"], visible=False, scale=0, elem_id="delete-conversation")
    chatbot = gr.Chatbot(
        elem_id="chat",
        height=400 if compact else 520,
        sanitize_html=True,
        render_markdown=True,
        placeholder=t["welcome"],
        examples=[{"text": q} for q in EXAMPLES["de"]],
        feedback_options=("Like", "Dislike"),
        buttons=[],  # no English "Copy message" tooltips; text can be selected and copied
        show_label=False,
    )
    with gr.Row(equal_height=True):
        box = gr.Textbox(
            placeholder=t["placeholder_short" if compact else "placeholder"],
            show_label=False,
            container=False,
            scale=6,
            elem_id="question",
            max_length=4000,
            autofocus=not compact,
        )
        send = gr.Button(t["send"], variant="primary", scale=0, elem_id="send", min_width=70)
        new = gr.Button(
            t["new_short"] if compact else t["new"],
            scale=0,
            elem_id="new-chat",
            min_width=60 if compact else 120,
        )
    with gr.Row(visible=False, elem_id="comment-row") as comment_row:
        comment = gr.Textbox(label=t["comment"], scale=8, elem_id="comment", max_length=2000)
        comment_send = gr.Button(t["comment_send"], scale=1, elem_id="comment-send")
    return Page(
        **states,
        header=header,
        switch=switch,
        chatbot=chatbot,
        box=box,
        send=send,
        new=new,
        history=history,
        delete=delete,
        comment_row=comment_row,
        comment=comment,
        comment_send=comment_send,
    )


def _wire_questions(p: Page, h: ChatHandlers) -> None:
    def remembered(event):
        event.then(
            h.remember,
            [p.chatbot, p.turns, p.conversation, p.who],
            [p.conversation, p.saved, p.history, p.delete],
            api_name=False,
        )

    for trigger in (p.box.submit, p.send.click):
        answered = trigger(
            h.add_question, [p.box, p.chatbot, p.turns], [p.box, p.chatbot, p.turns], queue=False
        ).then(h.answer_question, [p.chatbot, p.turns, p.lang, p.who], [p.chatbot, p.turns],
               api_name=False)  # fmt: skip
        remembered(answered)
    picked = p.chatbot.example_select(
        h.pick_example, [p.chatbot, p.turns], [p.chatbot, p.turns], queue=False
    ).then(h.answer_question, [p.chatbot, p.turns, p.lang, p.who], [p.chatbot, p.turns],
           api_name=False)  # fmt: skip
    remembered(picked)
    p.switch.change(
        h.set_language,
        [p.switch, p.who],
        [p.lang, p.header, p.box, p.send, p.new, p.chatbot, p.comment, p.comment_send,
         p.history, p.delete],
        api_name=False,
    )  # fmt: skip


def _wire_feedback(p: Page, h: ChatHandlers) -> None:
    p.chatbot.like(h.rate, [p.turns, p.lang, p.who], [p.feedback_id, p.comment_row], api_name=False)
    p.comment_send.click(
        h.send_comment,
        [p.feedback_id, p.comment, p.lang],
        [p.feedback_id, p.comment, p.comment_row],
        api_name=False,
    )


def _wire_conversations(ui: gr.Blocks, p: Page, h: ChatHandlers) -> None:
    p.new.click(
        h.new_chat,
        None,
        [p.chatbot, p.turns, p.feedback_id, p.conversation, p.saved],
        queue=False,
        api_name=False,
    )
    p.history.input(
        h.open_conversation,
        [p.history, p.who],
        [p.chatbot, p.turns, p.conversation],
        api_name=False,
    )
    p.delete.click(
        h.delete_conversation,
        [p.conversation, p.who],
        [p.chatbot, p.turns, p.conversation, p.feedback_id, p.history, p.delete],
        api_name=False,
    )
    ui.load(
        h.on_load,
        [p.token, p.saved],
        [p.switch, p.who, p.chatbot, p.turns, p.conversation, p.history, p.delete],
        api_name=False,
        js=_TOKEN_FROM_FRAGMENT,
    )
