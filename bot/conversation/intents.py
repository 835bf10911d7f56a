"""What an inbound text asks of the program: opt out, opt in, help, a human, a check-in, or nothing.

Keywords follow the carriers (and Twilio's Advanced Opt-Out): they count only when they are the
whole message. Plain-language revocations ("please stop texting me") are honored too, because
since April 2025 the FCC lets consumers revoke consent by any reasonable means. Where a message
is ambiguous the patterns lean towards honoring a revocation: a wrongly read opt-out costs the
participant one confirmation text and a START, a missed one sends texts to someone who said no.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum


class Intent(StrEnum):
    """The compliance or control meaning of one inbound text."""

    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    HUMAN = "human"
    CHECKIN = "checkin"
    OTHER = "other"


OPT_OUT_KEYWORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
# YES is also an ordinary answer; it is an opt-in only when the participant is opted out, and
# deciding that needs their state, which is the caller's to know.
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})
HUMAN_KEYWORDS = frozenset(
    {"HUMAN", "AGENT", "COORDINATOR", "PERSON", "OPERATOR", "REPRESENTATIVE"}
)
CHECKIN_KEYWORDS = frozenset({"CHECKIN"})

_KEYWORD_INTENTS: dict[str, Intent] = {
    **dict.fromkeys(OPT_OUT_KEYWORDS, Intent.OPT_OUT),
    **dict.fromkeys(OPT_IN_KEYWORDS, Intent.OPT_IN),
    **dict.fromkeys(HELP_KEYWORDS, Intent.HELP),
    **dict.fromkeys(HUMAN_KEYWORDS, Intent.HUMAN),
    **dict.fromkeys(CHECKIN_KEYWORDS, Intent.CHECKIN),
}

# Phones and keyboards send several apostrophes; patterns are written with the ASCII one.
_APOSTROPHES = str.maketrans({c: "'" for c in "\u2018\u2019\u201b\u02bc\u02b9\u0060\u00b4\u2032"})
# Keywords people type as two words or hyphenated, folded to the spelling carriers use.
_TWO_WORD_KEYWORDS = {"OPT OUT": "OPTOUT", "CHECK IN": "CHECKIN"}
_EDGES = re.compile(r"^[\W_]+|[\W_]+$")
_SINGLE_WORD = re.compile(r"[^\W_]+(?:['-][^\W_]+)*")


def normalize(body: str) -> str:
    """Lowercase text with one kind of apostrophe and single spaces, for pattern matching."""
    text = unicodedata.normalize("NFKC", body or "").translate(_APOSTROPHES).lower()
    return " ".join(text.split())


def keyword_of(body: str) -> str:
    """The message as one upper-case keyword (" Stop! " -> "STOP"); "" if it is several words.

    Punctuation, quotes and emoji around the word are ignored; "opt out", "opt-out", "check in"
    and "check-in" fold to OPTOUT and CHECKIN. Any single word is returned, known or not, so
    callers can also read one-word answers.
    """
    word = _EDGES.sub("", normalize(body)).upper()
    joined = " ".join(re.split(r"[\s_-]+", word))
    if joined in _TWO_WORD_KEYWORDS:
        return _TWO_WORD_KEYWORDS[joined]
    return word if _SINGLE_WORD.fullmatch(word) else ""


# --- Plain-language revocation -------------------------------------------------------------
# Patterns run over _plain_text(): normalized, emoji and symbols turned to spaces, clause
# punctuation (. ! ? , ; :) kept so an imperative can be told from a report ("stop texting me"
# against "my ex won't stop texting me").

_CLAUSE = r"(?:^|[.!?,;:]\s*)"
# Words that may stand before an imperative without changing who is being told to stop.
_LEAD = (
    r"(?:please|pls|plz|just|now|kindly|hey|hi|ok|okay|so|and|but|seriously|honestly|omg"
    r"|(?:can|could|would|will) (?:you|u)|(?:you|u) (?:can|need to|have to|should|must)"
    r"|i (?:want|need|asked|told) (?:you|u) to|i'd like (?:you|u) to|i would like (?:you|u) to"
    r"|i'm asking (?:you|u) to|i am asking (?:you|u) to|i said|i said to"
    r"|i want to|i wanna|i'd like to|i would like to|i wish to|how (?:do|can) i|how to|can i"
    r"|let me|i'm trying to|i am trying to)"
)
_CONTACT = (
    r"(?:text(?:ing)?|txt(?:ing)?|messag(?:e|ing)|msg(?:ing)?|sms(?:ing)?|contact(?:ing)?"
    r"|call(?:ing)?|email(?:ing)?|spam(?:ming)?|send(?:ing)?|bug(?:ging)?|bother(?:ing)?"
    r"|pester(?:ing)?|harass(?:ing)?)"
)
_OBJECT = r"(?:me|us|this number|my (?:phone|number|cell)(?: number)?)"
_DETERMINERS = r"(?:(?:all|of|these|the|your|ur|this|those|that|any|more|anymore)\s+)*"
_MESSAGE_WORDS = (
    r"texts?|txts?|messages?|msgs?|sms|reminders?|notifications?|alerts?|check[ -]?ins?"
    r"|prompts?|surveys?"
)
_MESSAGES = rf"(?:{_MESSAGE_WORDS})"
_PROGRAM = (
    r"(?:program|programme|study|research|trial|list|lists|mailing list|texting list"
    rf"|service|subscription|system|database|contacts?|{_MESSAGE_WORDS})"
)
_TAIL_WORD = (
    r"(?:please|pls|plz|now|already|anymore|any more|again|ever|at all|thanks|thank you|thx"
    r"|asap|immediately|right now|for good|forever|permanently|seriously|i mean it)"
)
# A request limited in time or frequency is a preference for the coordinator, not a revocation.
_LIMITED = (
    r"(?!\s+(?:today|tonight|tomorrow|this (?:morning|afternoon|evening|week|weekend)"
    r"|until|till|til|after|before|during|while|at (?:night|\d|work|school)"
    r"|on (?:weekends?|\w+days?)"
    r"|for (?:now|a (?:while|bit|day|week|few|couple)|today|tonight|the (?:day|night|week|weekend)"
    r"|\d)|in the (?:morning|afternoon|evening|night)|so (?:much|often|early|late)"
    r"|as (?:much|often)|this (?:early|late|often)|every (?:day|morning|night)|at this hour)\b)"
)
_CLAUSE_END = r"(?=\s*(?:$|[.!?,;:])|\s+" + _TAIL_WORD + r"\b)"

_REVOCATIONS = [
    # "stop texting me", "please stop sending me messages", "can you stop the reminders"
    _CLAUSE
    + rf"(?:{_LEAD}\s+)*(?:stop|quit|cease)\s+"
    + rf"(?:{_CONTACT}(?:\s+{_OBJECT}(?:\s+{_DETERMINERS}{_MESSAGES}\b)?"
    + rf"|\s+{_DETERMINERS}{_MESSAGES}\b|{_CLAUSE_END})"
    + rf"|(?:receiving|getting)\s+{_DETERMINERS}{_MESSAGES}\b"
    + rf"|{_DETERMINERS}{_MESSAGES}\b)"
    + _LIMITED,
    # "don't text me anymore", "do not contact me", "never message me again"
    _CLAUSE
    + rf"(?:{_LEAD}\s+)*(?:don't|dont|do not|never)\s+(?:ever\s+)?{_CONTACT}\s+{_OBJECT}\b"
    + _LIMITED,
    # "I don't want these texts", "I no longer wish to receive messages"
    r"\b(?:don't|dont|do not|no longer|never)\s+(?:want|wanna|wish)\s+(?:to\s+)?"
    r"(?:(?:receive|get|be sent|keep getting|be getting|keep receiving|see)\s+)?"
    + _DETERMINERS
    + _MESSAGES
    + r"\b(?!\s+to\s+(?:stop|end|go away|be over))"
    + _LIMITED,
    r"\b(?:don't|dont|do not|no longer)\s+(?:want|wanna|wish)\s+to\s+be\s+"
    r"(?:texted|contacted|messaged|called|in (?:the|this) (?:program|study))\b",
    # "no more messages" (but not "no more than 3 times")
    rf"\bno\s+more\s+(?:{_MESSAGES}|texting|messaging)\b" + _LIMITED,
    # "unsubscribe me", "how do I unsubscribe" (but not "unsubscribe from netflix")
    r"\bunsubscrib(?:e|ing)\b(?!\s+from\s+(?!(?:this|these|that|your|ur|you|here|it|all"
    r"|everything|tend|the (?:program|study|list|texts?|messages?|service))\b))",
    # "I want to opt out", "opt me out" (but not "opt out of dessert")
    r"\bopt(?:\s+|-)?(?:me\s+)?out\b(?!\s+of\s+(?!(?:this|these|that|your|ur|it|all"
    r"|everything|the (?:program|study|list|texts?|messages?|service))\b))",
    # "take me off your list", "remove me from this"
    r"\b(?:remove|take|delete|drop|unenroll|unenrol|unregister)\s+(?:me|us|this number"
    r"|my (?:phone |cell )?number|my name)\s+(?:off|from|out of)(?:\s+of)?"
    rf"(?:\s+(?:this|that|these|your|ur|the|all|it|everything|here))?(?:\s+{_PROGRAM})?"
    + _CLAUSE_END,
    r"\b(?:unenroll|unenrol|unsubscribe|unregister)\s+me\b",
    # "cancel my subscription", "cancel the texts" (a lone CANCEL is a keyword; "cancel it"
    # is as often about an appointment, so it is left to the coordinator)
    r"\bcancel\s+(?:my\s+|the\s+|this\s+|these\s+|all\s+|your\s+|ur\s+)?(?:subscription"
    r"|enrollment|enrolment|participation|membership|texts?|messages?|reminders?)\b",
    # research participants withdraw rather than unsubscribe
    r"\bwithdraw(?:ing)?\s+(?:my\s+)?(?:consent|participation)\b",
    r"\bwithdraw(?:ing)?(?:\s+me)?\s+from\s+(?:the|this|your)\s+(?:study|program|programme"
    r"|research|trial)\b",
    r"\b(?:want|wish|like|going|need) to withdraw" + _CLAUSE_END,
    r"\brevok(?:e|ing)\s+(?:my\s+|all\s+)?(?:consent|permission|authori[sz]ation)\b",
    r"\b(?:don't|dont|do not|no longer)\s+(?:give\s+(?:my\s+)?)?consent\b",
    # "I want to quit the program", "I'm done with these texts", "I want out"
    r"\b(?:quit(?:ting)?|leav(?:e|ing)|exit(?:ing)?|drop(?:ping)? out of|done with|over)\s+"
    r"(?:the|this|your|ur|these|all)\s+(?:program|programme|study|texts|messages|service"
    r"|reminders)\b",
    r"\bi want out\b(?!\s+of\b)",
]

# A whole message made only of stop words and filler: "STOP please", "stop!!! no more",
# "just leave me alone!". END, QUIT and CANCEL count only as lone keywords: "just quit",
# "end it" and "cancel it" read as other things in a behavior-change program.
_STOP_WORD = r"(?:stop|stopall|unsubscribe|optout|opt out|revoke)"
# "leave me alone" counts only as the whole message, where it can only be meant for the sender;
# inside a sentence it is usually about someone else ("my son won't leave me alone at dinner").
_DISMISSAL = r"(?:leave me alone|leave us alone|go away|get lost|fuck off|f off|piss off)"
_FILLER = (
    r"(?:please|pls|plz|just|now|right now|already|ok|okay|k|hey|seriously|for real|fr|omg|god"
    r"|i said|i mean it|thanks|thank you|thx|ty|bye|it|that|this|them|all|everything"
    r"|no more|enough|texting|messaging|texts|messages|me|asap|immediately|for good|forever"
    r"|again)"
)
# No unit is made of other units ("stop it" is stop + it), so a message splits one way only
# and a long message that fails cannot make the pattern backtrack exponentially.
_UNIT = rf"(?:{_STOP_WORD}|{_DISMISSAL}|{_FILLER})"
_WHOLE_MESSAGE = re.compile(rf"^(?=.*\b(?:{_STOP_WORD}|{_DISMISSAL})\b)(?:{_UNIT} )*{_UNIT}$")

_REVOCATION = re.compile("|".join(f"(?:{pattern})" for pattern in _REVOCATIONS))

_HUMAN = re.compile(
    r"\b(?:talk|speak|chat|text)\s+(?:to|with)\s+(?:a|an|some|the|your|my)?\s*"
    r"(?:real\s+|actual\s+|live\s+)?(?:person|human|someone|somebody|people|coordinator"
    r"|counsell?or|staff|agent|representative|rep|operator)\b"
    r"|\b(?:real|actual|live)\s+(?:person|human)\b"
    r"|\b(?:need|want|get me|give me|connect me (?:to|with)|put me through to|transfer me to)\s+"
    r"(?:a|an|the|my)\s+(?:real\s+|actual\s+|live\s+)?(?:human|person|coordinator|counsell?or"
    r"|agent|representative|staff member)\b"
    r"|\b(?:can|could|will|would|please have)\s+(?:someone|somebody|a person|a human"
    r"|a coordinator|my coordinator)\s+(?:please\s+)?(?:call|phone|contact|text)\s+me\b"
)


def _plain_text(body: str) -> str:
    """Normalized text with emoji and symbols as spaces and clause punctuation kept."""
    text = re.sub(r"[^\w\s'.!?,;:]|_", " ", normalize(body))
    return " ".join(text.split()).strip(" .!?,;:'")


def is_revocation(body: str) -> bool:
    """True if the message withdraws consent in plain language ("please stop texting me")."""
    text = _plain_text(body)
    if not text:
        return False
    words = " ".join(re.sub(r"[.!?,;:]", " ", text).split())
    return bool(_WHOLE_MESSAGE.match(words) or _REVOCATION.search(text))


def wants_human(body: str) -> bool:
    """True if the message asks to talk with a person rather than the program."""
    return _HUMAN.search(_plain_text(body)) is not None


def classify(body: str) -> Intent:
    """The intent of an inbound text; keywords first, then revocations, then requests for a human.

    A lone YES is returned as OPT_IN; it is only an opt-in for someone who is opted out, so the
    caller treats it as an ordinary answer otherwise.
    """
    intent = _KEYWORD_INTENTS.get(keyword_of(body))
    if intent is not None:
        return intent
    if is_revocation(body):
        return Intent.OPT_OUT
    if wants_human(body):
        return Intent.HUMAN
    return Intent.OTHER
