"""Is a URL's host somewhere we may send requests to? Private, loopback, link-local and
reserved addresses are refused unless `allow_private_urls` is set (server-side request forgery).

Two checks: `literal_private_host` at intake (no DNS: a name may resolve later, or differently),
and `resolve_public` just before a request, whose answer the caller connects to, so a name that
resolves to a private address (or is re-pointed there) is caught where it matters. `pin` is
that check for an outbound request (webhooks, feeds, inputs kept at intake).
"""

import ipaddress
import socket
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


class PrivateAddress(ValueError):
    """The host is, or resolves to, an address we must not send requests to."""


class Unresolvable(ValueError):
    """The host name does not resolve."""


NAT64_PREFIXES = (
    ipaddress.IPv6Network("64:ff9b::/96"),  # RFC 6052, the well-known prefix
    ipaddress.IPv6Network("64:ff9b:1::/48"),  # RFC 8215, local use
)
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # RFC 4291's deprecated ::a.b.c.d
ISATAP_MARKERS = (0x00005EFE, 0x02005EFE)  # RFC 5214: an interface id of ::0:5efe:a.b.c.d


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """Every IPv4 address an IPv6 address carries and that a network on the way may route to:
    mapped, compatible, 6to4, Teredo (server and client), NAT64 and ISATAP forms."""
    found: list[ipaddress.IPv4Address] = []
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address in IPV4_COMPATIBLE and int(address) > 1:  # not :: or ::1, judged as IPv6
        found.append(low32)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    if any(address in prefix for prefix in NAT64_PREFIXES):
        found.append(low32)
    if (int(address) >> 32) & 0xFFFFFFFF in ISATAP_MARKERS:
        found.append(low32)
    return found


def is_public(address: IPAddress) -> bool:
    """True for a globally routable unicast address; an IPv6 address that carries an IPv4
    address (NAT64, 6to4, mapped, ...) is public only if every IPv4 address in it is too."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner:
            return all(is_public(ipv4) for ipv4 in inner)
    return address.is_global and not address.is_multicast


def parse_literal(host: str) -> IPAddress | None:
    """The address written in `host` (including shorthand like `2130706433` or `127.1`), or None
    for a name."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(part.isalnum() for part in host.split(".")) and host[0].isdigit():
        try:  # the forms getaddrinfo accepts for IPv4: 127.1, 0x7f.0.0.1, 2130706433
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def literal_private_host(host: str) -> bool:
    """True when the host is a local name or a literal non-public address."""
    name = host.lower().rstrip(".")
    if name in LOCAL_NAMES or name.endswith(".localhost"):
        return True
    address = parse_literal(name)
    return address is not None and not is_public(address)


def resolve_public(host: str, port: int, *, allow_private: bool = False) -> list[IPAddress]:
    """Every address `host` resolves to; raises `PrivateAddress` if any is not public (unless
    allowed) and `Unresolvable` when there is none."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise Unresolvable(f"the host {host} does not resolve ({error})") from None
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise Unresolvable(f"the host {host} has no address")
    if not allow_private:
        refused = [str(a) for a in addresses if not is_public(a)]
        if refused:
            raise PrivateAddress(
                f"the host {host} resolves to a private or reserved address "
                f"({', '.join(refused)}); set ALLOW_PRIVATE_URLS=true to allow it"
            )
    return addresses


@dataclass(frozen=True)
class Pinned:
    """An outbound URL pinned to the address just checked: connect to `url` (no second lookup
    that could answer differently), and name the real host in `headers` and, for TLS, in
    `extensions` (httpx's `sni_hostname`)."""

    url: httpx.URL
    headers: dict[str, str]
    extensions: dict[str, str]

    @property
    def sni_hostname(self) -> str | None:
        return self.extensions.get("sni_hostname")


def pin(url: httpx.URL, *, allow_private: bool = False) -> Pinned:
    """Resolve `url`'s host, check every address (`resolve_public`), and pin the first."""
    port = url.port or (443 if url.scheme == "https" else 80)
    addresses = resolve_public(url.host, port, allow_private=allow_private)
    extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
    headers = {"Host": url.netloc.decode("ascii")}
    return Pinned(url.copy_with(host=str(addresses[0])), headers, extensions)
