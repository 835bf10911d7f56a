"""Crisis language detection and the maintained phrase file."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.crisis import CrisisMatch, CrisisPattern, CrisisPhraseError, detect, load_phrases
from bot.intents import normalize

# Messages that must alert, with the category the coordinator sees. Every pattern in
# crisis_phrases.txt needs at least one example here (test_every_phrase_has_an_example).
CRISIS_MESSAGES = [
    ("I've been thinking about suicide", "suicide"),
    ("honestly feeling suicidal tonight", "suicide"),
    ("the suicide squad movie was great", "suicide"),
    ("thinking about sucide", "suicide"),
    ("i feel suicdal", "suicide"),
    ("thinking about sewer slide", "suicide"),
    ("i want to unalive myself", "suicide"),
    ("kms", "suicide"),
    ("ugh i'm going to kms", "suicide"),
    ("I want to kill myself", "suicide"),
    ("I keep thinking about killing myself", "suicide"),
    ("I have a plan to kill my self", "suicide"),
    ("I want to end my life", "suicide"),
    ("thinking of taking my own life", "suicide"),
    ("I just want to end it all", "suicide"),
    ("I'm ready to end it", "suicide"),
    ("I want to die", "suicide"),
    ("i wanna die", "suicide"),
    ("I deserve to die", "suicide"),
    ("I just want to be dead", "suicide"),
    ("I wish I was dead", "suicide"),
    ("I wish I had never been born", "suicide"),
    ("everyone would be better off dead", "suicide"),
    ("they'd all be better off without me", "suicide"),
    ("there's no reason to live", "suicide"),
    ("I have nothing left to live for", "suicide"),
    ("there's no point living", "suicide"),
    ("life is not worth living", "suicide"),
    ("I don't want to be alive anymore", "suicide"),
    ("i dont want to be here anymore", "suicide"),
    ("I don't wanna wake up tomorrow", "suicide"),
    ("I can't go on", "suicide"),
    ("I can't go on like this", "suicide"),
    ("I can't take it anymore", "suicide"),
    ("I cannot go on.", "suicide"),
    ("I'm going to hang myself", "suicide"),
    ("I thought about slitting my wrists", "suicide"),
    ("I want to jump off a bridge", "suicide"),
    ("i should blow my brains out", "suicide"),
    ("I won't be around much longer", "suicide"),
    ("goodbye forever", "suicide"),
    ("this is my last message", "suicide"),
    ("I wish someone would kill me", "suicide"),
    ("I want to self harm", "self-harm"),
    ("I've been self-harming again", "self-harm"),
    ("I hurt myself last night", "self-harm"),
    ("I want to hurt myself", "self-harm"),
    ("I cut myself", "self-harm"),
    ("i've been cutting myself", "self-harm"),
    ("I started cutting again", "self-harm"),
    ("I have urges to cut", "self-harm"),
    ("I keep wanting to burn myself", "self-harm"),
    ("I'm starving myself", "self-harm"),
    ("I'm thinking about an overdose", "self-harm"),
    ("I overdosed last year", "self-harm"),
    ("I'm gonna od", "self-harm"),
    ("I took all my pills", "self-harm"),
    ("I'm not safe", "danger"),
    ("I don't feel safe", "danger"),
    ("It's not safe at home", "danger"),
    ("I am in danger", "danger"),
    ("my boyfriend hits me", "danger"),
    ("I'm being abused", "danger"),
    ("he threatened to kill me", "danger"),
    ("I want to hurt someone", "danger"),
]

# Everyday figures of speech that must not alert.
EVERYDAY_MESSAGES = [
    "this homework is killing me",
    "I'm dying to see the new movie",
    "the traffic killed me today",
    "that joke killed",
    "I could kill for a coffee",
    "my phone died",
    "dead tired after work",
    "I'd die of embarrassment",
    "killing it at work this week!",
    "kill the lights please",
    "I need to cut my hair",
    "I overdid it at the gym",
    "ran 5 kms this morning",
    "I can't go on Friday, can we move it?",
    "I don't want to wake up early tomorrow",
    "I don't want to live in Ohio",
    "I want to dye my hair",
    "I want to die my hair pink",
    "I want to end it with my boyfriend",
    "my plants are dying",
    "great session, thanks",
    "I took my pills this morning",
    "feeling safe and calm today",
]


def _examples_of(pattern: CrisisPattern) -> list[str]:
    """Messages in the table that this pattern matches."""
    return [text for text, _ in CRISIS_MESSAGES if pattern.regex.search(normalize(text))]


@pytest.mark.parametrize(("message", "category"), CRISIS_MESSAGES)
def test_each_crisis_message_alerts_with_its_category(message: str, category: str) -> None:
    match = detect(message)
    assert match is not None, message
    assert match.category == category


@pytest.mark.parametrize("message", EVERYDAY_MESSAGES)
def test_everyday_figures_of_speech_do_not_alert(message: str) -> None:
    assert detect(message) is None


@pytest.mark.parametrize("pattern", load_phrases(), ids=lambda p: f"line{p.line}")
def test_every_phrase_in_the_file_has_an_example_in_the_table(pattern: CrisisPattern) -> None:
    assert _examples_of(pattern), f"add an example for line {pattern.line}: {pattern.source}"


@pytest.mark.parametrize(
    "message",
    [
        "I WANT TO KILL MYSELF",
        "I want to   kill\n myself",
        "i want to kill myself!!!",
        "😭😭i want to kill myself😭",
        "“I want to kill myself”",
        "...kill myself.",
        "kill\tmyself",
    ],
)
def test_case_spacing_punctuation_and_emoji_do_not_hide_a_phrase(message: str) -> None:
    assert detect(message) == CrisisMatch(phrase="kill myself", category="suicide")


@pytest.mark.parametrize("message", ["I don’t want to be alive", "I don‘t want to be alive"])
def test_curly_apostrophes_match_like_straight_ones(message: str) -> None:
    match = detect(message)
    assert match is not None
    assert match.phrase == "don't want to be alive"


@pytest.mark.parametrize("message", ["skms", "kmsx", "selfharmony", "suicidesque"])
def test_phrases_do_not_match_inside_longer_words(message: str) -> None:
    assert detect(message) is None


@pytest.mark.parametrize("message", ["", "   ", "\n"])
def test_an_empty_message_does_not_alert(message: str) -> None:
    assert detect(message) is None


def test_the_phrase_reported_is_the_participants_words() -> None:
    assert detect("Honestly I Want To Die lol") == CrisisMatch("want to die", "suicide")


def test_the_most_serious_category_wins_when_several_match() -> None:
    assert detect("I cut myself and I want to die").category == "suicide"


def test_the_shipped_file_covers_every_category() -> None:
    assert {p.category for p in load_phrases()} == {"suicide", "self-harm", "danger"}


def test_a_custom_phrase_list_can_be_passed_in(tmp_path: Path) -> None:
    path = tmp_path / "phrases.txt"
    path.write_text("[danger]\nbears? outside\n", encoding="utf-8")
    assert detect("There are BEARS outside!", load_phrases(path)) == CrisisMatch(
        "bears outside", "danger"
    )


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [
        ("[suicide]\nkill my ?self\nend it (all\n", 3, "not a valid pattern"),
        ("# header\n\nkms\n", 3, "before any [category]"),
        ("[sadness]\nsad\n", 1, "unknown category [sadness]"),
        ("[suicide]\nkms\n\nkms\n", 4, "duplicate of line 2"),
        ("[suicide]\n(?:kms)?\n", 2, "matches an empty message"),
    ],
)
def test_a_bad_phrase_file_is_refused_naming_the_file_and_line(
    tmp_path: Path, content: str, line: int, reason: str
) -> None:
    path = tmp_path / "phrases.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CrisisPhraseError) as caught:
        load_phrases(path)
    message = str(caught.value)
    assert str(path) in message
    assert f"line {line}:" in message
    assert reason in message
