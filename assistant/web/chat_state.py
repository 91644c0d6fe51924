"""The chat as the browser hands it back: the shown messages (the Chatbot's value, and an anonymous
user's saved chat in its BrowserState) and the turns behind them come from the client and are
the client's to change. Before anything of them is shown, stored or rated, it is reduced to what
this app writes: a role and text; a question, the answer as the API gives it, its receipt.

A message whose content is a file (`{"path": ...}`) would have Gradio copy that file into its
cache and hand out a link to it: any file under the working folder or the temp dir, the HR-only
documents and the app database included.
"""

from __future__ import annotations

MAX_MESSAGES = 200  # a long conversation has a few dozen
_ROLES = ("user", "assistant")


def _text(content: object) -> str | None:
    """A message's text: a string, or Gradio's blocks of text; None for anything else."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        for b in content
    ):
        return "".join(b["text"] for b in content)
    return None


def plain_messages(messages: object) -> list[dict]:
    """The messages with a role this app writes and text content; anything else is left out."""
    if not isinstance(messages, list):
        return []
    kept = []
    for message in messages[-MAX_MESSAGES:]:
        if isinstance(message, dict) and message.get("role") in _ROLES:
            text = _text(message.get("content"))
            if text is not None:
                kept.append({"role": message["role"], "content": text})
    return kept


def plain_json(value: object, depth: int = 0) -> object:
    """JSON values as an answer holds them, without anything Gradio takes for a file (a dict
    with a "path": it would copy that file into its cache when the turns go back to the
    browser) and no deeper than an answer nests."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if depth >= _DEPTH:
        return None
    if isinstance(value, list):
        return [plain_json(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): plain_json(v, depth + 1) for k, v in value.items() if k not in _FILE_KEYS}
    return None


_DEPTH = 6  # an answer: its citations, each with its quoted sentences
_FILE_KEYS = frozenset({"path", "meta"})


def plain_turns(turns: object) -> list[dict]:
    """The turns with a question (text), an answer (a dict, or None while it is asked), the
    position of its message and its receipt; anything else is left out. Whether the answer is
    one the assistant gave is for the receipt to say (ChatHandlers.rate)."""
    if not isinstance(turns, list):
        return []
    kept = []
    for turn in turns[-MAX_MESSAGES:]:
        if not isinstance(turn, dict) or not isinstance(turn.get("question"), str):
            continue
        answer = turn.get("answer")
        if answer is not None and not isinstance(answer, dict):
            continue
        plain: dict = {"question": turn["question"], "answer": plain_json(answer)}
        if isinstance(turn.get("message"), int) and not isinstance(turn["message"], bool):
            plain["message"] = turn["message"]
        if isinstance(turn.get("receipt"), str):
            plain["receipt"] = turn["receipt"]
        kept.append(plain)
    return kept
