"""Reading a participant's reply to a tiny question, the way they actually type it."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot.care.assessments import (
    Parsed,
    Question,
    parse,
    parse_scale,
    prompt_hint,
    question_from_spec,
)

YES_NO = Question("yes_no")
RATING = Question("scale", minimum=1, maximum=5)
TEN_POINT = Question("scale", minimum=1, maximum=10)
MOOD = Question("scale", minimum=-3, maximum=3)
HOURS_SLEPT = Question("number", minimum=0, maximum=24)
STEPS = Question("number", minimum=0)
PILLS = Question("number")
ACTIVITY = Question("choice", choices=("walk", "call a friend", "rest"))
WALKS = Question("choice", choices=("walk", "walk with a friend"))
ROUTINE = Question("choice", choices=("10 minute walk", "rest"))
NOTE = Question("text")

# Stands for "could not be read, so the participant is asked once more".
UNCLEAR = object()


def check(question: Question, reply: str, expected: object) -> Parsed:
    parsed = parse(question, reply)
    if expected is UNCLEAR:
        assert not parsed.ok, f"{reply!r} was read as {parsed.value!r}"
        assert parsed.value is None
        assert parsed.reason, "a reply that cannot be read says why"
    else:
        assert parsed.ok, f"{reply!r} was not read: {parsed.reason}"
        assert parsed.value == expected
        assert type(parsed.value) is type(expected)
        assert parsed.reason == ""
    return parsed


YES_REPLIES = [
    "y", "Y", "yes", "Yes!", "YES", "yep", "yeah", "yup", "Yesss", "Yeahhh", "sure", "ok",
    "Okay.", "k", "of course", "Of course!", "definitely", "absolutely", "I did", "I did it!",
    "did it", "done", "All done", "yes thanks", "Yes, thank you", "yes I walked the dog",
    "  yes  ", "...yes...", "\"yes\"", "\u201cYes\u201d", "\uff39\uff25\uff33", "you bet",
    "Sure did", "👍", "👍🏽", "✅", "✔️", "👌", "yes 👍", "no problem, yes I did it",
    "no worries, done", "Yep - did my walk",
]  # fmt: skip

NO_REPLIES = [
    "n", "N", "no", "No.", "NO!", "nope", "nah", "Nooo", "not really", "Not today", "not yet",
    "didn't", "didnt", "I didn\u2019t", "I did not", "I did not do it", "I haven't", "no thanks",
    "nope, not today", "never", "forgot", "skipped it", "👎", "❌", "no ❌", "No - too tired",
]  # fmt: skip

UNSURE_REPLIES = [
    "yes and no", "maybe", "idk", "I don't know", "not sure", "kind of", "sort of", "kinda",
    "a bit", "partly", "probably", "no idea", "🤷", "🤷\u200d\u2640\ufe0f", "yes, but not today",
    "no, I did", "Y/N", "not definitely", "not ok", "no problem", "thanks", "hello?", "3",
    "", "   ", "!!!",
]  # fmt: skip


@pytest.mark.parametrize("reply", YES_REPLIES)
def test_a_yes_in_any_of_its_forms_reads_as_true(reply: str) -> None:
    check(YES_NO, reply, True)


@pytest.mark.parametrize("reply", NO_REPLIES)
def test_a_no_in_any_of_its_forms_reads_as_false(reply: str) -> None:
    check(YES_NO, reply, False)


@pytest.mark.parametrize("reply", UNSURE_REPLIES)
def test_an_unsure_mixed_or_empty_reply_is_not_taken_as_yes_or_no(reply: str) -> None:
    check(YES_NO, reply, UNCLEAR)


def test_a_thumbs_up_means_yes() -> None:
    check(YES_NO, "👍", True)


def test_no_problem_is_a_courtesy_not_a_no() -> None:
    check(YES_NO, "No problem, yes I did it", True)
    check(YES_NO, "No problem", UNCLEAR)


def test_a_reply_saying_both_yes_and_no_says_so() -> None:
    assert "both yes and no" in check(YES_NO, "yes and no", UNCLEAR).reason


SCALE_CASES = [
    (RATING, "4", 4),
    (RATING, "4/5", 4),
    (RATING, "4 / 5", 4),
    (RATING, "4 out of 5", 4),
    (RATING, "four out of five", 4),
    (RATING, "four", 4),
    (RATING, "Four!", 4),
    (RATING, "a 3", 3),
    (RATING, "3.", 3),
    (RATING, " 5 ", 5),
    (RATING, "5!!", 5),
    (RATING, "I'd say 4", 4),
    (RATING, "I\u2019d say 4", 4),
    (RATING, "4 (pretty good)", 4),
    (RATING, "⭐⭐⭐⭐", 4),
    (RATING, "⭐ ⭐ ⭐", 3),
    (RATING, "★★★☆☆", 3),
    (RATING, "4⭐", 4),
    (RATING, "4 stars", 4),
    (RATING, "4️⃣", 4),
    (RATING, "\uff14", 4),
    (RATING, "\u0664", 4),
    (RATING, "1", 1),
    (RATING, "5/5", 5),
    (RATING, "4.0", 4),
    (TEN_POINT, "ten", 10),
    (TEN_POINT, "Ten!", 10),
    (TEN_POINT, "10/10", 10),
    (TEN_POINT, "🔟", 10),
    (TEN_POINT, "1️⃣0️⃣", 10),
    (TEN_POINT, "seven", 7),
    (MOOD, "-2", -2),
    (MOOD, "+2", 2),
    (MOOD, "0", 0),
    (MOOD, "zero", 0),
]


@pytest.mark.parametrize(("question", "reply", "expected"), SCALE_CASES)
def test_a_scale_reply_reads_as_the_one_number_it_gives(
    question: Question, reply: str, expected: int
) -> None:
    check(question, reply, expected)


UNCLEAR_SCALE_REPLIES = [
    "3 or 4", "3-4", "3 - 4", "3\u20134", "3 to 4", "between 3 and 4", "3, maybe four",
    "3 ⭐⭐⭐⭐", "9", "0", "-1", "six", "2.5", "3,5", "3/4", "8/10", "4 out of 10", "good",
    "great thanks", "", "⭐⭐⭐⭐⭐⭐", "7:30",
]  # fmt: skip


@pytest.mark.parametrize("reply", UNCLEAR_SCALE_REPLIES)
def test_an_ambiguous_or_impossible_scale_reply_is_not_guessed(reply: str) -> None:
    check(RATING, reply, UNCLEAR)


@pytest.mark.parametrize(
    ("reply", "reason"), [("9", "out of range 1-5"), ("0", "out of range 1-5")]
)
def test_an_out_of_range_rating_says_the_range(reply: str, reason: str) -> None:
    assert reason in check(RATING, reply, UNCLEAR).reason


def test_a_half_point_is_not_a_whole_number_on_a_scale() -> None:
    assert "whole number" in check(RATING, "2.5", UNCLEAR).reason


def test_a_range_names_both_numbers() -> None:
    assert "3, 4" in check(RATING, "3-4", UNCLEAR).reason


NUMBER_CASES = [
    (HOURS_SLEPT, "7", 7),
    (HOURS_SLEPT, "7.5", 7.5),
    (HOURS_SLEPT, "7,5", 7.5),
    (HOURS_SLEPT, "seven", 7),
    (HOURS_SLEPT, "Seven!", 7),
    (HOURS_SLEPT, "about 7", 7),
    (HOURS_SLEPT, "~7", 7),
    (HOURS_SLEPT, "7ish", 7),
    (HOURS_SLEPT, "7 hours", 7),
    (HOURS_SLEPT, "7h", 7),
    (HOURS_SLEPT, "seven and a half", 7.5),
    (HOURS_SLEPT, "7 and a half hours", 7.5),
    (HOURS_SLEPT, "0", 0),
    (HOURS_SLEPT, "24", 24),
    (HOURS_SLEPT, "\uff17", 7),
    (HOURS_SLEPT, "  7  ", 7),
    (HOURS_SLEPT, "twenty-one", 21),
    (HOURS_SLEPT, "twenty one", 21),
    (PILLS, "2", 2),
    (PILLS, "two", 2),
    (PILLS, "none", 0),
    (PILLS, "2 out of 3", 2),
    (PILLS, "2 of 3", 2),
    (PILLS, "-1", -1),
    (STEPS, "7,500", 7500),
    (STEPS, "12,000 steps", 12000),
    (STEPS, "1,000,000", 1000000),
    (STEPS, "8000", 8000),
]


@pytest.mark.parametrize(("question", "reply", "expected"), NUMBER_CASES)
def test_a_number_reply_reads_as_the_one_number_it_gives(
    question: Question, reply: str, expected: float
) -> None:
    check(question, reply, expected)


UNCLEAR_NUMBER_CASES = [
    (HOURS_SLEPT, "7-8"),
    (HOURS_SLEPT, "7 or 8"),
    (HOURS_SLEPT, "7 hours 30 minutes"),
    (HOURS_SLEPT, "7:30"),
    (HOURS_SLEPT, "7/8"),
    (HOURS_SLEPT, "25"),
    (HOURS_SLEPT, "-1"),
    (HOURS_SLEPT, "7.5.3"),
    (HOURS_SLEPT, "12.3.2024"),
    (HOURS_SLEPT, "a lot"),
    (HOURS_SLEPT, "not much"),
    (HOURS_SLEPT, ""),
    (STEPS, "-5"),
]


@pytest.mark.parametrize(("question", "reply"), UNCLEAR_NUMBER_CASES)
def test_an_ambiguous_or_out_of_bounds_number_is_not_guessed(
    question: Question, reply: str
) -> None:
    check(question, reply, UNCLEAR)


@pytest.mark.parametrize(
    ("question", "reply", "reason"),
    [
        (HOURS_SLEPT, "25", "25 is out of range 0-24"),
        (STEPS, "-5", "-5 is below the minimum 0"),
        (Question("number", maximum=10), "11", "11 is above the maximum 10"),
        (HOURS_SLEPT, "7 or 8", "more than one number (7, 8)"),
        (HOURS_SLEPT, "lots", "no number"),
    ],
)
def test_an_unread_number_says_why(question: Question, reply: str, reason: str) -> None:
    assert reason in check(question, reply, UNCLEAR).reason


CHOICE_CASES = [
    (ACTIVITY, "1", "walk"),
    (ACTIVITY, "2", "call a friend"),
    (ACTIVITY, "3", "rest"),
    (ACTIVITY, "2.", "call a friend"),
    (ACTIVITY, "#2", "call a friend"),
    (ACTIVITY, "option 2", "call a friend"),
    (ACTIVITY, "2️⃣", "call a friend"),
    (ACTIVITY, "\uff12", "call a friend"),
    (ACTIVITY, "two", "call a friend"),
    (ACTIVITY, "walk", "walk"),
    (ACTIVITY, "Walk!", "walk"),
    (ACTIVITY, "WALK", "walk"),
    (ACTIVITY, "walked", "walk"),
    (ACTIVITY, "walking", "walk"),
    (ACTIVITY, "I'll go for a walk", "walk"),
    (ACTIVITY, "call", "call a friend"),
    (ACTIVITY, "Call a friend!", "call a friend"),
    (ACTIVITY, "called a friend", "call a friend"),
    (ACTIVITY, "friend", "call a friend"),
    (ACTIVITY, "cal", "call a friend"),
    (ACTIVITY, "rest", "rest"),
    (ACTIVITY, "I\u2019ll rest, thanks", "rest"),
    (ACTIVITY, "resting", "rest"),
    (ACTIVITY, "1 walk", "walk"),
    (ACTIVITY, "2 - call a friend", "call a friend"),
    (WALKS, "walk", "walk"),
    (WALKS, "walk with a friend", "walk with a friend"),
    (WALKS, "friend", "walk with a friend"),
    (WALKS, "2", "walk with a friend"),
    (ROUTINE, "10 minute walk", "10 minute walk"),
    (ROUTINE, "the 10 minute one", "10 minute walk"),
    (ROUTINE, "1", "10 minute walk"),
    (ROUTINE, "walk", "10 minute walk"),
]


@pytest.mark.parametrize(("question", "reply", "expected"), CHOICE_CASES)
def test_a_choice_reply_reads_as_the_option_it_names(
    question: Question, reply: str, expected: str
) -> None:
    check(question, reply, expected)


UNCLEAR_CHOICE_CASES = [
    (ACTIVITY, "4"),
    (ACTIVITY, "0"),
    (ACTIVITY, "1 or 2"),
    (ACTIVITY, "1.5"),
    (ACTIVITY, "2 walk"),
    (ACTIVITY, "walk and call a friend"),
    (ACTIVITY, "walking and calling"),
    (ACTIVITY, "both"),
    (ACTIVITY, "none"),
    (ACTIVITY, "restaurant"),
    (ACTIVITY, "swim"),
    (ACTIVITY, "wa"),
    (ACTIVITY, ""),
    (ACTIVITY, "?"),
    (WALKS, "walking"),
]


@pytest.mark.parametrize(("question", "reply"), UNCLEAR_CHOICE_CASES)
def test_a_choice_reply_naming_two_options_or_none_is_not_guessed(
    question: Question, reply: str
) -> None:
    check(question, reply, UNCLEAR)


def test_a_reply_matching_two_options_names_them() -> None:
    assert "walk, call a friend" in check(ACTIVITY, "walk and call a friend", UNCLEAR).reason


def test_a_number_past_the_last_option_says_there_is_no_such_option() -> None:
    assert "no option 4" in check(ACTIVITY, "4", UNCLEAR).reason


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Felt calm after", "Felt calm after"),
        ("  too busy today  ", "too busy today"),
        ("\u201cfine\u201d", "\u201cfine\u201d"),
        ("3", "3"),
        ("👍", "👍"),
    ],
)
def test_any_text_answers_a_text_question_as_written_but_trimmed(reply: str, expected: str) -> None:
    check(NOTE, reply, expected)


@pytest.mark.parametrize("reply", ["", "   ", "\n\t"])
def test_an_empty_reply_does_not_answer_a_text_question(reply: str) -> None:
    check(NOTE, reply, UNCLEAR)


@pytest.mark.parametrize(
    ("question", "reply"),
    [(YES_NO, "  "), (RATING, ""), (HOURS_SLEPT, " \n "), (ACTIVITY, ""), (NOTE, "")],
)
def test_an_empty_reply_is_called_empty(question: Question, reply: str) -> None:
    assert check(question, reply, UNCLEAR).reason == "empty reply"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"type": "yes_no"}, Question("yes_no")),
        ({"type": "scale", "min": 1, "max": 5}, Question("scale", 1, 5)),
        ({"type": "scale", "min": 0, "max": 10}, Question("scale", 0, 10)),
        ({"type": "scale"}, Question("scale", 1, 5)),
        ({"type": "number", "min": 0, "max": 24}, Question("number", 0, 24)),
        ({"type": "number", "min": 0}, Question("number", minimum=0)),
        ({"type": "number"}, Question("number")),
        (
            {"type": "choice", "choices": ["walk", "call a friend", "rest"]},
            Question("choice", choices=("walk", "call a friend", "rest")),
        ),
        (
            {"type": "choice", "choices": (" walk ", "rest")},
            Question("choice", choices=("walk", "rest")),
        ),
        ({"type": "text"}, Question("text")),
        (
            {"type": "scale", "min": 1, "max": 5, "thanks": "Thanks!", "clarified": True},
            Question("scale", 1, 5),
        ),
    ],
)
def test_a_program_files_assessment_becomes_a_question(
    spec: dict[str, Any], expected: Question
) -> None:
    assert question_from_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "no 'type'"),
        ({"type": "rating"}, "use one of yes_no, scale, choice, number, text"),
        ({"type": "scale", "min": 5, "max": 1}, "'min' (5) must be below 'max' (1)"),
        ({"type": "scale", "min": 3, "max": 3}, "must be below"),
        ({"type": "scale", "min": "1", "max": 5}, "'min' must be a whole number"),
        ({"type": "scale", "min": 1, "max": 5.5}, "'max' must be a whole number"),
        ({"type": "scale", "min": True, "max": 5}, "whole number"),
        ({"type": "number", "min": 10, "max": 0}, "must be below"),
        ({"type": "yes_no", "min": 1}, "takes no 'min' or 'max'"),
        ({"type": "scale", "choices": ["a", "b"]}, "only a choice question takes 'choices'"),
        ({"type": "choice"}, "at least two choices"),
        ({"type": "choice", "choices": ["walk"]}, "at least two choices"),
        ({"type": "choice", "choices": "walk, rest"}, "should be a list"),
        ({"type": "choice", "choices": ["walk", ""]}, "every choice should be some text"),
        ({"type": "choice", "choices": ["walk", 2]}, "every choice should be some text"),
        ({"type": "choice", "choices": ["Walk", "walk!"]}, "two choices read the same"),
        ({"type": "choice", "choices": ["walk", "!!"]}, "every choice needs some words"),
    ],
)
def test_a_broken_assessment_is_refused_in_plain_words(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        question_from_spec(spec)


def test_an_assessment_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(ValueError, match="should be a mapping"):
        question_from_spec(["scale", 1, 5])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("question", "hint"),
    [
        (RATING, "Please reply with a number from 1 to 5."),
        (MOOD, "Please reply with a number from -3 to 3."),
        (YES_NO, "Please reply YES or NO."),
        (ACTIVITY, "Please reply with 1, 2 or 3 (1 walk, 2 call a friend, 3 rest)."),
        (WALKS, "Please reply with 1 or 2 (1 walk, 2 walk with a friend)."),
        (HOURS_SLEPT, "Please reply with a number from 0 to 24."),
        (STEPS, "Please reply with a number of 0 or more."),
        (Question("number", maximum=10), "Please reply with a number up to 10."),
        (PILLS, "Please reply with a number."),
        (NOTE, "Please reply with a few words."),
    ],
)
def test_the_clarifying_prompt_says_what_a_good_answer_looks_like(
    question: Question, hint: str
) -> None:
    assert prompt_hint(question) == hint


@pytest.mark.parametrize(
    ("reply", "expected"),
    [("4", 4), ("4/5", 4), ("four!", 4), ("a 3", 3), ("hmm not sure", None), ("3 or 4", None),
     ("9", None), ("2.5", None)],
)  # fmt: skip
def test_parse_scale_still_answers_with_a_number_or_none(reply: str, expected: int | None) -> None:
    assert parse_scale(reply, 1, 5) == expected
