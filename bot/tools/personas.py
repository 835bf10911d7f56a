"""Simulated participants for `bot simulate`: how people answer (or do not) a text program.

A persona sees each message its phone receives, with the question it asks when it asks one
(the assessment stored with the delivery), and decides what to text back and when. All its
choices come from its own seeded random generator, so a simulation is reproducible.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from bot.care.assessments import parse, question_from_spec
from bot.clock import as_utc

# Replies no question of type scale, yes_no, choice or number can read (and no keyword).
GARBLED = ("hmm", "not sure", "idk", "what?", "kinda??", "meh")
FREE_TEXT = (
    "a short walk after dinner",
    "we read a book together",
    "busy day but ok",
    "played outside for a bit",
    "made pancakes",
)
# Daytime window (local) in which people text on their own initiative (CHECKIN, STOP).
DAYTIME = (time(9, 0), time(20, 0))


@dataclass(frozen=True)
class Received:
    """One message as the participant's phone shows it."""

    at: datetime
    body: str
    kind: str  # the delivery's kind: welcome, event, reminder, state, reply, confirmation, ...
    question: Mapping[str, Any] | None = None  # the assessment it asks (a reminder: its prompt's)
    asks: int | None = None  # the delivery that asked the question (a reminder: its prompt)


@dataclass(frozen=True)
class Text:
    """A text the persona will send at `at`; `retry_with` is sent if the bot asks again."""

    at: datetime
    body: str
    retry_with: str | None = None


class Persona(ABC):
    """A participant who answers questions with some probability and some delay."""

    name: ClassVar[str]
    summary: ClassVar[str]

    def __init__(self, *, rng: random.Random, enrolled_at: datetime, timezone: str) -> None:
        self.rng = rng
        self.enrolled_at = as_utc(enrolled_at)
        self.zone = ZoneInfo(timezone)
        self.quiet_from: datetime | None = None  # after this moment the persona never texts
        self.stress = rng.choice((2, 3, 3, 4))  # how they answer a state question, give or take
        self.answering: set[int] = set()  # questions answered or about to be
        self.held: Text | None = None  # an answer put off until the next message arrives

    # --- what a subclass tunes -------------------------------------------------------------

    @abstractmethod
    def answer_probability(self, moment: datetime) -> float:
        """The chance of answering a question received at `moment`."""

    @abstractmethod
    def latency(self, moment: datetime) -> timedelta:
        """How long after receiving a question the answer is sent."""

    def late_probability(self) -> float:
        """The chance an answer is put off until the next message arrives (hours later)."""
        return 0.0

    def garble_probability(self) -> float:
        """The chance an answer is unreadable at first (then a clean one when asked again)."""
        return 0.0

    def plan(self, until: datetime) -> list[Text]:
        """Texts sent on the persona's own initiative before `until`, decided at enrollment."""
        return []

    # --- shared behaviour ------------------------------------------------------------------

    def receive(self, message: Received) -> list[Text]:
        """What to text back, if anything, to a message received.

        An answer put off earlier goes out a few minutes after this message: the new text is
        what reminds the participant of the question they meant to answer.
        """
        texts: list[Text] = []
        if self.held is not None:
            held, self.held = self.held, None
            texts = self._unless_stopped(replace(held, at=message.at + _minutes(2, 20, self.rng)))
        if message.question is None or message.asks in self.answering:
            return texts
        if self.rng.random() >= self.answer_probability(message.at):
            return texts
        if message.asks is not None:
            self.answering.add(message.asks)
        if message.question.get("state_key"):
            clean = self.state_answer(message.question)
        else:
            clean = answer_for(message.question, self.rng)
        answer = Text(message.at + self.latency(message.at), clean)
        if message.question.get("type") != "text" and self.rng.random() < self.garble_probability():
            garbled = self.rng.choice(GARBLED)
            if not parse(question_from_spec(message.question), garbled).ok:
                answer = Text(answer.at, garbled, retry_with=clean)
        if self.rng.random() < self.late_probability():
            self.held = answer
            return texts
        return texts + self._unless_stopped(answer)

    def _unless_stopped(self, text: Text) -> list[Text]:
        return [text] if self.quiet_from is None or text.at < self.quiet_from else []

    def state_answer(self, question: Mapping[str, Any]) -> str:
        """An answer to a state question (stress, 1-5): the persona's level, give or take one."""
        if question.get("type") != "scale":
            return answer_for(question, self.rng)
        level = self.stress + self.rng.choice((-1, 0, 0, 1))
        return str(min(max(level, int(question["min"])), int(question["max"])))

    def answered(self, sent: Text, replies: list[Received]) -> list[Text]:
        """React to the bot's immediate replies to `sent`: answer cleanly when asked again."""
        if sent.retry_with is None or not replies:
            return []
        return self._unless_stopped(
            Text(replies[-1].at + _minutes(1, 10, self.rng), sent.retry_with)
        )

    def day(self, moment: datetime) -> float:
        """Days since enrollment (fractional)."""
        return (as_utc(moment) - self.enrolled_at).total_seconds() / 86400

    def daytime_on(self, day: int) -> datetime:
        """A random daytime moment on local day `day` after enrollment (day 0 is enrollment's)."""
        local_day: date = self.enrolled_at.astimezone(self.zone).date() + timedelta(days=day)
        start = datetime.combine(local_day, DAYTIME[0], tzinfo=self.zone)
        span = (datetime.combine(local_day, DAYTIME[1], tzinfo=self.zone) - start).total_seconds()
        moment = as_utc(start + timedelta(seconds=self.rng.uniform(0, span)))
        return max(moment, self.enrolled_at + timedelta(minutes=5))


def _minutes(low: float, high: float, rng: random.Random) -> timedelta:
    return timedelta(minutes=rng.uniform(low, high))


def answer_for(question: Mapping[str, Any], rng: random.Random) -> str:
    """A clean, sensible answer to `question` (an assessment spec), as a person would type it."""
    kind = question.get("type")
    if kind == "scale":
        low, high = int(question["min"]), int(question["max"])
        values = list(range(low, high + 1))
        # Most people rate their day middling to good; few pick the bottom of the scale.
        weights = [1 + 2 * i for i in range(len(values))]
        return str(rng.choices(values, weights=weights)[0])
    if kind == "yes_no":
        return rng.choices(["yes", "no", "Yes!", "nope"], weights=[6, 2, 1, 1])[0]
    if kind == "choice":
        return str(rng.choice(list(question["choices"])))
    if kind == "number":
        low = question.get("min")
        high = question.get("max")
        low = 0 if low is None else int(low)
        high = low + 10 if high is None else int(high)
        return str(rng.randint(low, high))
    return rng.choice(FREE_TEXT)


class Engaged(Persona):
    name = "engaged"
    summary = "answers about 90% of questions within minutes to an hour"

    def answer_probability(self, moment: datetime) -> float:
        return 0.9

    def latency(self, moment: datetime) -> timedelta:
        if self.rng.random() < 0.7:
            return _minutes(2, 20, self.rng)
        return _minutes(20, 60, self.rng)


class Sporadic(Persona):
    name = "sporadic"
    summary = "answers about half, sometimes only after the next message, sometimes garbled"

    def answer_probability(self, moment: datetime) -> float:
        return 0.5

    def latency(self, moment: datetime) -> timedelta:
        return _minutes(5, 90, self.rng)

    def late_probability(self) -> float:
        return 0.35

    def garble_probability(self) -> float:
        return 0.25


class Disengaging(Persona):
    name = "disengaging"
    summary = "answers well in week 1, then less and less, silent from week 4"

    RATES: ClassVar[tuple[float, ...]] = (0.9, 0.55, 0.25)

    def answer_probability(self, moment: datetime) -> float:
        week = int(self.day(moment) // 7)
        return self.RATES[week] if week < len(self.RATES) else 0.0

    def latency(self, moment: datetime) -> timedelta:
        week = int(self.day(moment) // 7)
        return _minutes(3, 45 * (1 + week), self.rng)


class Stops(Engaged):
    name = "stops"
    summary = "engaged, then texts STOP around day 10 and never answers again"

    def __init__(self, *, rng: random.Random, enrolled_at: datetime, timezone: str) -> None:
        super().__init__(rng=rng, enrolled_at=enrolled_at, timezone=timezone)
        self.quiet_from = self.daytime_on(rng.choice((9, 10, 10, 11)))

    def plan(self, until: datetime) -> list[Text]:
        assert self.quiet_from is not None
        return [Text(self.quiet_from, "STOP")] if self.quiet_from < until else []


class CheckIn(Engaged):
    name = "checkin"
    summary = "engaged, and texts CHECKIN once a week"

    def plan(self, until: datetime) -> list[Text]:
        weeks = int(self.day(until) // 7) + 1
        moments = [self.daytime_on(7 * week + self.rng.randint(2, 5)) for week in range(weeks)]
        return [Text(moment, "CHECKIN") for moment in moments if moment < until]


PERSONAS: dict[str, type[Persona]] = {
    persona.name: persona for persona in (Engaged, Sporadic, Disengaging, Stops, CheckIn)
}
MIX = "mix"  # every persona in equal shares


def persona_names(choice: str, count: int) -> list[str]:
    """The persona of each of `count` participants: `choice`, or all of them in turn for "mix"."""
    if choice == MIX:
        names = list(PERSONAS)
        return [names[i % len(names)] for i in range(count)]
    if choice not in PERSONAS:
        known = ", ".join([*PERSONAS, MIX])
        raise ValueError(f"no persona named {choice!r} (personas: {known})")
    return [choice] * count


def make_persona(
    name: str, *, seed: int, index: int, enrolled_at: datetime, timezone: str
) -> Persona:
    """Participant `index`'s persona, with a random generator of its own derived from `seed`."""
    rng = random.Random(f"tend-simulate:{seed}:{index}")
    return PERSONAS[name](rng=rng, enrolled_at=enrolled_at, timezone=timezone)
