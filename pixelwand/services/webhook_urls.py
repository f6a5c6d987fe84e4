"""Which webhook URLs the service may call: http(s) to public addresses only (SSRF).

A URL is checked when it is registered and again before every delivery, since what a
name resolves to can change. A delivery connects to the very address its check vetted
(`pinned`): the client never resolves the name a second time, so a name that answers a
public address to the check and a private one a moment later (DNS rebinding) cannot
redirect the request. Loopback, private, link-local, shared (CGNAT), multicast,
reserved and unspecified addresses are refused unless the operator allows them
(`PIXELWAND_WEBHOOK_ALLOW_PRIVATE=1`, for self-hosted receivers and tests).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx

from pixelwand.errors import BadRequest

MAX_URL_LENGTH = 2048
# Name lookups of webhook hosts run on threads of their own: a name whose DNS never
# answers holds its thread until the resolver gives up (cancelling the wait does not free
# it), and on the event loop's default executor (6 threads on 2 cores) a few such names
# would stall every `asyncio.to_thread` of the API (file and image work). One thread per
# delivery the worker runs at once (16), plus a few for registrations.
_RESOLVER = ThreadPoolExecutor(max_workers=20, thread_name_prefix="webhook-dns")
# A name whose DNS does not answer within this is refused (at registration: 400; at
# delivery: a failed attempt), not waited on for as long as the resolver likes.
LOOKUP_SECONDS = 10.0


def parse_url(url: object) -> tuple[str, str, int]:
    """(scheme, host, port) of a webhook URL, or BadRequest naming what is wrong."""
    if not isinstance(url, str) or not url:
        raise BadRequest("url is required")
    if len(url) > MAX_URL_LENGTH:
        raise BadRequest(f"url must be at most {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise BadRequest("url must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise BadRequest("url is not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise BadRequest("url must start with http:// or https://")
    if not parts.hostname:
        raise BadRequest("url has no host")
    if parts.username is not None or parts.password is not None:
        raise BadRequest("url must not carry credentials")
    if port == 0:
        raise BadRequest("url port must be 1-65535")
    try:  # what the HTTP client will be given: a URL it refuses would never be sent
        httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise BadRequest(f"url is not a valid URL: {exc}") from None
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


# NAT64 (RFC 6052): the well-known prefix carries an IPv4 address in its last 32 bits; the
# local-use prefix (RFC 8215) belongs to one network and is never a public destination.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
# IETF protocol assignments (RFC 6890): not globally reachable, though Python 3.11 calls most
# of the block global (192.0.0.8, 192.0.0.170...); only 192.0.0.9 and .10 are anycast services.
_IETF = ipaddress.ip_network("192.0.0.0/24")
_IETF_GLOBAL = {ipaddress.ip_address("192.0.0.9"), ipaddress.ip_address("192.0.0.10")}


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64_LOCAL:
            return False
        # An IPv6 form of an IPv4 address is as public as that address: mapped, 6to4,
        # NAT64, and the deprecated IPv4-compatible ::a.b.c.d (a gateway on the way may
        # deliver any of them to the IPv4 address inside).
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and (ip in _NAT64 or int(ip) >> 32 == 0):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and not is_public(str(embedded)):
            return False
    if isinstance(ip, ipaddress.IPv4Address) and ip in _IETF and ip not in _IETF_GLOBAL:
        return False
    return ip.is_global and not ip.is_multicast


async def check_destination(url: str, *, allow_private: bool) -> str | None:
    """Refuse a URL whose host resolves to a non-public address (unless allowed).

    Returns the vetted address to connect to, or None when private destinations are allowed
    (then nothing is vetted and the client resolves the name itself).
    """
    _, host, port = parse_url(url)
    if allow_private:
        return None
    try:
        infos = await asyncio.wait_for(_getaddrinfo(host, port), LOOKUP_SECONDS)
    except TimeoutError:
        raise BadRequest(f"url host {host!r} did not resolve within {LOOKUP_SECONDS:g} s") from None
    except (OSError, UnicodeError):
        raise BadRequest(f"url host {host!r} does not resolve") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses or not all(is_public(address) for address in addresses):
        raise BadRequest(
            "url resolves to a loopback, private or reserved address; "
            "set PIXELWAND_WEBHOOK_ALLOW_PRIVATE=1 to allow it"
        )
    return addresses[0]


async def _getaddrinfo(host: str, port: int) -> list[tuple]:
    lookup = functools.partial(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    return await asyncio.get_running_loop().run_in_executor(_RESOLVER, lookup)


def pinned(url: str, address: str | None) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
    """(URL, extra headers, request extensions) that send `url` to `address` itself.

    The Host header keeps the name (virtual hosts) and TLS verifies the certificate against
    it (httpx's `sni_hostname` extension), so only the address lookup is taken out of the
    client's hands.
    """
    target = httpx.URL(url)
    if address is None:
        return target, {}, {}
    name = target.raw_host.decode("ascii")
    headers = {"Host": target.netloc.decode("ascii")}
    return target.copy_with(host=address.split("%", 1)[0]), headers, {"sni_hostname": name}
