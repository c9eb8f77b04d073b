"""The SSRF guard of outgoing webhooks: only http(s) to public addresses, unless allowed."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(ValueError):
    """The URL may not be called; the message says why and how to allow it."""


@dataclass(frozen=True, slots=True)
class Target:
    """A webhook URL with the address it was checked against, to connect to exactly that one."""

    url: SplitResult
    address: IPAddress

    @property
    def host(self) -> str:
        return self.url.hostname or ""

    @property
    def port(self) -> int:
        return self.url.port or (443 if self.url.scheme == "https" else 80)


def refusal(address: IPAddress) -> str | None:
    """Why `address` is not a public one (loopback, private, link-local, ...), or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return refusal(address.ipv4_mapped)
    for kind, flag in (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),  # includes 169.254.169.254, cloud metadata
        ("unspecified", address.is_unspecified),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
    ):
        if flag:
            return kind
    if not address.is_global:
        return "not globally routable"
    return None


def parse_url(url: str) -> SplitResult:
    """The URL split into parts; refused unless it is http(s) with a host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise TargetRefused(f"{_safe(url)}: only http and https URLs are called")
    if not parts.hostname:
        raise TargetRefused(f"{_safe(url)}: the URL has no host")
    try:
        _ = parts.port
    except ValueError:
        raise TargetRefused(f"{_safe(url)}: the port is not a number") from None
    return parts


def literal_address(host: str) -> IPAddress | None:
    """The address `host` spells, in any form the resolver would read as one: besides the
    standard notations, IPv4 in octal, hex or short forms (0251.0376.0251.0376, 0xa9fea9fe,
    2852039166), which getaddrinfo turns into an address without asking DNS."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not _LEGACY_IPV4.fullmatch(host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


# digits, dots and hex: the only characters of the numeric IPv4 forms inet_aton accepts
_LEGACY_IPV4 = re.compile(r"[0-9a-fA-FxX.]*[0-9][0-9a-fA-FxX.]*")


class AddressGuard:
    """Resolves a webhook host at send time and refuses it if any address is not public."""

    def __init__(self, allow_private: bool = False) -> None:
        self.allow_private = allow_private

    async def check(self, url: str) -> Target:
        """The target to connect to; raise TargetRefused for a scheme or address not allowed."""
        parts = parse_url(url)
        host = parts.hostname or ""
        addresses = await _resolve(host, parts.port)
        if not self.allow_private:
            # every address counts: a name with one public and one private record is refused
            for address in addresses:
                reason = refusal(address)
                if reason is not None:
                    raise TargetRefused(
                        f"{_safe(url)}: {host} resolves to {address}, a {reason} address;"
                        " set DUEFLOW_WEBHOOK_ALLOW_PRIVATE=true to call such targets"
                    )
        return Target(parts, addresses[0])


async def _resolve(host: str, port: int | None) -> list[IPAddress]:
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port or 0, type=socket.SOCK_STREAM
        )
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve {host}: {exc}") from exc
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        # an IPv6 scope (fe80::1%eth0) is not part of the address
        address = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise OSError(f"{host} resolves to no address")
    return addresses


def _safe(url: str) -> str:
    """The URL without credentials or query, fit for logs and errors."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if _port_or_none(parts) else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _port_or_none(parts: SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:
        return None
