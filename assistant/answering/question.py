"""What a question asks: small talk or a question, its parts, the entities it names, the kind of
value it wants. Cheap rules over the words, in German and English; nothing here is tuned to one
question's wording.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant.search.lexical import detect_language, words

# A message that is only a greeting or thanks ("hallo", "danke dir, das hat geholfen").
_SMALL_TALK = re.compile(
    r"^\W*(hallo|hi|hey|moin|servus|guten (morgen|tag|abend)|good (morning|afternoon|evening)|"
    r"hello|danke|vielen dank|dankeschön|thanks?|thank you|merci|super|perfekt|great|ok(ay)?|"
    r"tschüss|bye|ciao)\b[\w\s,.!'’:-]*$",
    re.IGNORECASE,
)
# Words that turn a greeting into a question ("hallo, wer ist die CAIO?").
_QUESTION_WORDS = re.compile(
    r"\?|\b(wer|was|wie|wann|wo|warum|welche\w*|darf|kann|muss|gibt|who|what|how|when|where|"
    r"why|which|can|may|must|is there|are there|do i|does)\b",
    re.IGNORECASE,
)
SMALL_TALK_REPLY = {
    "de": {
        "thanks": "Gern geschehen! Fragen Sie mich jederzeit wieder zu KI-Rollen und unseren "
        "KI-Regeln.",
        "hello": "Hallo! Ich beantworte Fragen zu KI-Rollen (z. B. CAIO, AI Product Owner) und "
        "zu unseren KI-Richtlinien, mit Zitaten aus den Dokumenten. Was möchten Sie wissen?",
    },
    "en": {
        "thanks": "You're welcome! Ask me any time about AI roles and our AI rules.",
        "hello": "Hello! I answer questions about AI roles (such as the CAIO or AI Product "
        "Owner) and our AI policies, quoting the documents. What would you like to know?",
    },
}

# An entity named like a product or body: an inner capital (NordGPT, DeepL, GitHub), an acronym
# of three or more capitals (CAIO, DSFA), or letters with digits (M365, GPT-4o).
_ENTITY = re.compile(
    r"\b(?:[A-Za-zÄÖÜäöü]*[a-zäöü][A-Z][\wÄÖÜäöüß]*|[A-ZÄÖÜ]{3,}s?|[A-Za-z]+-?\d+[a-z]*)\b"
)
# Money asked for: the answer must name an amount.
_MONEY_QUESTION = re.compile(
    r"\b(kost\w*|cost\w*|price\w*|prices|preis\w*|budget\w*|gehalt\w*|salar\w*|verdien\w*|"
    r"earn\w*|vergütung\w*|euro|rabatt\w*|discount\w*|prämie\w*|bonus\w*|zuschuss\w*|"
    r"allowance|fee|fees|gebühr\w*)\b",
    re.IGNORECASE,
)
MONEY_VALUE = re.compile(r"(€|\beuro\b|\beur\b|\d+\.\d{3}|gehaltsband|\bband [a-z]?\d)", re.I)
# Where a message holds several questions: after a question mark, or at "und"/"and" before a
# new question word.
_PART_BREAK = re.compile(
    r"(?<=\?)\s+|[,;]?\s+(?:und|and|oder|or|außerdem|also|plus)\s+"
    r"(?=(?:wer|was|wie|wann|wo|warum|welche\w*|darf|kann|muss|gibt es|who|what|how|when|"
    r"where|why|which|can|may|must|is there|are there|do|does)\b)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Question:
    """One analysed question."""

    text: str
    language: str
    small_talk: str = ""  # "hello" | "thanks" | "" (a real question)
    entities: tuple[str, ...] = ()
    wants_money: bool = False
    parts: tuple[str, ...] = field(default=())  # two or more when it asks several things

    @property
    def yes_no(self) -> bool:
        return bool(
            re.match(
                r"\s*(darf|dürfen|kann|können|muss|müssen|ist|sind|gibt|bekomm\w*|brauch\w*|"
                r"soll\w*|werden|wird|hat|haben|can|may|must|is|are|do|does|should|will|"
                r"am|have)\b",
                self.text,
                re.IGNORECASE,
            )
        )


def analyse(text: str) -> Question:
    """The question's language, small talk, entities, wanted value and parts."""
    language = detect_language(text)
    small_talk = ""
    if _SMALL_TALK.match(text) and not _QUESTION_WORDS.search(text) and len(words(text)) <= 12:
        lowered = text.lower()
        small_talk = (
            "thanks" if re.search(r"dank|thank|merci|super|great|perfekt", lowered) else ("hello")
        )
    entities = tuple(dict.fromkeys(m.group(0) for m in _ENTITY.finditer(text)))
    parts = tuple(p.strip(" ,;") for p in _PART_BREAK.split(text) if len(words(p)) >= 3)
    return Question(
        text=text,
        language=language,
        small_talk=small_talk,
        entities=entities,
        wants_money=bool(_MONEY_QUESTION.search(text)),
        parts=parts if len(parts) > 1 else (),
    )


def mentions(text: str, entity: str) -> bool:
    """Whether a passage names the entity (case-insensitive, as a whole word)."""
    return re.search(rf"(?<![\w-]){re.escape(entity)}(?![\w])", text, re.IGNORECASE) is not None
