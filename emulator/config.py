"""Emulator settings and fault profiles (JSON files in emulator/profiles/ or any path)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from emulator.variants import expand

PROFILES_DIR = Path(__file__).parent / "profiles"
EventShape = Literal["adk", "vendor"]


@dataclass
class FaultProfile:
    """How slow and how faulty the emulated backend is; rates are probabilities per decision."""

    name: str = "ideal"
    reply_delay_s: tuple[float, float] = (0.0, 0.0)
    render_delay_s: tuple[float, float] = (0.0, 0.0)
    no_text_rate: float = 0.0
    cut_stream_rate: float = 0.0
    cut_after_apply_share: float = 0.5
    stream_error_rate: float = 0.0
    random_429_rate: float = 0.0
    random_429_retry_after_s: float = 2.0
    rate_limit_rps: float = 0.0
    rate_limit_burst: int = 20
    token_expiry_rate: float = 0.0
    session_loss_rate: float = 0.0
    render_failure_rate: float = 0.0
    export_blocked_rate: float = 0.0
    """Share of render posts refused with HTTP 402 (plan tier), as if the account's plan
    forbade export; 1.0 blocks every export."""
    variants: tuple[str, ...] = ()
    """Backend variants served (emulator/variants.py); `all` is every one but stubborn_agent."""
    variant_rate: float = 0.3
    """Share of sessions, turns or renders a variant that applies to some of them applies to."""

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> FaultProfile:
        return cls().updated(raw)

    def updated(self, changes: dict[str, Any]) -> FaultProfile:
        """A copy with `changes` applied; unknown fields raise ValueError naming them."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown profile fields: {', '.join(unknown)}")
        values = dict(changes)
        if "variants" in values:
            values["variants"] = expand(list(values["variants"]))
        for key in ("reply_delay_s", "render_delay_s"):
            if key in values:
                low, high = (float(v) for v in values[key])
                values[key] = (low, max(low, high))
        return dataclasses.replace(self, **values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def serves(self, variant: str) -> bool:
        return variant in self.variants


def load_profile(name_or_path: str) -> FaultProfile:
    """A shipped profile by name (ideal, realistic, hostile) or a JSON file by path."""
    shipped = PROFILES_DIR / f"{name_or_path}.json"
    path = shipped if shipped.is_file() else Path(name_or_path)
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in PROFILES_DIR.glob("*.json")))
        raise ValueError(f"profile {name_or_path!r} not found: use one of {names} or a JSON path")
    raw = json.loads(path.read_text())
    raw.setdefault("name", path.stem)
    return FaultProfile.from_dict(raw)


@dataclass
class EmulatorConfig:
    """Everything the emulator needs to run; built by the CLI or by tests."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8700
    profile: FaultProfile = field(default_factory=FaultProfile)
    time_scale: float = 1.0
    seed: int = 1
    tokens: tuple[str, ...] = ()
    registered_credits: int = 1_000_000
    anon_credits: int = 100
    anon_token_ttl_s: float = 7 * 24 * 3600.0
    generation_cost: int = 100
    edit_cost: int = 50
    max_upload_bytes: int = 200 * 1024 * 1024
    allow_url_hosts: tuple[str, ...] = ()
    event_shape: EventShape = "adk"
    render_scale: float = 1.0
    render_workers: int = 2
    keepalive_s: float = 5.0
    public_url: str | None = None
    log_level: str = "warning"

    def scaled(self, seconds: float) -> float:
        return max(0.0, seconds * self.time_scale)


def build_config(
    *,
    data_dir: Path,
    profile: str = "ideal",
    profile_overrides: dict[str, Any] | None = None,
    variants: list[str] | tuple[str, ...] = (),
    **settings: Any,
) -> EmulatorConfig:
    """Config from a profile name/path, field overrides (None values ignored), variants served
    on top of the profile's own, and settings."""
    loaded = load_profile(profile)
    overrides = {k: v for k, v in (profile_overrides or {}).items() if v is not None}
    if variants:
        overrides["variants"] = (*loaded.variants, *variants)
    if overrides:
        loaded = loaded.updated(overrides)
    values = {k: v for k, v in settings.items() if v is not None}
    if "tokens" in values:
        values["tokens"] = tuple(values["tokens"])
    if "allow_url_hosts" in values:
        values["allow_url_hosts"] = tuple(values["allow_url_hosts"])
    if values.get("event_shape", "adk") not in ("adk", "vendor"):
        raise ValueError("event shape must be 'adk' or 'vendor'")
    return EmulatorConfig(data_dir=Path(data_dir), profile=loaded, **values)
