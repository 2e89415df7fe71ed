"""Operator commands on keys and secrets: list and revoke API keys, a backend token read from
standard input, a webhook secret rotated with an overlap in which both secrets sign."""

from datetime import timedelta
from typing import Any

from typer.testing import CliRunner

from tests.api.conftest import make_account

runner = CliRunner()


def cli(*args: str, input: str | None = None) -> Any:
    from cli.main import app

    return runner.invoke(app, list(args), input=input)


def key_works(key: str) -> bool:
    from core.db import session_scope
    from core.repo.tenants import tenant_for_key

    with session_scope() as session:
        return tenant_for_key(session, key) is not None


def test_apikey_list_shows_prefixes_never_keys_and_revoke_stops_the_key(settings: Any) -> None:
    account = make_account()
    listed = cli("apikey", "list", "--tenant", account.name)
    assert listed.exit_code == 0, listed.output
    assert account.key[:10] in listed.output
    assert account.key not in listed.output
    assert key_works(account.key)

    revoked = cli("apikey", "revoke", account.key[:10])
    assert revoked.exit_code == 0, revoked.output
    assert "revoked" in revoked.output
    assert not key_works(account.key)
    again = cli("apikey", "revoke", account.key[:10])
    assert "already revoked" in again.output
    assert cli("apikey", "revoke", "nb_no-such-key").exit_code == 1


def test_a_backend_token_is_read_from_stdin_and_never_taken_as_an_argument(
    settings: Any,
) -> None:
    from core.db import session_scope
    from core.repo.tenants import tenant_by_name

    account = make_account()
    given = cli("tenant", "set", account.name, "--backend-token-stdin", input="nmv_usr_piped\n")
    assert given.exit_code == 0, given.output
    assert "nmv_usr_piped" not in given.output
    with session_scope() as session:
        tenant = tenant_by_name(session, account.name)
        assert tenant is not None and tenant.backend_token == "nmv_usr_piped"
    refused = cli("tenant", "set", account.name, "--backend-token", "nmv_usr_argv")
    assert refused.exit_code == 2  # no such option: a token never goes on the command line
    cleared = cli("tenant", "set", account.name, "--clear-backend-token")
    assert cleared.exit_code == 0
    with session_scope() as session:
        tenant = tenant_by_name(session, account.name)
        assert tenant is not None and tenant.backend_token is None


def test_a_rotated_webhook_secret_signs_beside_the_old_one_until_the_overlap_ends(
    settings: Any,
) -> None:
    from core.db import session_scope
    from core.repo.jobs import utcnow
    from core.repo.tenants import signing_secrets, tenant_by_name
    from worker.webhooks import sign, verify_signature

    account = make_account()
    with session_scope() as session:
        tenant = tenant_by_name(session, account.name)
        assert tenant is not None
        old = tenant.webhook_secret
    rotated = cli("tenant", "rotate-webhook-secret", account.name, "--overlap-hours", "2")
    assert rotated.exit_code == 0, rotated.output
    new = rotated.output.strip().splitlines()[-1]
    assert new.startswith("whsec_") and new != old
    with session_scope() as session:
        tenant = tenant_by_name(session, account.name)
        assert tenant is not None
        keys = signing_secrets(tenant)
        assert keys == [new, old]
        header = sign(keys[0], b"{}", 1_700_000_000, *keys[1:])
        assert verify_signature(new, header, b"{}", now=1_700_000_000)
        assert verify_signature(old, header, b"{}", now=1_700_000_000)
        tenant.previous_webhook_secret_until = utcnow() - timedelta(seconds=1)
        assert signing_secrets(tenant) == [new]
