"""Classifying inbound texts: carrier keywords, plain-language revocations, requests for a human."""

from __future__ import annotations

import pytest

from bot.conversation.intents import (
    OPT_OUT_KEYWORDS,
    Intent,
    classify,
    is_revocation,
    keyword_of,
    normalize,
)


@pytest.mark.parametrize("keyword", sorted(OPT_OUT_KEYWORDS))
def test_each_opt_out_keyword_opts_out(keyword: str) -> None:
    assert classify(keyword) is Intent.OPT_OUT
    assert classify(keyword.lower()) is Intent.OPT_OUT
    assert classify(keyword.title()) is Intent.OPT_OUT


@pytest.mark.parametrize(
    "message",
    [
        " Stop! ",
        "stop.",
        "STOP!!!",
        '"stop"',
        "'Stop'",
        "stop?",
        "...stop",
        "(stop)",
        "stop 🛑",
        "Stop,",
        "stop;",
        "stop:",
        "\tSTOP\n",
        "opt out",
        "Opt-Out",
        "OPT OUT.",
        "optout",
        "opt_out",
    ],
)
def test_a_lone_keyword_counts_whatever_surrounds_it(message: str) -> None:
    assert classify(message) is Intent.OPT_OUT


@pytest.mark.parametrize(
    "message",
    [
        "stop by later?",
        "don't stop",
        "Stop it was great",
        "end of day was ok",
        "I quit smoking!",
        "cancel my appointment",
        "the end",
    ],
)
def test_a_keyword_inside_a_sentence_is_not_an_opt_out(message: str) -> None:
    assert keyword_of(message) == ""
    assert classify(message) is not Intent.OPT_OUT


@pytest.mark.parametrize("keyword", ["START", "start", "Yes!", "UNSTOP"])
def test_each_opt_in_keyword_opts_in(keyword: str) -> None:
    assert classify(keyword) is Intent.OPT_IN


def test_a_lone_yes_is_reported_as_opt_in_for_the_caller_to_weigh() -> None:
    assert classify("yes") is Intent.OPT_IN
    assert classify("yes I did my walk") is Intent.OTHER


@pytest.mark.parametrize("keyword", ["HELP", "help?", "Info", "INFO."])
def test_help_and_info_ask_for_help(keyword: str) -> None:
    assert classify(keyword) is Intent.HELP


@pytest.mark.parametrize("keyword", ["CHECKIN", "check in", "Check-in!", "checkin"])
def test_each_spelling_of_check_in_checks_in(keyword: str) -> None:
    assert classify(keyword) is Intent.CHECKIN


@pytest.mark.parametrize(
    "message",
    [
        "HUMAN",
        "agent",
        "Coordinator!",
        "talk to a person",
        "can I speak to someone",
        "I want to talk to a human",
        "is this a real person?",
        "I need a real person",
        "can I chat with my coordinator",
        "could someone call me?",
        "connect me to a counselor please",
    ],
)
def test_asking_for_a_person_asks_for_a_human(message: str) -> None:
    assert classify(message) is Intent.HUMAN


@pytest.mark.parametrize(
    ("message", "keyword"),
    [
        (" Stop! ", "STOP"),
        ("opt-out", "OPTOUT"),
        ("Opt Out", "OPTOUT"),
        ("check-in", "CHECKIN"),
        ("“yes”", "YES"),
        ("👍 ok 👍", "OK"),
        ("don't", "DON'T"),
        ("2", "2"),
        ("stop now", ""),
        ("", ""),
        ("?!", ""),
    ],
)
def test_keyword_of_returns_the_single_word_or_nothing(message: str, keyword: str) -> None:
    assert keyword_of(message) == keyword


REVOCATIONS = [
    "please stop texting me",
    "stop sending me messages",
    "leave me alone",
    "just leave me alone!",
    "Leave me alone please",
    "go away",
    "don't text me anymore",
    "Don’t text me again",
    "do not contact me",
    "never message me again",
    "unsubscribe me",
    "how do I unsubscribe?",
    "take me off your list",
    "remove me from this",
    "remove me from the list please",
    "I don't want these texts",
    "i no longer wish to receive these messages",
    "I don't want to be contacted",
    "no more messages",
    "No more texts please!",
    "stop messaging me please",
    "I want to opt out",
    "opt me out",
    "stop!!! no more",
    "Stop texting me.",
    "STOP please",
    "Please stop",
    "stop stop stop",
    "ok stop it",
    "Can you stop texting me",
    "hey, stop texting me",
    "I want you to stop texting me",
    "you can stop texting me now",
    "🙄 stop texting me",
    "stop texting me i'm busy",
    "stop texting",
    "stop the reminders",
    "stop all messages",
    "how do i stop getting these texts",
    "I'd like to cancel my subscription",
    "I want to quit the program",
    "I'm done with these texts",
    "I want out",
    "I want to withdraw from the study",
    "I'd like to withdraw.",
    "I revoke my consent",
    "I no longer consent",
]


@pytest.mark.parametrize("message", REVOCATIONS)
def test_plain_language_revocations_opt_out(message: str) -> None:
    assert is_revocation(message)
    assert classify(message) is Intent.OPT_OUT


EVERYDAY_MESSAGES = [
    "stop by later?",
    "I can't stop thinking about it",
    "my son won't leave me alone at dinner, lol",
    "the messages help, don't stop",
    "no more than 3 times",
    "I stopped smoking",
    "text me tomorrow",
    "remove the stain",
    "my ex won't stop texting me",
    "I need to stop texting my ex",
    "I want to stop texting my ex",
    "you never text me anymore :(",
    "I don't want these texts to stop",
    "I unsubscribed from netflix",
    "how do I unsubscribe from netflix",
    "I opted out of dessert",
    "I'll opt out of the party",
    "remove me from the group chat",
    "cancel it",
    "just quit",
    "end it",
    "I'm done with this homework",
    "I want to withdraw money",
    "take me off the hook",
    "no more cravings today!",
    "I quit smoking",
    "ok",
    "",
]


@pytest.mark.parametrize("message", EVERYDAY_MESSAGES)
def test_everyday_messages_are_not_revocations(message: str) -> None:
    assert not is_revocation(message)


# Limits in time or frequency are preferences a coordinator can act on, not a withdrawal.
@pytest.mark.parametrize(
    "message",
    [
        "stop texting me so much",
        "please stop texting me so early",
        "don't text me tomorrow",
        "don't text me until Monday",
        "no more messages after 9pm",
        "stop the reminders for today",
        "I don't want messages at night",
    ],
)
def test_asking_for_fewer_or_later_texts_is_not_a_revocation(message: str) -> None:
    assert not is_revocation(message)


def test_a_keyword_is_read_before_any_other_meaning() -> None:
    assert classify("HELP") is Intent.HELP
    assert classify("stop texting me, I want to talk to a person") is Intent.OPT_OUT


@pytest.mark.parametrize(
    "message",
    ["how was your day", "I walked 20 minutes", "feeling anxious", "3", "🙂", ""],
)
def test_everything_else_is_other(message: str) -> None:
    assert classify(message) is Intent.OTHER


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("  Don’t   STOP\n", "don't stop"),
        ("I‘m ok", "i'm ok"),
        ("ＳＴＯＰ", "stop"),
        ("", ""),
    ],
)
def test_normalize_folds_case_apostrophes_and_spaces(raw: str, normalized: str) -> None:
    assert normalize(raw) == normalized
