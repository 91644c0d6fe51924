"""The Gradio chat page."""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from assistant.pipeline import QuestionError
from assistant.web.render import answer_markdown, inert

if TYPE_CHECKING:
    from assistant.web.server import Runtime

EXAMPLES = [
    "Was muss ein CAIO mitbringen?",
    "What must a CAIO bring?",
    "Welche KI-Tools darf ich für vertrauliche Daten nutzen?",
    "Was macht ein AI Product Owner?",
]


def build_ui(runtime: Runtime) -> gr.Blocks:
    def respond(message: str, history: list) -> str:
        if not runtime.ready.is_set():
            return "Die Wissensbasis wird noch geladen … / The knowledge base is still loading …"
        try:
            return answer_markdown(runtime.get().ask(message))
        except QuestionError as exc:
            return inert(str(exc))

    with gr.Blocks(title="KI-Rollen-Assistent") as ui:
        gr.Markdown(
            "## KI-Rollen-Assistent\nFragen zu KI-Rollen und unseren KI-Richtlinien – mit Quellen."
        )
        gr.ChatInterface(
            respond,
            chatbot=gr.Chatbot(height=560, sanitize_html=True, render_markdown=True),
            examples=EXAMPLES,
            api_name="chat",
        )
    return ui
