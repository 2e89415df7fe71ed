"""The address check unwraps every IPv4 address an IPv6 address can carry before it decides."""

import ipaddress

import pytest

from core.netcheck import is_public, literal_private_host


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::7f00:1",  # NAT64 (well-known prefix) to 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 to 10.0.0.1
        "64:ff9b:1::a9fe:a9fe",  # local-use NAT64 to 169.254.169.254
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
        "::127.0.0.1",  # IPv4-compatible
        "::10.1.2.3",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "fe80::5efe:a00:1",  # ISATAP of 10.0.0.1
        "2001:db8::5efe:7f00:1",
        "::1",
        "::",
    ],
)
def test_embedded_private_ipv4_is_refused(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))
    assert literal_private_host(f"[{address}]")


@pytest.mark.parametrize(
    "address", ["64:ff9b::808:808", "2002:808:808::1", "2606:4700:4700::1111", "8.8.8.8"]
)
def test_public_addresses_pass(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


def test_a_pinned_url_connects_to_the_checked_address_and_names_the_real_host() -> None:
    import httpx

    from core.netcheck import pin

    pinned = pin(httpx.URL("https://localhost:8443/hook?x=1"), allow_private=True)
    assert pinned.url.host in {"127.0.0.1", "::1"}
    assert pinned.url.port == 8443 and pinned.url.raw_path == b"/hook?x=1"
    assert pinned.headers == {"Host": "localhost:8443"}
    assert pinned.sni_hostname == "localhost"  # TLS checks the name, not the address

    plain = pin(httpx.URL("http://[::1]/feed.csv"), allow_private=True)
    assert str(plain.url) == "http://[::1]/feed.csv"
    assert plain.sni_hostname is None


def test_pinning_refuses_a_private_address_unless_allowed() -> None:
    import httpx

    from core.netcheck import PrivateAddress, pin

    with pytest.raises(PrivateAddress, match="ALLOW_PRIVATE_URLS"):
        pin(httpx.URL("http://127.0.0.1:9/"))
