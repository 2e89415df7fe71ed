"""The in-memory backend: tokens, accounts and credits, sessions and their media."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from emulator.config import EmulatorConfig

AccountKind = Literal["anonymous", "registered"]
TokenCheck = Literal["valid", "expired", "unknown"]


@dataclass
class Account:
    user_id: str
    kind: AccountKind
    available: int
    frozen: int = 0
    spent: int = 0


@dataclass
class Token:
    value: str
    user_id: str
    expires_at: float
    client_id: str | None = None

    @property
    def expired(self) -> bool:
        return time.time() >= self.expires_at


@dataclass
class MediaFile:
    """An uploaded file, stored once under its content hash."""

    media_id: str
    filename: str
    file_type: str
    extension: str
    path: Path
    duration: float
    width: int
    height: int
    fps: float

    def info(self, base_url: str) -> dict[str, Any]:
        return {
            "media_id": self.media_id,
            "filename": self.filename,
            "file_type": self.file_type,
            "cdn_url": f"{base_url}/media/{self.path.name}",
            "duration": self.duration,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "hash": self.media_id,
        }


@dataclass
class Session:
    session_id: str
    task_id: str
    task_name: str
    user_id: str
    language: str
    media: list[MediaFile] = field(default_factory=list)
    video_infos: list[dict[str, Any]] = field(default_factory=list)
    draft: dict[str, Any] = field(default_factory=dict)
    canvas_config: dict[str, Any] = field(default_factory=dict)
    video_analyses: dict[str, Any] = field(default_factory=dict)
    generated_media: list[dict[str, Any]] = field(default_factory=list)
    turn_running: bool = False
    agent_drafts: set[str] = field(default_factory=set)
    """Hashes of every draft an agent turn produced in this session."""
    pending_request: str | None = None
    """The message a question answered (asks_question variant): the next message answers it."""
    turns: int = 0

    def state(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "task_id": self.task_id,
            "task_name": self.task_name,
            "state": {
                "video_infos": self.video_infos,
                "draft": self.draft,
                "canvas_config": self.canvas_config,
                "video_analyses": self.video_analyses,
                "generated_media": self.generated_media,
            },
        }


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def user_id_for_registered(token: str) -> str:
    return "usr_" + hashlib.sha256(token.encode()).hexdigest()[:16]


class Store:
    """All mutable backend state; one instance per app, cleared by reset()."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.tokens: dict[str, Token] = {}
        self.accounts: dict[str, Account] = {}
        self.sessions: dict[str, Session] = {}
        self.media: dict[str, MediaFile] = {}
        self._anon_by_client: dict[str, str] = {}
        self._session_counter = 0
        self.reset()

    def reset(self) -> None:
        self.tokens.clear()
        self.accounts.clear()
        self.sessions.clear()
        self._anon_by_client.clear()
        self._session_counter = 0
        for value in self.config.tokens:
            user_id = user_id_for_registered(value)
            self.tokens[value] = Token(value, user_id, expires_at=float("inf"))
            self.accounts[user_id] = Account(user_id, "registered", self.config.registered_credits)

    # tokens -----------------------------------------------------------------------------
    def issue_anonymous(self, client_id: str) -> Token:
        """The client's token if still valid, else a renewed one for the same anonymous user."""
        known = self.tokens.get(self._anon_by_client.get(client_id, ""))
        if known is not None and not known.expired:
            return known
        user_id = known.user_id if known else "anon_" + secrets.token_hex(8)
        value = "nmv_usr_" + secrets.token_urlsafe(24)
        token = Token(value, user_id, time.time() + self.config.anon_token_ttl_s, client_id)
        self.tokens[value] = token
        self._anon_by_client[client_id] = value
        self.accounts.setdefault(user_id, Account(user_id, "anonymous", self.config.anon_credits))
        return token

    def check_token(self, value: str | None) -> tuple[TokenCheck, Token | None]:
        token = self.tokens.get(value or "")
        if token is None:
            return "unknown", None
        return ("expired" if token.expired else "valid"), token

    def expire_tokens(self, include_registered: bool = False) -> int:
        count = 0
        for token in self.tokens.values():
            if token.client_id is not None or include_registered:
                token.expires_at = min(token.expires_at, time.time())
                count += 1
        return count

    def expire_tokens_of(self, user_id: str) -> None:
        for token in self.tokens.values():
            if token.user_id == user_id:
                token.expires_at = min(token.expires_at, time.time())

    def account_kind(self, user_id: str) -> AccountKind:
        return self.accounts[user_id].kind

    # credits ----------------------------------------------------------------------------
    def freeze(self, user_id: str, cost: int) -> bool:
        account = self.accounts[user_id]
        if account.available < cost:
            return False
        account.available -= cost
        account.frozen += cost
        return True

    def settle(self, user_id: str, cost: int) -> None:
        account = self.accounts.get(user_id)
        if account is None or not cost:  # reset while the turn ran
            return
        account.frozen -= cost
        account.spent += cost

    def refund(self, user_id: str, cost: int) -> None:
        account = self.accounts.get(user_id)
        if account is None or not cost:
            return
        account.frozen -= cost
        account.available += cost

    def add_credits(self, amount: int, *, token: str | None, user_id: str | None) -> list[str]:
        """Add `amount` to the account of `token` or `user_id`, or to all; the ids touched."""
        if token is not None:
            known = self.tokens.get(token)
            targets = [known.user_id] if known else []
        elif user_id is not None:
            targets = [user_id] if user_id in self.accounts else []
        else:
            targets = list(self.accounts)
        for target in targets:
            self.accounts[target].available += amount
        return targets

    # sessions ---------------------------------------------------------------------------
    def create_session(self, user_id: str, task_name: str, language: str) -> Session:
        self._session_counter += 1
        digest = hashlib.sha256(f"{self.config.seed}|session|{self._session_counter}".encode())
        number = 10**18 + int.from_bytes(digest.digest()[:8], "big") % (8 * 10**18)
        while str(number) in self.sessions:
            number += 1
        session_id = str(number)
        task_id = "task_" + digest.hexdigest()[:16]
        session = Session(session_id, task_id, task_name, user_id, language)
        self.sessions[session_id] = session
        return session

    def session_for(self, session_id: str, user_id: str) -> Session | None:
        session = self.sessions.get(session_id)
        if session is None or session.user_id != user_id:
            return None
        return session

    def lose_session(self, session_id: str) -> bool:
        return self.sessions.pop(session_id, None) is not None

    def media_by_id(self, media_id: str) -> MediaFile | None:
        return self.media.get(media_id)
