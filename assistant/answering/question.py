"""What a question asks: small talk or a question, its parts, the entities it names, the kind of
value it wants. Cheap rules over the words, in German and English; nothing here is tuned to one
question's wording.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant.search.lexical import Tell, detect_language, words

# What small talk is made of: greetings, thanks or goodbyes (the same friendly line fits both),
# and words of approval ("ok cool", "Alles klar, verstanden.", "Great, that helps!"), answered
# like thanks.
_GREETINGS = (
    r"hallo|hi|hey|moin|servus|na|grüß dich|guten (morgen|tag|abend)|"
    r"good (morning|afternoon|evening)|hello|ok(ay)?"
)
_THANKS_WORDS = (
    r"dank\w*|thank|thanks|thx|merci|cheers|tschüs+|bye|ciao|bis (bald|dann|später)|see you"
)
_APPROVAL = (
    r"super|perfekt|great|top|prima|passt|cool|klasse|toll|alles klar|verstanden|got it|"
    r"perfect|awesome|nice"
)
# A message that is only small talk ("hallo", "danke dir, das hat geholfen", "Top, vielen Dank!"),
# with or without a smiley ("guten morgen :)", "danke 🙂"); a question mark makes it a question.
_SMALL_TALK = re.compile(
    rf"^\W*({_GREETINGS}|(vielen |herzlichen |besten )?({_THANKS_WORDS})|{_APPROVAL})"
    r"\b[^?]*$",
    re.IGNORECASE,
)
# Small talk is a thanks when it thanks or says goodbye, a hello when it opens with a greeting,
# and otherwise an approval, answered like thanks.
_THANKS = re.compile(
    rf"\b({_THANKS_WORDS}|hilft|hilfreich|geholfen|helps|helped|helpful)\b", re.IGNORECASE
)
_GREETING = re.compile(rf"^\W*({_GREETINGS})\b", re.IGNORECASE)
_ENGLISH_COURTESY = re.compile(
    r"\b(thanks?|thx|cheers|great|helps|helped|helpful|awesome|perfect|got it|nice|hello|"
    r"good (morning|afternoon|evening)|bye|see you|how|you|what's|whats|there|questions?)\b",
    re.IGNORECASE,
)
_GERMAN_COURTESY = re.compile(
    r"\b(dank\w*|hallo|moin|servus|tschüs+|guten|prima|passt|klasse|toll|verstanden|"
    r"hilft|geholfen|hilfreich|wie|dir|ihnen|euch|fragen?)\b",
    re.IGNORECASE,
)
# The most parts of a question searched on their own (each costs a query embedding and a
# search): people ask two or three things at once; a message of thirty "und wer …" is noise.
MAX_PARTS = 4
SHORT_ACKNOWLEDGEMENT = 4  # words: "ok cool", "Alles klar, verstanden."
# Words that turn a greeting into a question ("hallo, wer ist die CAIO?").
_QUESTION_WORDS = re.compile(
    r"\?|\b(wer|was|wie|wann|wo|warum|welche\w*|darf|kann|muss|gibt|who|what|how|when|where|"
    r"why|which|can|may|must|is there|are there|do i|does)\b",
    re.IGNORECASE,
)
# "How are you" in its everyday forms, up to the end of the message ("Wie läuft's bei dir
# heute so?", "Na, alles klar?", "how's your day going?"); "Wie läuft der Pilot?" asks something.
_HOW_ARE_YOU = re.compile(
    r"\b(wie (geht|läuft|laeuft|steht)(['’]?s| es)|wie gehts|alles (klar|gut|fit)|was geht|"
    r"was machst du( so)?|wie war dein (tag|wochenende)|"
    r"how (are|r) (you|u|things)|how['’]?s (it going|everything|things|life|your (day|week))|"
    r"how is (it going|everything|your (day|week))|how have you been|how do you do|"
    r"what['’]?s up|whats up|you (ok|okay|good|alright))"
    r"(\s+(bei (dir|ihnen|euch)|mit dir|dir|ihnen|euch|so|denn|heute|gerade|bisher|"
    r"doing|going|today|so far|there|mate))*\s*[?!.]*\s*$",
    re.IGNORECASE,
)
# A request to be asked at all, naming no topic ("Kannst du mir ein paar Fragen beantworten?",
# "I have a question", "can you help me?"): the greeting's reply says what the assistant answers.
_MAY_I_ASK = re.compile(
    r"\b((kannst|könntest|können|koennen) (du|sie) (mir )?(bitte |mal |kurz )*"
    r"((ein paar |einige |ein paar kurze |eine )?fragen? beantworten|helfen)|"
    r"ich (hätte|habe|hab) (mal |da |noch )*(eine|ein paar|einige) fragen?|"
    r"darf ich (dich|sie|euch) (mal |kurz |noch )*(etwas|was|eine frage) fragen|"
    r"bist du (da|online)|"
    r"(can|could) you (please )?(help( me)?|answer (a few |some |a couple of )?questions?)|"
    r"i (have|'ve got|got) (a|some|a few|a couple of) questions?|"
    r"(can|may) i ask (you )?(something|a question|some questions)|are you there)"
    r"(\s+(bitte|please|for me|mal|kurz))*\s*[?!.]*\s*$",
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
# Money words that ask for no amount: "der kostenlose Übersetzer" is about a free tool,
# "Gehaltsabrechnung" about payroll; and "Wer muss zustimmen, wenn wir über das Gehaltsband
# gehen?" asks for a person.
_NO_AMOUNT = re.compile(
    r"\b(kostenlos\w*|kostenfrei\w*|kostenpflichtig\w*|free|gehaltsabrechnung\w*|payroll)\b",
    re.IGNORECASE,
)
_ASKS_WHO = re.compile(r"^\W*(\w+\W+){0,3}?(wer|wem|wen|who|whom)\b", re.IGNORECASE)
# Whether something may be done asks for a yes or no, not an amount ("Darf ich die Preiskalkulation
# mit DeepL übersetzen?", "Can I paste price quotes into …?"), unless it asks how much as well;
# "What can a CAIO earn?" asks for an amount.
_MAY = re.compile(
    r"(?:^|[.!?:;]\s+)(?:(?:und|and|also|so|aber|but)\s+)?"
    r"(?:darf|dürfen|dürfte|dürften|kann|können|könnte|könnten|can|could|may)\b"
    r"|\b(?:allowed|permitted|erlaubt|zulässig)\b",
    re.IGNORECASE,
)
_HOW_MUCH = re.compile(
    r"\b(wie\s*viel\w*|wie\s+hoch|wie\s+teuer|how\s+much|how\s+expensive|was\s+kost\w*|"
    r"what\b[^?.]{0,40}\bcost)",
    re.IGNORECASE,
)
MONEY_VALUE = re.compile(r"(€|\beuro\b|\beur\b|\d+\.\d{3}|gehaltsband|\bband [a-z]?\d)", re.I)
# The kind of value a question asks for, and what a sentence that gives it contains. Only the
# phrasings that ask for nothing else ("wann" alone often asks "in which case", not for a date).
_NUMBER = (
    r"\d|\b(zwei|drei|vier|fünf|sechs|sieben|acht|neun|zehn|elf|zwölf|zwanzig|dreißig|hundert|"
    r"tausend|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|hundred|thousand)\b"
)
_TIME_UNIT = r"(minute|stunde|tag|woche|monat|jahr|quartal|hour|day|week|month|year|quarter)\w*"
_FREQUENCY = (
    r"täglich|wöchentlich|monatlich|quartalsweise|halbjährlich|jährlich|daily|weekly|monthly|"
    r"quarterly|annually|yearly|"
    # "einmal im Quartal", "zweimal pro Jahr", "once a year", "twice per month"
    r"(ein|zwei|drei|vier)mal (im|pro|je|in der) \w+|(once|twice|three times) (a|per|every) \w+|"
    # "jeden Monat", "alle sechs Monate", "every quarter", "per week"
    rf"(jede[nrs]?|alle|pro|je|every|per|each) (\w+ )?{_TIME_UNIT}"
)
_MONTH = (
    r"januar|februar|märz|april|mai|juni|juli|august|september|oktober|november|dezember|"
    r"january|february|march|may|june|july|october|december"
)
# A point in time relative to now or to an event.
_RELATIVE_TIME = (
    r"\b((am )?(nächsten|folgenden|selben|gleichen) (arbeits|werk)?tag|(the )?(next|following|same) "
    r"(working |business )?day|sofort|umgehend|unverzüglich|immediately|sobald|as soon as)\b"
)
WANTED = {
    "count": (
        r"\b(wie ?viele?|how many|anzahl|number of)\b",
        _NUMBER,
    ),
    # "Wie lang darf der Steckbrief sein?" asks for pages: any number, or a frequency.
    "duration": (
        r"\b(wie ?lange?|how long|wie oft|how often|within how)\b",
        rf"{_NUMBER}|\b({_FREQUENCY})\b",
    ),
    # "Bis wann …?" is often answered by a period ("zehn Arbeitstage vor der Sitzung"), "Ab
    # wann …?" by a point relative to an event ("sobald Sie …", "am nächsten Arbeitstag").
    "date": (
        r"\b(seit wann|bis wann|ab wann|since when|by when|until when|what date|which date|"
        r"an welchem (tag|datum)|last updated|effective from|gültig ab)\b",
        rf"\b\d{{1,2}}\.\s?\d{{1,2}}\.\s?\d{{2,4}}|\b({_MONTH})\b|\b20\d\d\b|"
        rf"({_NUMBER}).{{0,20}}\b\w*{_TIME_UNIT}|{_RELATIVE_TIME}",
    ),
    "contact": (
        r"\b(e-?mail\w*|mail ?adress\w*|telefon\w*|phone|durchwahl|extension|hotline|"
        r"erreiche?n?|reach)\b",
        r"@|\+?\d[\d /-]{5,}\d|\b(durchwahl|extension|tel\.)",
    ),
}
_WANTED = {
    kind: (re.compile(ask, re.I), re.compile(value, re.I)) for kind, (ask, value) in WANTED.items()
}


def gives(kind: str, text: str) -> bool:
    """Whether a text gives a value of the kind a question wants ("count", "duration" …)."""
    return kind in _WANTED and _WANTED[kind][1].search(text) is not None


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
    wants: str = ""  # the kind of value asked for: count | duration | date | contact | ""
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


def analyse(text: str, tell: Tell | None = None) -> Question:
    """The question's language (`tell`: see detect_language), small talk, entities, wanted value
    and parts."""
    language = detect_language(text, tell)
    small_talk = ""
    # "Moin! Wie geht's dir?", "Hallo, kannst du mir helfen?" ask nothing of the documents: the
    # courtesy question is small talk.
    courtesy = _MAY_I_ASK.sub(" ", _HOW_ARE_YOU.sub(" ", text))
    if not words(courtesy) and courtesy != text:
        small_talk = "hello"
    elif (
        _SMALL_TALK.match(courtesy)
        and not _QUESTION_WORDS.search(courtesy)
        and len(words(text)) <= 12
        # "cool tool, is Copilot approved": a word of approval opens more than thanks.
        and (
            len(words(text)) <= SHORT_ACKNOWLEDGEMENT
            or _THANKS.search(text)
            or _GREETING.match(text)
        )
    ):
        small_talk = "thanks" if _THANKS.search(text) or not _GREETING.match(courtesy) else "hello"
    if small_talk:  # too few words to tell the language by: its courtesy words tell it
        english = len(_ENGLISH_COURTESY.findall(text))
        language = "en" if english > len(_GERMAN_COURTESY.findall(text)) else language
    entities = names(text)
    parts = tuple(p.strip(" ,;") for p in _PART_BREAK.split(text) if len(words(p)) >= 3)
    return Question(
        text=text,
        language=language,
        small_talk=small_talk,
        entities=entities,
        wants_money=bool(_MONEY_QUESTION.search(_NO_AMOUNT.sub(" ", text)))
        and not _ASKS_WHO.search(text)
        and (not _MAY.search(text) or bool(_HOW_MUCH.search(text))),
        wants=next((kind for kind, (ask, _) in _WANTED.items() if ask.search(text)), ""),
        parts=parts[:MAX_PARTS] if len(parts) > 1 else (),
    )


def names(text: str) -> tuple[str, ...]:
    """The entities a text names (NordGPT, CAIO, M365), each once, in order."""
    return tuple(dict.fromkeys(m.group(0) for m in _ENTITY.finditer(text)))


def mentions(text: str, entity: str) -> bool:
    """Whether a passage names the entity (case-insensitive, as a whole word)."""
    return re.search(rf"(?<![\w-]){re.escape(entity)}(?![\w])", text, re.IGNORECASE) is not None
