"""Templates and rules are bounded in time and size: a slip like `'x' * 300000000` or two nested
loops over `range(100000)` fails fast with a NarrativeError or RuleError naming the file and line,
never hangs a request or a worker, and normal templates render exactly as before."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

import bot.care.narrative
from bot.care.bounded import MAX_SIZE
from bot.care.narrative import MAX_OUTPUT, NarrativeError, _environment, render
from bot.care.programs import Program, load_program
from bot.care.rules import RuleError, compile_rule
from bot.tools.check import PERSONAS, renders
from tests.care.test_program_format import rule_context, write_model_program
from tests.conftest import ROOT

PREAMBLE = "Hello.\n\n"  # the template under test starts on line 3
WHERE = "calm-kids/bad.txt"


def returns(call: Callable[[], Any], timeout: float = 10) -> Any:
    """What `call` returns or raises (re-raised here); fails if it has not returned in time."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"still running after {timeout} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def program_with(tmp_path: Path, **templates: str) -> Program:
    """The model program, with `templates` (name_txt=body) written exactly as given."""
    folder = write_model_program(tmp_path)
    for name, body in templates.items():
        (folder / name.replace("_txt", ".txt")).write_text(body, encoding="utf-8")
    return load_program(folder)


def failure(program: Program, template: str = "bad.txt", **kwargs: Any) -> str:
    """The NarrativeError message rendering `template` gives (it must give one, in time)."""
    with pytest.raises(NarrativeError) as caught:
        returns(lambda: render(program, template, {}, **kwargs))
    return str(caught.value)


# --- templates: too large ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{{ 'x'*300000000 }}",
         "would build a text of about 300,000,000 characters with '*' (at most 100,000)"),
        ('{{ "x" * 2000 * 2000 * 2000 }}', "about 4,000,000 characters with '*'"),
        ('{{ ("a"~"b")*99999999 }}', "about 199,999,998 characters with '*'"),
        ("{{ [0, 1] * 99999999 }}", "would build a list too long to write out with '*'"),
        ("{{ 10**(10**8) }}", "a number of about 100,000,000 digits with '**' (at most 4,300)"),
        ("{{ 9**(9**9) }}", "digits with '**'"),
        ("{{ 10**5000 }}", "a number of about 5,000 digits with '**'"),
        ("{{ 10**3000 * 10**3000 }}", "digits with '*'"),
        ("{{ range(100000)|list|join }}", "too long to write out with 'join'"),
        ("{{ range(10**6)|length }}", "asks range() for 1,000,000 numbers (at most 100,000)"),
        ("{% for i in range(10**12) %}{% endfor %}", "asks range() for 1,000,000,000,000"),
        ("{{ 'x'|center(300000000) }}", "asks 'center' for 300,000,000 characters"),
        ("{{ 'x'.ljust(300000000) }}", "asks 'ljust' for 300,000,000 characters"),
        ("{{ '%300000000d' % 1 }}", "asks a format for 300000000 characters"),
        ("{{ '{:>300000000}'.format(1) }}", "asks a format for 300000000 characters"),
        ("{{ '-'|indent(300000000, true) }}", "with 'indent'"),
        ("{{ ('a' * 9999)|replace('', 'b' * 9999) }}",
         "about 99,999,999 characters with 'replace'"),
        ("{{ [1]|batch(300000000, 0)|list }}", "asks 'batch' for 300,000,000 items"),
        ("{{ 10|round(-300000000) }}", "asks 'round' for 300,000,000 digits"),
        ("{{ lipsum(100000) }}", "asks lipsum() for"),
        ("{{ range(100000)|batch(1)|sum(start=[]) }}", "too long to write out with 'sum'"),
        ("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
         "{% endfor %}", "would build a text of over 100,000 characters with '~'"),
        ("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}"
         "{% endfor %}", "characters with '+'"),
        ("{% set l = [] %}{% for i in range(100000) %}{% set _ = l.append('x' * 1000) %}"
         "{% endfor %}", "too long to write out with 'append'"),
        ("{% macro m() %}{% for i in range(100000) %}{{ 'x' * 10 }}{% endfor %}{% endmacro %}"
         "{{ m()|length }}", "a text of over 100,000 characters in a macro or block"),
        ("{% set x %}{% for i in range(100000) %}0123456789{% endfor %}{% endset %}",
         "in a macro or block"),
        ("{% set b = [0] * 1000 %}{% set c = [b, b, b, b, b, b, b, b, b, b] %}"
         "{% set d = [c, c, c, c, c, c, c, c, c, c] %}{% set e = [d, d, d, d, d, d, d, d, d, d] %}"
         "{{ e }}", "would write out a list of over 100,000 characters"),
        ("{{ range(99999)|map('center', 99999)|list|length }}",
         "builds more than 10,000,000 characters in all; check its loops"),
        ("{% macro again() %}{{ again() }}{% endmacro %}{{ again() }}",
         "a macro or include in it calls itself without end"),
        ("{% for i in range(99999) %}{{ i }}{% endfor %}",
         f"writes more than {MAX_OUTPUT:,} characters (a text message carries at most 1,600)"),
    ],
)
def test_a_template_that_builds_too_much_fails_fast_naming_its_line(
    tmp_path: Path, body: str, reason: str
) -> None:
    program = program_with(tmp_path, bad_txt=PREAMBLE + body)
    message = failure(program)
    assert message.startswith(f"{WHERE}:3: this template "), message
    assert reason in message


def test_the_output_bound_names_the_line_that_writes_past_it(tmp_path: Path) -> None:
    body = "Hello.\n{% for i in range(3) %}\n{{ i }}\n{% endfor %}\n{{ 'x' * 20000 }}\nBye.\n"
    message = failure(program_with(tmp_path, bad_txt=body))
    assert message.startswith(f"{WHERE}:5: this template writes more than 10,000 characters")


def test_a_number_too_long_to_read_is_a_narrative_error(tmp_path: Path) -> None:
    program = program_with(tmp_path, bad_txt=PREAMBLE + "{{ " + "9" * 5000 + " }}")
    message = failure(program)
    assert message.startswith(WHERE)
    assert "has a number of more than 4,300 digits" in message


def test_a_template_including_itself_is_a_narrative_error(tmp_path: Path) -> None:
    program = program_with(tmp_path, bad_txt='{% include "bad.txt" %}{% include "bad.txt" %}')
    assert "calls itself without end" in failure(program)


# --- templates: too slow -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "{% for i in range(100000) %}{% for j in range(100000) %}{{ '' }}{% endfor %}{% endfor %}",
        "{% set l = range(50000)|list %}{% for a in l %}{% for b in l %}{% endfor %}{% endfor %}",
        "{% for i in range(100000) %}{% for c in 'abcdefghij' * 10000 %}{% endfor %}{% endfor %}",
        "{% for i in range(100000) %}{% for j in range(100000) if j > i %}{% endfor %}{% endfor %}",
        "{% macro m() %}{% for i in range(100000) %}{% endfor %}{% endmacro %}"
        "{% for i in range(100000) %}{% set x = m() %}{% endfor %}",
        "{{ range(100000)|map('string')" + "|sort" * 30 + "|list|length }}",
    ],
)
def test_a_template_that_takes_too_long_fails_at_its_deadline(tmp_path: Path, body: str) -> None:
    program = program_with(tmp_path, bad_txt=PREAMBLE + body)
    message = failure(program, seconds=0.2)
    assert message == (
        f"{WHERE}:3: this template takes too long to render (over 0.2 s); check its loops"
    )


def test_the_deadline_is_about_a_second_by_default(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    body = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    program = program_with(tmp_path, bad_txt=PREAMBLE + body)
    assert bot.care.narrative.RENDER_SECONDS == 1.0
    assert "too long to render (over 1 s)" in failure(program)
    monkeypatch.setattr(bot.care.narrative, "RENDER_SECONDS", 0.1)
    assert "too long to render (over 0.1 s)" in failure(program)


# --- templates: compiling ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "{{ 10**5000 }}",
        "{{ 'x'*300000000 }}",
        "{{ 'x'|center(300000000) }}",
        "{{ [1]|batch(300000000, 0)|list|length }}",
        "{{ '%300000000d'|format(1) }}",
    ],
)
def test_compiling_a_template_computes_no_huge_constant(tmp_path: Path, body: str) -> None:
    program = program_with(tmp_path, bad_txt=PREAMBLE + body)
    # Jinja folds constant expressions when it compiles: these must not be folded.
    returns(lambda: _environment(str(program.folder)).get_template("bad.txt"))
    assert failure(program).startswith(f"{WHERE}:3: this template ")


# --- templates that are fine -------------------------------------------------------------------


@lru_cache(maxsize=8)
def _plain_environment(folder: str) -> SandboxedEnvironment:
    """Jinja's own sandbox, configured as Tend's."""
    return SandboxedEnvironment(loader=FileSystemLoader(folder), undefined=StrictUndefined,
                                autoescape=False, trim_blocks=True, lstrip_blocks=True)


def _plain_render(program: Program, template: str, context: dict[str, Any]) -> str:
    """How Jinja's own sandbox renders `template` (trimmed as Tend trims)."""
    text = _plain_environment(str(program.folder)).get_template(template).render(**context)
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


@pytest.mark.parametrize("name", ["daily-checkin", "positive-parenting", "medication-adherence"])
def test_the_shipped_templates_render_as_jinja_renders_them(name: str) -> None:
    program = load_program(ROOT / "narratives" / name)
    rendered = 0
    for persona in PERSONAS:
        for job in renders(program, persona):
            assert render(program, job.template, job.context) == _plain_render(
                program, job.template, job.context)
            rendered += 1
    assert rendered > 0


FEATURES = """\
{% set tips = ["one", "two", "three"] %}
{% macro shout(text) %}{{ text|upper }}!{% endmacro %}
{% for tip in tips %}{{ loop.index }}/{{ loop.length }} {{ tip }}{{ "," if not loop.last }}
{% else %}none{% endfor %}
{% for n in range(10) if n is odd %}{{ n }}{% endfor %} {{ range(5)|list }} {{ range(5)|length }}
{{ range(5)|last }} {{ range(10)[2:4]|list }} {{ 3 in range(5) }} {{ range(3)|reverse|join }}
{{ "%s has %d tips" % ("Tend", tips|length) }} {{ "{} and {}".format(1, 2) }}
{{ "x" * 3 }} {{ 2 ** 10 }} {{ 7 * 6 }} {{ [1, 2] + [3] }} {{ "a" ~ 1 ~ "b" }} {{ 10 % 3 }}
{{ shout("hi") }} {{ tips|join(", ") }} {{ [[1], [2]]|sum(start=[]) }} {{ [1.5, 2]|sum }}
{% set inner %}inside {{ tips|first }}{% endset %}{{ inner|trim }}
{% filter upper %}quiet {{ tips|last }}{% endfilter %}
{{ "ab"|center(6) }}|{{ "%5.1f"|format(3.14159) }}|{{ "x"|indent(2, true) }}|{{ 3.7|round }}
{{ ["b", "a"]|sort|list }} {{ {"k": 1}|dictsort }} {{ "a b c"|wordcount }}
{% set ns = namespace(total=0) %}
{% for i in range(4) %}{% set ns.total = ns.total + i %}{% endfor %}
{{ ns.total }} {{ "one two"|replace("two", "three") }} {{ "Tend"|lower is lower }}
{% include "learn.txt" %}
"""


def test_templates_using_every_bounded_feature_render_as_before(tmp_path: Path) -> None:
    program = program_with(tmp_path, features_txt=FEATURES)
    text = render(program, "features.txt", {})
    assert text == _plain_render(program, "features.txt", {})
    assert "1/3 one," in text and "13579" in text and "Tend has 3 tips" in text


def test_powers_group_from_the_left_as_in_jinja(tmp_path: Path) -> None:
    # In Jinja 10**10**8 is (10**10)**8, a number of 81 digits, not 10**(10**8).
    program = program_with(tmp_path, powers_txt="{{ 10**10**8 }} {{ 9**9**9 }}")
    tens, nines = returns(lambda: render(program, "powers.txt", {})).split()
    assert tens == "1" + "0" * 80
    assert nines == str((9**9) ** 9)


def test_a_text_up_to_the_bounds_renders(tmp_path: Path) -> None:
    body = ("{{ 'x' * 9000 }}{% for i in range(900) %}y{% endfor %}"
            "{% set big = 'z' * " + str(MAX_SIZE) + " %}")
    program = program_with(tmp_path, big_txt=body)
    assert render(program, "big.txt", {}) == "x" * 9000 + "y" * 900


def test_environments_stay_cached_per_folder_and_reload_edited_templates(tmp_path: Path) -> None:
    program = program_with(tmp_path, note_txt="first")
    assert _environment(str(program.folder)) is _environment(str(program.folder))
    assert render(program, "note.txt", {}) == "first"
    path = program.folder / "note.txt"
    path.write_text("second", encoding="utf-8")
    later = path.stat().st_mtime + 5
    os.utime(path, (later, later))
    assert render(program, "note.txt", {}) == "second"


# --- rules -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("10**5000 > 0", "would build a number of about 5,000 digits with '**'"),
        ("(answered + 2) ** (10**8) > 0", "digits with '**'"),
        ("9**(9**9) > 0", "digits with '**'"),
        ("'x'*300000000 == 'y'", "would build a text of about 300,000,000 characters with '*'"),
        ("('a' ~ 'b') * 99999999 == ''", "with '*'"),
        ("'x'|center(300000000) == ''", "asks 'center' for 300,000,000 characters"),
        ("range(10**6)|length > 0", "asks range() for 1,000,000 numbers"),
        ("[1]|batch(300000000, 0)|list|length > 0", "asks 'batch' for 300,000,000 items"),
    ],
)
def test_a_rule_that_builds_too_much_fails_with_a_rule_error(source: str, reason: str) -> None:
    rule = returns(lambda: compile_rule(source, "calm-kids/program.yaml:12"))
    with pytest.raises(RuleError) as caught:
        returns(lambda: rule.holds(rule_context()))
    message = str(caught.value)
    assert message.startswith(f"calm-kids/program.yaml:12: rule '{source}' "), message
    assert reason in message


def test_a_rule_that_takes_too_long_fails_at_its_deadline() -> None:
    source = "range(100000)|map('string')|map('string')|map('string')|list|length > 0"
    rule = compile_rule(source, "calm-kids/program.yaml:20")
    with pytest.raises(RuleError) as caught:
        returns(lambda: rule.holds(rule_context(), seconds=0.01))
    assert str(caught.value) == (
        f"calm-kids/program.yaml:20: rule '{source}' takes too long to evaluate (over 0.01 s)"
    )
    assert rule.holds(rule_context(), seconds=60) is True  # given the time, it holds


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("9" * 5000 + " > 1", "has a number of more than 4,300 digits"),
        ("(" * 1000 + "1" + ")" * 1000 + " > 0", "nests too deeply"),
        ("last >= ", "is not a valid expression"),
    ],
)
def test_a_rule_that_cannot_be_read_is_a_rule_error(source: str, reason: str) -> None:
    with pytest.raises(RuleError) as caught:
        returns(lambda: compile_rule(source, "calm-kids/program.yaml:7"))
    message = str(caught.value)
    assert message.startswith("calm-kids/program.yaml:7: rule '")
    assert reason in message
    assert len(message) < 600  # a long rule is quoted shortened


def test_rules_within_the_bounds_hold_as_written() -> None:
    context = rule_context(answers=[4.0, 5.0], answered=2, asked=2)
    for source, expected in [
        ("answered * 2 == asked * 2", True),
        ("2 ** answered == 4", True),
        ("answers|sum >= 9", True),
        ("'x' * answered == 'xx'", True),
        ("(answers + [1.0])|length == 3", True),
        ("'%d of %d' % (answered, asked) == '2 of 2'", True),
        ("range(answered)|list == [0, 1]", True),
    ]:
        assert compile_rule(source, "calm-kids/program.yaml:3").holds(context) is expected
