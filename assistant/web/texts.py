"""The chat page's words in German and English, and its example questions."""

from __future__ import annotations

from datetime import date

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
        "placeholder_short": "Ihre Frage …",
        "send": "Senden",
        "new": "Neuer Chat",
        "new_short": "Neu",
        "history": "Frühere Unterhaltungen",
        "delete": "Löschen",
        "welcome": "**Willkommen!** Fragen Sie nach KI-Rollen (CAIO, AI Product Owner), unseren "
        "KI-Regeln, Schulungen oder dem Weg einer KI-Idee – zum Beispiel:",
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
        "stage_from": "Der KI-Assistent ist für Ihren Bereich ab {day} verfügbar.",
        "stage_later": "Der KI-Assistent ist für Ihren Bereich noch nicht freigegeben.",
    },
    "en": {
        "title": "AI Roles Assistant",
        "intro": "Questions about AI roles and our AI policies – every answer with sources. "
        "AI system: answers may be incomplete, please check the cited source.",
        "placeholder": "Your question, e.g. “What must a CAIO bring?”",
        "placeholder_short": "Your question …",
        "send": "Send",
        "new": "New chat",
        "new_short": "New",
        "history": "Earlier conversations",
        "delete": "Delete",
        "welcome": "**Welcome!** Ask about AI roles (CAIO, AI Product Owner), our AI rules, "
        "trainings or how to submit an AI idea – for example:",
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
        "stage_from": "The AI assistant will be available for your area from {day}.",
        "stage_later": "The AI assistant is not yet available for your area.",
    },
}
LANGUAGES = {"Deutsch": "de", "English": "en"}
# The widget is narrow: its switch says DE / EN.
SHORT_LANGUAGES = {"DE": "de", "EN": "en"}


def stage_line(lang: str, available_from: date | None) -> str:
    """The one line for someone the rollout has not reached yet, in their language."""
    t = UI_TEXT[lang if lang in UI_TEXT else "de"]
    if available_from is None:
        return t["stage_later"]
    day = available_from.strftime("%d.%m.%Y" if lang != "en" else "%Y-%m-%d")
    return t["stage_from"].format(day=day)
