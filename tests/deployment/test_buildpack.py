"""What a buildpack host reads besides the code: the Python version, app.json (Heroku's review
apps and one-click deploys), render.yaml (a Render Blueprint) and requirements.txt."""

from __future__ import annotations

import json
import re
import sys
import tomllib

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from bot.settings import Settings, SettingsError
from tests.conftest import ROOT
from tests.test_settings import variables_read_by_settings

APP = json.loads((ROOT / "app.json").read_text(encoding="utf-8"))
BLUEPRINT = yaml.safe_load((ROOT / "render.yaml").read_text(encoding="utf-8"))
PROCFILE = dict(
    line.split(": ", 1)
    for line in (ROOT / "Procfile").read_text(encoding="utf-8").splitlines()
    if line.strip() and not line.startswith("#")
)
# Set by the host itself, not by an operator.
HOST_VARIABLES = {"PORT", "WEB_CONCURRENCY"}
# Set by the add-ons app.json names (heroku-postgresql, heroku-redis).
ADDON_VARIABLES = {"DATABASE_URL", "REDIS_URL"}


def readme_configuration_names() -> set[str]:
    rows = [line for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
            if line.lstrip().startswith("|")]
    return {name for row in rows for name in re.findall(r"`([A-Z0-9_]+)`", row)}


def required_in_production() -> set[str]:
    """The variables an unconfigured production host is refused for, from the one refusal."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"TEND_ENV": "production"})
    return {name for problem in caught.value.problems
            for name in re.findall(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b", problem)}


def blueprint_services() -> dict[str, dict]:
    return {service["name"]: service for service in BLUEPRINT["services"]}


def blueprint_variables(service: dict) -> set[str]:
    """Every variable a Render service gets: its own and those of the groups it takes."""
    groups = {group["name"]: group for group in BLUEPRINT.get("envVarGroups", [])}
    names = set()
    for entry in service.get("envVars", []):
        if "fromGroup" in entry:
            names |= {var["key"] for var in groups[entry["fromGroup"]]["envVars"]}
        else:
            names.add(entry["key"])
    return names


def test_the_python_version_file_satisfies_pyproject_and_is_the_one_tests_run_on() -> None:
    lines = [line.strip() for line in
             (ROOT / ".python-version").read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#")]
    assert len(lines) == 1 and re.fullmatch(r"3\.\d+(\.\d+)?", lines[0]), lines
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))[
        "project"]["requires-python"]
    assert Version(lines[0]) in SpecifierSet(requires)
    assert Version(lines[0]).release[:2] == sys.version_info[:2]


def test_the_buildpacks_install_this_project_from_requirements_txt() -> None:
    lines = [line.strip() for line in
             (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#")]
    # Editable: narratives/ is found next to the code, as the settings' default expects.
    assert lines == ["-e ."]


def test_app_json_runs_the_procfiles_processes_with_postgres_and_redis() -> None:
    assert set(APP["formation"]) == set(PROCFILE) - {"release"}
    assert all(process["quantity"] >= 1 for process in APP["formation"].values())
    assert set(APP["addons"]) == {"heroku-postgresql", "heroku-redis"}
    # Migrations are the Procfile's release phase, which runs on every deploy; no postdeploy.
    assert "postdeploy" not in APP.get("scripts", {})
    assert APP["name"] and APP["description"]


def test_app_json_asks_for_everything_production_refuses_to_start_without() -> None:
    env = APP["env"]
    for name in required_in_production() - ADDON_VARIABLES:
        assert env.get(name, {}).get("required") is True, name
    assert env["SECRET_KEY"]["generator"] == "secret"
    assert env["TEND_ENV"]["value"] == "production"
    assert env["REDIS_TLS_VERIFY"] == {**env["REDIS_TLS_VERIFY"], "value": "false",
                                       "required": False}
    for name in ("ONCALL_PHONES", "ALERT_EMAILS", "SMTP_URL", "ALERT_FROM_EMAIL",
                 "ALERT_WEBHOOK_URL"):
        assert env[name]["required"] is False, name
    assert all(variable.get("description") for variable in env.values())


def test_app_json_values_are_ones_the_settings_accept() -> None:
    # What an operator types into the deploy form for the required ones; the rest as given.
    typed = {"TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "a-real-auth-token",
             "TWILIO_FROM_NUMBER": "+14155550100", "PUBLIC_BASE_URL": "https://tend.example.org",
             "SECRET_KEY": "generated-by-heroku"}
    given = {name: v["value"] for name, v in APP["env"].items() if "value" in v}
    addons = {"DATABASE_URL": "postgres://u:p@db.example.org/d",
              "REDIS_URL": "rediss://cache.example.org:6380"}
    settings = Settings.from_env({**typed, **given, **addons})
    assert settings.production and not settings.redis_tls_verify


@pytest.mark.parametrize("source", ["app.json", "render.yaml"])
def test_every_variable_a_deploy_file_sets_is_documented_and_read_by_the_settings(
    source: str,
) -> None:
    if source == "app.json":
        names = set(APP["env"])
    else:
        names = set().union(*(blueprint_variables(s) for s in blueprint_services().values()))
    undocumented = names - readme_configuration_names() - HOST_VARIABLES
    assert not undocumented, f"{source}: add to README's configuration table: {undocumented}"
    unread = names - variables_read_by_settings() - HOST_VARIABLES
    assert not unread, f"{source} sets variables Tend never reads: {unread}"


def test_the_render_blueprint_runs_the_procfiles_commands() -> None:
    services = blueprint_services()
    assert services["tend-web"]["startCommand"] == PROCFILE["web"]
    assert services["tend-web"]["preDeployCommand"] == PROCFILE["release"]
    assert services["tend-worker"]["startCommand"] == PROCFILE["worker"]
    assert services["tend-dispatcher"]["startCommand"] == PROCFILE["dispatcher"]
    for name in ("tend-web", "tend-worker", "tend-dispatcher"):
        assert services[name]["runtime"] == "python"
        assert services[name]["buildCommand"] == "pip install -r requirements.txt"
    assert services["tend-web"]["healthCheckPath"] == "/healthz?check=web"
    assert services["tend-redis"]["type"] == "keyvalue"
    assert services["tend-redis"]["maxmemoryPolicy"] == "noeviction"  # never evict a job


def test_every_render_process_gets_everything_production_requires() -> None:
    services = blueprint_services()
    for name in ("tend-web", "tend-worker", "tend-dispatcher"):
        missing = required_in_production() - blueprint_variables(services[name])
        assert not missing, f"{name} lacks {missing}"
        assert "TEND_ENV" in blueprint_variables(services[name])  # one-off shells too
