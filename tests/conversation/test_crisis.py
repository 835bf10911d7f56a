"""Crisis language detection and the maintained phrase file.

`.venv/bin/python -m tests.conversation.test_crisis` prints recall and false alarms on the
development sets below and on the held-out set in tests/conversation/crisis_heldout.py, with
every miss and false alarm.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bot.conversation.crisis import (
    CrisisMatch,
    CrisisPattern,
    CrisisPhraseError,
    detect,
    evaluate,
    load_phrases,
    prepare,
)
from tests.conversation.crisis_heldout import HELDOUT_CRISIS, HELDOUT_EVERYDAY

# Development sets: the phrase list is tuned against these (and must get them all right).
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
    # --- plans and means
    ("i've been stockpiling my pills", "suicide"),
    ("im saving up my meds for when im ready", "suicide"),
    ("been hoarding my antidepressants for a month", "suicide"),
    ("i have enough pills to do it", "suicide"),
    ("got a gun and im thinking about using it", "suicide"),
    ("i keep thinking about putting a gun to my head", "suicide"),
    ("i held the gun in my mouth last night", "suicide"),
    ("tied a noose in my closet", "suicide"),
    ("bought a rope for tonight", "suicide"),
    ("i put a rope around my neck", "suicide"),
    ("i'm standing on the edge of the roof", "suicide"),
    ("im on the bridge right now", "suicide"),
    ("sitting on the train tracks", "suicide"),
    ("going to lie down on the tracks", "suicide"),
    ("thinking of stepping in front of a train", "suicide"),
    ("i want to throw myself off the balcony", "suicide"),
    ("jumped off the bridge in my head a hundred times today", "suicide"),
    ("gonna walk into traffic", "suicide"),
    ("i want to crash my car on purpose", "suicide"),
    ("already wrote my note for my mom", "suicide"),
    ("i left a goodbye note on the counter", "suicide"),
    ("i've written letters to everyone for after i'm gone", "suicide"),
    ("said my goodbyes to everyone", "suicide"),
    ("i gave away my things so nobody has to deal with them", "suicide"),
    ("giving away all my stuff this week", "suicide"),
    ("i have a plan to end it", "suicide"),
    ("i've made a plan to kill myself", "suicide"),
    ("i know exactly how i would do it", "suicide"),
    ("i picked a date to do it", "suicide"),
    ("this is the last time you'll hear from me", "suicide"),
    ("looked up how to tie a noose", "suicide"),
    ("i want to drown myself in the lake", "suicide"),
    # --- slang, euphemism, texting
    ("thinking about unaliving myself", "suicide"),
    ("i want to be unalived", "suicide"),
    ("sewer slide is all i think about", "suicide"),
    ("ngl i wanna kms", "suicide"),
    ("imma kms", "suicide"),
    ("i should kys fr", "suicide"),
    ("im gonna kys", "suicide"),
    ("i want to off myself", "suicide"),
    ("offing myself tonight", "suicide"),
    ("i want to self delete", "suicide"),
    ("just want to delete myself", "suicide"),
    ("i want to end myself", "suicide"),
    ("gonna yeet myself off a bridge lol", "suicide"),
    ("i want to commit sudoku", "suicide"),
    ("i want to k1ll myself", "suicide"),
    ("feeling su1cidal", "suicide"),
    ("I WANT TO KILL MYSELF RN", "suicide"),
    ("i wanna kil myself", "suicide"),
    ("i want to kill myselfff", "suicide"),
    ("i wanna not be here anymore", "suicide"),
    ("i'm not going to be here much longer", "suicide"),
    ("i dont want to be around anymore", "suicide"),
    ("thinking about ending things", "suicide"),
    ("i want to end it all 😔😔", "suicide"),
    ("i wanna end it rn", "suicide"),
    # --- passive ideation
    ("i wish i could sleep forever", "suicide"),
    ("i want to go to sleep and not wake up", "suicide"),
    ("i hope i dont wake up", "suicide"),
    ("praying i don't wake up tomorrow", "suicide"),
    ("i wish i wouldnt wake up", "suicide"),
    ("i'm so tired of living", "suicide"),
    ("tired of being alive", "suicide"),
    ("sick of existing tbh", "suicide"),
    ("im exhausted of being alive", "suicide"),
    ("everyone would be better off without me", "suicide"),
    ("my family would be happier without me", "suicide"),
    ("the world would be better if i wasnt here", "suicide"),
    ("it would be easier for everyone if i was gone", "suicide"),
    ("i'm a burden", "suicide"),
    ("i feel like such a burden to everyone", "suicide"),
    ("im just a burden to my kids", "suicide"),
    ("whats the point of living", "suicide"),
    ("what's the point anymore", "suicide"),
    ("what is the point of life", "suicide"),
    ("dont want to be here anymore", "suicide"),
    ("i really dont want to exist", "suicide"),
    ("cant go on anymore", "suicide"),
    ("i cant keep going like this", "suicide"),
    ("i can't do this anymore", "suicide"),
    ("i want it all to stop", "suicide"),
    ("i just want everything to stop", "suicide"),
    ("i need the pain to stop", "suicide"),
    ("nobody would miss me", "suicide"),
    ("no one would care if i died", "suicide"),
    ("i don't see a way out", "suicide"),
    ("there's no way out anymore", "suicide"),
    ("i want to disappear", "suicide"),
    ("i wish i could just disappear forever", "suicide"),
    ("i'm done with life", "suicide"),
    ("done living tbh", "suicide"),
    ("i'm giving up on life", "suicide"),
    ("life isn't worth living anymore", "suicide"),
    ("i hope i die in my sleep", "suicide"),
    ("i hope i get hit by a car", "suicide"),
    ("i should just die", "suicide"),
    ("i'd be better off dead", "suicide"),
    ("WANT TO DIEEEE", "suicide"),
    ("i wanna dieee 😭😭", "suicide"),
    ("i dont want to live anymore", "suicide"),
    ("i dont wanna live anymore", "suicide"),
    ("i wish i was never born", "suicide"),
    ("wish i were dead tbh", "suicide"),
    ("i can't cope anymore", "suicide"),
    ("i can't take this pain anymore", "suicide"),
    ("no point in going on", "suicide"),
    ("i want to give up on everything", "suicide"),
    ("i'm ready to die", "suicide"),
    # --- self-harm, past and present
    ("cut myself again last night", "self-harm"),
    ("i relapsed and cut", "self-harm"),
    ("i cut again tonight", "self-harm"),
    ("relapsed with self harm", "self-harm"),
    ("i burned myself on purpose", "self-harm"),
    ("i've been burning myself with cigarettes", "self-harm"),
    ("ive been hurting myself again", "self-harm"),
    ("i keep hurting myself", "self-harm"),
    ("scratched myself until i bled", "self-harm"),
    ("i scratch my skin till it bleeds", "self-harm"),
    ("i hit myself again", "self-harm"),
    ("i keep hitting myself in the head", "self-harm"),
    ("i punch myself when im angry", "self-harm"),
    ("i've been harming myself", "self-harm"),
    ("sh urges are bad tonight", "self-harm"),
    ("i did sh again", "self-harm"),
    ("relapsed on self harm", "self-harm"),
    ("i have fresh cuts", "self-harm"),
    ("my arms are covered in cuts", "self-harm"),
    ("i cut my wrist last night", "self-harm"),
    ("i cut my thighs", "self-harm"),
    ("got the razor out again", "self-harm"),
    ("i used a blade on my legs", "self-harm"),
    ("i made myself bleed", "self-harm"),
    ("i made myself throw up", "self-harm"),
    ("im making myself puke after every meal", "self-harm"),
    ("i want to cut so bad", "self-harm"),
    ("the urge to cut is strong", "self-harm"),
    ("i took too many pills", "self-harm"),
    ("i think i overdosed", "self-harm"),
    ("gonna od tonight", "self-harm"),
    ("cut my self lastnight", "self-harm"),
    ("i banged my head against the wall until it bled", "self-harm"),
    ("took a whole bottle of pills", "self-harm"),
    ("i swallowed a handful of my sleeping pills", "self-harm"),
    ("took the whole box of my meds", "self-harm"),
    ("i took 30 tylenol", "self-harm"),
    ("took 100 of my pills", "self-harm"),
    ("i just took like twenty pills", "self-harm"),
    ("im cutting again", "self-harm"),
    # --- danger from other people
    ("he hit me", "danger"),
    ("my husband hit me last night", "danger"),
    ("my bf punched me", "danger"),
    ("she slapped me again", "danger"),
    ("he kicked me in the stomach", "danger"),
    ("my partner choked me", "danger"),
    ("he strangled me last night", "danger"),
    ("he pinned me down", "danger"),
    ("he threw me against the wall", "danger"),
    ("he pushed me down the stairs", "danger"),
    ("he's been beating me", "danger"),
    ("my dad beats me", "danger"),
    ("she threatened to hurt me", "danger"),
    ("he says he'll kill me if i leave", "danger"),
    ("he told me he would kill me", "danger"),
    ("i'm scared he'll hurt me", "danger"),
    ("im afraid hes going to hurt the kids", "danger"),
    ("i'm terrified of my husband", "danger"),
    ("scared of my boyfriend", "danger"),
    ("home isn't safe", "danger"),
    ("i dont feel safe at home", "danger"),
    ("someone is following me", "danger"),
    ("a man has been following me", "danger"),
    ("i think im being followed", "danger"),
    ("my ex is stalking me", "danger"),
    ("he raped me", "danger"),
    ("i was raped", "danger"),
    ("i got sexually assaulted", "danger"),
    ("he sexually abused me", "danger"),
    ("he touched me without my consent", "danger"),
    ("he forced himself on me", "danger"),
    ("my uncle molested me", "danger"),
    ("he's hurting my daughter", "danger"),
    ("my boyfriend hits my kids", "danger"),
    ("someone is hurting my child", "danger"),
    ("he abuses the kids", "danger"),
    ("i'm in an abusive relationship", "danger"),
    ("its domestic violence", "danger"),
    ("he put his hands on me again", "danger"),
    ("he has a gun and hes threatening us", "danger"),
    ("i'm hiding from him", "danger"),
    ("i want to kill him", "danger"),
    ("i'm going to stab him", "danger"),
    ("HE HIT ME", "danger"),
    ("my gf hits me when she drinks", "danger"),
    ("he choked me out", "danger"),
    ("thinking about neck rope lol", "suicide"),
    ("i wish i didn't exist", "suicide"),
    ("you won't have to worry about me much longer", "suicide"),
    ("make sure someone takes my dog when i'm dead", "suicide"),
    ("i've been getting my affairs in order", "suicide"),
    ("what's the most painless way to die", "suicide"),
    ("how many sleeping pills would it take", "suicide"),
    ("i keep thinking about using the rope on myself", "suicide"),
    ("i could just shoot myself", "suicide"),
    ("i want to cut my throat", "suicide"),
    ("thinking about driving into a wall on the way home", "suicide"),
    ("there are cuts all over my arms", "self-harm"),
    ("i'm scared for my life", "danger"),
    ("he grabbed me by the hair", "danger"),
    ("she locked me in the basement", "danger"),
    ("he made me have sex with him", "danger"),
    ("someone spiked my drink", "danger"),
    ("my boyfriend is violent when he drinks", "danger"),
    ("im scared i'll hurt my baby", "danger"),
    ("i keep having thoughts about hurting my baby", "danger"),
    ("i want to shoot up the school", "danger"),
    ("i cant do this no more", "suicide"),
    ("lowkey wanna die fr fr", "suicide"),
    ("i dont trust myself right now", "suicide"),
    ("i need help im scared of what i might do", "suicide"),
    ("i keep thinking about jumping", "suicide"),
    ("i've been thinking about death a lot", "suicide"),
    ("intrusive thoughts about jumping in front of a train", "suicide"),
    ("someone's been watching my house at night", "danger"),
]

# Everyday messages, figures of speech above all, that must not alert.
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
    # from the brief: figures of speech that are not about the writer's safety
    "ugh this traffic is killing me",
    "im dying to see it!!",
    "dead tired",
    "killing it at work",
    "i could kill for a pizza",
    "kids are driving me crazy today",
    "shoot me a text",
    "im dead 😂",
    "cut the cake",
    "cutting back on sugar",
    "wanna hang out later?",
    "the heat is unbearable today",
    "i'm done with homework",
    "knock it out",
    "take a shot at it",
    "over my dead body",
    "bored to death",
    "the baby wouldn't stop hitting his brother all morning",
    # revocations and texts about texts
    "can you please stop texting me",
    "stop texting me pls",
    "my ex won't stop texting me",
    "stop sending these",
    "please stop",
    "u up?",
    # killing / dying / dead
    "i'm so dead lmao",
    "dying laughing rn 😂",
    "that test killed me",
    "my legs are killing me",
    "laptop died mid essay",
    "the car battery died",
    "i'd kill for a nap",
    "kill two birds with one stone",
    "killing time at the airport",
    "you're killing me smalls",
    "you killed that presentation",
    "i murdered that workout",
    "i nearly died laughing",
    "this cake is to die for",
    "i'm dying of heat",
    "dying my hair blue",
    "my grandpa died last year",
    "dead serious",
    "deadline is friday",
    "i'm dead on my feet",
    "the plant is dying",
    "RIP my sleep schedule",
    "my mom is going to kill me",
    "my dad will kill me if i fail",
    "i'd die without coffee",
    "i can't live without coffee",
    "go kill it at your game!",
    # shooting, hanging, cutting, burning, hurting
    "she's a knockout",
    "knocked it out of the park",
    "shoot, i forgot",
    "shoot me an email",
    "took a shot of tequila",
    "got my flu shot today",
    "hang in there!",
    "hanging the christmas lights",
    "she hung up on me lol",
    "can u cut the onions?",
    "cut me some slack",
    "cutting carbs this month",
    "got a paper cut lol",
    "i burned dinner",
    "i'm burnt out from work",
    "sunburned myself at the beach",
    "i hurt my back lifting",
    "hurt myself at the gym lol",
    "i cut myself shaving",
    "i burned myself on the stove",
    "i shot myself in the foot with that email",
    "drowning myself in coffee today",
    "my kid hit his head on the table",
    "the toddler bit me",
    "my toddler hit me in the face with a toy",
    "the baby kicked me all night",
    "he beat me at chess again",
    "she beats me at every game",
    "our team has been beaten in every game",
    "i keep getting hit on at the gym",
    # hit me up, following, safe
    "he hit me up yesterday",
    "she hit me back with a text",
    "hit me up when ur done",
    "it just hit me how late it is",
    "that song hits different",
    "following you on twitter",
    "thanks for following up",
    "my cat follows me everywhere",
    "he's following the recipe",
    "i'm being followed on instagram by bots lol",
    "he keeps following me on tiktok",
    "safe travels!",
    "got home safe",
    "i feel safe with my therapist",
    "home safe and sound",
    "i'm safe, just tired",
    "scared of spiders",
    "im scared of the dentist",
    "afraid of heights",
    "i'm scared for my exam",
    # places and plans
    "we walked across the bridge at sunset",
    "stuck in traffic on the bridge",
    "the bridge is closed for repairs",
    "the train was late again",
    "i'm on the train, be there in 10",
    "we're on the roof watching fireworks",
    "i'm on the roof fixing the gutter",
    "i left a note on the fridge",
    "wrote my notes for class",
    "i gave away my old couch",
    "saying goodbye to my coworker who's leaving",
    "said goodbye to grandma at the airport",
    "goodbye for now, see u tmrw",
    "the pills are working i think",
    "took my pills",
    "i took all my meds today",
    "pharmacy says my refill is ready",
    "i'm saving up for a car",
    "saving money for christmas",
    "i stocked up on snacks",
    "water gun fight with the kids",
    "i have a plan for the weekend",
    "i picked a date for the wedding",
    # tired, done, over it, the point
    "i'm tired of this weather",
    "sick of winter",
    "tired of waiting for the bus",
    "i'm so done with this week",
    "done with work for today",
    "over it lol",
    "i give up on this recipe",
    "whats the point of this assignment",
    "what's the point of a meeting if no one comes",
    "i want the rain to stop",
    "i want the noise to stop",
    "i can't go on the trip",
    "cant go on tuesday",
    "i can't do this homework",
    "can't keep going to these late meetings",
    "i could sleep for days",
    "i need a nap so bad",
    "drowning in emails",
    "this week is a nightmare",
    "the kids are driving me nuts",
    "i'm losing my mind with this paperwork",
    "i just want the week to end",
    "ending my shift now",
    "i ended things with my girlfriend",
    "going to end it with my boyfriend",
    "can't wait to end this semester",
    "need to catch the bus at 8",
    "gonna catch the bus tonight 🚌",
    "i just want to catch the bus",
    "gonna catch the bus home",
    "i have to catch the bus to work",
    "i want to disappear into my bed all weekend",
    "this burden of paperwork lol",
    # ordinary check-ins
    "that was a close call lol",
    "i'm good thanks",
    "had a rough day but better now",
    "feeling a bit down today",
    "i'm sad today",
    "anxious about the interview",
    "couldn't sleep last night",
    "ur so funny",
    "u r the best",
    "sooooo tired today",
    "hahahaha",
    "ok 👍",
    "I DONT WANT TO GO TO WORK",
    "i dont want to be late",
    "i dont want to be here, this party is lame",
    "i'm collecting my prescriptions from the pharmacy",
    "i'm saving some pills for the trip",
    "we have a gun safe in the garage",
    "tied the rope to the tree for the swing",
    "i'm on the edge of my seat with this show",
    "there's no way out of this lease lol",
    "what's the point of me going if you're not there",
    "he pushed me to apply for the job",
    "she threw me a surprise party",
    "he grabbed me a coffee on his way",
    "my daughter is watching me cook",
    "how many pills do i take for a headache",
    "quickest way to get downtown?",
    "i'm scared of my mom finding out about the tattoo",
    "they kicked me out of the group chat lol",
    "they were watching me play soccer",
    "he was watching me cook dinner",
    "no worries i'll catch the bus",
    "i could catch the bus instead",
    "im in danger of failing chem lol",
    "i don't feel safe driving in this snow",
    "i'm not safe to drive after that wine",
    "new scars from my surgery are healing",
    "nobody would miss me at practice anyway",
    "thinking about dying my hair red",
    "i don't trust myself with a credit card lol",
]


def _examples_of(pattern: CrisisPattern) -> list[str]:
    """Messages in the table that this pattern matches."""
    return [
        text
        for text, _ in CRISIS_MESSAGES
        if any(pattern.regex.search(reading.text) for reading in prepare(text))
    ]


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


@pytest.mark.parametrize(
    ("message", "phrase"),
    [
        ("i wanna dieeee", "wanna dieeee"),
        ("IM GONNA KMS", "kms"),
        ("i dont wanna be here anymore", "dont wanna be here anymore"),
        ("k1ll myself", "k1ll myself"),
        ("kill😭myself", "kill😭myself"),
        ("i took all my 💊", "took all my 💊"),
        ("ur all better off without me", "better off without me"),
        ("i cannot go on", "cannot go on"),
        ("i want to kill myselffff", "kill myselffff"),
        ("i want to killll myself", "killll myself"),
    ],
)
def test_texting_spellings_are_read_and_reported_as_written(message: str, phrase: str) -> None:
    match = detect(message)
    assert match is not None, message
    assert match.phrase == phrase


def test_a_reading_keeps_track_of_where_each_word_came_from() -> None:
    [reading] = prepare("OMG u wont believe it 😭😭 im SO done")
    assert reading.text == "omg you won't believe it i'm so done"
    start = reading.text.index("you won't")
    assert reading.source_of(start, start + len("you won't")) == "u wont"


@pytest.mark.parametrize("message", ["😭😭", "👍", " 😂 "])
def test_a_message_of_emoji_only_does_not_alert(message: str) -> None:
    assert prepare(message) == []
    assert detect(message) is None


def test_sets_are_big_enough_and_apart() -> None:
    assert len(CRISIS_MESSAGES) >= 150 and len(EVERYDAY_MESSAGES) >= 150
    assert len(HELDOUT_CRISIS) >= 60 and len(HELDOUT_EVERYDAY) >= 60
    categories = {"suicide", "self-harm", "danger"}
    assert {c for _, c in CRISIS_MESSAGES} == categories
    assert {c for _, c in HELDOUT_CRISIS} == categories
    development = {t.lower() for t, _ in CRISIS_MESSAGES} | {t.lower() for t in EVERYDAY_MESSAGES}
    held_out = {t.lower() for t, _ in HELDOUT_CRISIS} | {t.lower() for t in HELDOUT_EVERYDAY}
    assert not development & held_out, "a held-out message is also a development message"


def test_the_development_sets_are_all_right() -> None:
    result = evaluate(CRISIS_MESSAGES, EVERYDAY_MESSAGES)
    assert result.missed == ()
    assert result.false_alarms == ()
    assert result.wrong_category == ()
    assert (result.recall, result.false_alarm_rate) == (1.0, 0.0)


def test_the_held_out_set_is_mostly_right() -> None:
    # Thresholds are the figures measured when the list was last changed (71/80 caught, 0/75
    # false alarms), not targets: if the list changes and these fail, report the new figures,
    # do not tune the list to the held-out messages.
    result = evaluate(HELDOUT_CRISIS, HELDOUT_EVERYDAY)
    assert result.recall >= 0.88, result.summary()
    assert result.false_alarm_rate <= 0.02, result.summary()


_LONG_CHAT = "hey, just checking in. the kids are driving me crazy and work is killing me lol. "


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ((_LONG_CHAT * 30)[:1600], None),
        ((_LONG_CHAT * 30)[:1580] + " i want to die", CrisisMatch("want to die", "suicide")),
        (("i'm such a " * 200)[:1600], None),
        (("he's been " * 200)[:1600], None),
        (("a " * 800)[:1600], None),
        ("sooo" * 400, None),
        ("😭" * 1600, None),
        ("x" * 1600, None),
    ],
    ids=[
        "chat",
        "chat-then-crisis",
        "repeated-such-a",
        "repeated-hes-been",
        "a-a-a",
        "sooo",
        "emoji",
        "one-word",
    ],
)
def test_a_long_message_is_searched(message: str, expected: CrisisMatch | None) -> None:
    # The webhook runs detection on every text, up to 1,600 characters; patterns must not
    # backtrack catastrophically (timing is checked by hand, not asserted here).
    assert len(message) <= 1600
    assert detect(message) == expected


def test_a_pattern_with_capitals_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "phrases.txt"
    path.write_text("[suicide]\n\\bKill my ?self\n", encoding="utf-8")
    with pytest.raises(CrisisPhraseError, match="line 2: write patterns in lowercase"):
        load_phrases(path)


def test_escapes_such_as_non_word_are_not_capitals(tmp_path: Path) -> None:
    path = tmp_path / "phrases.txt"
    path.write_text("[danger]\nbears?\\W+outside\n", encoding="utf-8")
    assert detect("BEARS... outside", load_phrases(path)) == CrisisMatch(
        "bears... outside", "danger"
    )


def test_a_pattern_with_its_own_group_still_works(tmp_path: Path) -> None:
    path = tmp_path / "phrases.txt"
    path.write_text("[danger]\n(bear|wolf) outside\nfire\n", encoding="utf-8")
    assert detect("a wolf outside, and fire", load_phrases(path)) == CrisisMatch(
        "wolf outside", "danger"
    )


def _report(name: str, crisis: list[tuple[str, str]], everyday: list[str]) -> None:
    result = evaluate(crisis, everyday)
    print(f"{name}: {result.summary()}")
    for message in result.missed:
        print(f"  missed:       {message}")
    for message in result.false_alarms:
        print(f"  false alarm:  {message}")
    for message, expected, given in result.wrong_category:
        print(f"  {given} (expected {expected}): {message}")


def main() -> int:
    """Print recall and false alarms on the development and held-out sets."""
    print(f"{len(load_phrases())} patterns")
    _report("development", CRISIS_MESSAGES, EVERYDAY_MESSAGES)
    _report("held-out", HELDOUT_CRISIS, HELDOUT_EVERYDAY)
    return 0


if __name__ == "__main__":
    sys.exit(main())
