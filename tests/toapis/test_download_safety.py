"""Result downloads go over https to public addresses only, or to the API's own origin (toapis/_download_guard.py).

The fake serves on http://127.0.0.1, which is exactly the base URL's origin: that allowance is what lets the
fake's results download, and the tests below show it is the only one. Hosts other than 127.0.0.1 are resolved
by a fake resolver given to the client, so no test depends on the machine's DNS.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from tests.fakes.toapis import Endpoint, FakeToAPIs, Fault, Timeline
from tests.toapis._helpers import MakeClient, submit
from toapis import APIConnectionError, DownloadError, ToAPIsClient
from toapis._download_guard import MAX_REDIRECTS, is_public_address, pinned

PUBLIC = "93.184.216.34"


class FakeResolver(AbstractResolver):
    """Answers from a table; a host it does not know fails like a name that does not resolve."""

    def __init__(self, answers: Mapping[str, Sequence[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        if host not in self.answers:
            raise OSError(f"Name or service not known: {host}")
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=0,
            )
            for address in self.answers[host]
        ]

    async def close(self) -> None:
        pass


def names_in(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


async def completed_task_url(client: ToAPIsClient, fake: FakeToAPIs) -> str:
    fake.queue_timeline(Timeline.instant())
    task = await submit(client, "job-safety")
    return fake.result_url(task.id, 1)


# --- the address check ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.20",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "::ffff:10.0.0.1",
    ],
)
def test_local_private_and_special_addresses_are_not_public(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", [PUBLIC, "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_global_addresses_are_public(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


def test_a_request_is_pinned_to_the_checked_address_and_keeps_its_name() -> None:
    url = URL("https://files.example:8443/a/b%20c.png?sig=x%2Fy", encoded=True)
    hop = pinned(url, ipaddress.ip_address(PUBLIC))
    assert str(hop.url) == f"https://{PUBLIC}:8443/a/b%20c.png?sig=x%2Fy"
    assert dict(hop.headers) == {"Host": "files.example:8443"}
    assert hop.server_hostname == "files.example"  # what TLS verifies the certificate against
    six = pinned(URL("https://files.example/x.png"), ipaddress.ip_address("2606:4700::1"))
    assert (str(six.url), dict(six.headers)) == ("https://[2606:4700::1]/x.png", {"Host": "files.example"})


# --- through the client -----------------------------------------------------------------------------------


async def test_the_fakes_own_results_download_from_the_base_urls_origin(
    make_client: MakeClient, toapis_fake: FakeToAPIs
) -> None:
    resolver = FakeResolver({})
    client = make_client(resolver=resolver)
    url = await completed_task_url(client, toapis_fake)
    assert url.startswith(f"http://127.0.0.1:{toapis_fake.port}/")
    downloaded = await client.download_image(url, max_bytes=10_000_000)
    assert downloaded.data == toapis_fake.result_png(url.split("/")[-2], 1)
    assert resolver.asked == []  # the trusted origin is neither resolved nor checked


@pytest.mark.parametrize(
    "url",
    [
        "http://files.example/x.png",
        "http://{host}:{other_port}/files/x.png",  # the fake's host, another port
        "https://{host}:{port}/files/x.png",  # the fake's host and port, another scheme
    ],
)
async def test_http_is_refused_unless_it_is_the_base_urls_origin(
    make_client: MakeClient, toapis_fake: FakeToAPIs, url: str
) -> None:
    resolver = FakeResolver({"files.example": [PUBLIC]})
    client = make_client(resolver=resolver)
    url = url.format(host="127.0.0.1", port=toapis_fake.port, other_port=toapis_fake.port + 1)
    with pytest.raises(DownloadError, match=r"https only|not a public address"):
        await client.download_image(url, max_bytes=10_000_000)
    assert toapis_fake.requests == []


@pytest.mark.parametrize(
    "addresses",
    [["127.0.0.1"], ["10.20.30.40"], ["169.254.169.254"], ["::1"], ["fd12::1"], [PUBLIC, "192.168.0.9"]],
    ids=["loopback", "private", "link-local", "ipv6-loopback", "ipv6-private", "one-of-several"],
)
async def test_a_host_resolving_to_a_private_address_is_refused(
    make_client: MakeClient, toapis_fake: FakeToAPIs, addresses: list[str]
) -> None:
    client = make_client(resolver=FakeResolver({"files.example": addresses}))
    with pytest.raises(DownloadError) as caught:
        await client.download_image("https://files.example/results/1.png", max_bytes=10_000_000)
    assert "which is not a public address" in str(caught.value)
    assert caught.value.operation == "download"


@pytest.mark.parametrize(
    "url", ["https://127.0.0.1/x.png", "https://[::1]/x.png", "https://10.0.0.7/x.png", "https://169.254.169.254/"]
)
async def test_an_ip_literal_host_in_those_ranges_is_refused_without_resolving(
    make_client: MakeClient, url: str
) -> None:
    resolver = FakeResolver({})
    client = make_client(resolver=resolver)
    with pytest.raises(DownloadError, match="is not a public address"):
        await client.download_image(url, max_bytes=10_000_000)
    assert resolver.asked == []


@pytest.mark.parametrize(
    "location",
    [
        "https://169.254.169.254/latest/meta-data/",
        "https://files.example/x.png",  # resolves to 10.0.0.1
        "http://public.example/x.png",  # public, but not https
        "//files.example/x.png",  # scheme-relative: http, like the page it came from
    ],
)
async def test_a_redirect_is_checked_like_the_first_url(
    make_client: MakeClient, toapis_fake: FakeToAPIs, tmp_path: Path, location: str
) -> None:
    client = make_client(resolver=FakeResolver({"files.example": ["10.0.0.1"], "public.example": [PUBLIC]}))
    url = await completed_task_url(client, toapis_fake)
    toapis_fake.fail(Endpoint.DOWNLOAD, Fault.answer(302, b"", headers={"Location": location}))
    with pytest.raises(DownloadError, match=r"https only|not a public address"):
        await client.download_image(url, max_bytes=10_000_000, dest=tmp_path / "0.img")
    assert len(toapis_fake.requests_to(Endpoint.DOWNLOAD)) == 1
    assert names_in(tmp_path) == []


async def test_a_redirect_within_the_trusted_origin_is_followed(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    url = await completed_task_url(toapis_client, toapis_fake)
    path = URL(url).path
    toapis_fake.fail(Endpoint.DOWNLOAD, Fault.answer(307, b"", headers={"Location": path}))
    downloaded = await toapis_client.download_image(url + "?moved", max_bytes=10_000_000)
    assert downloaded.data == toapis_fake.result_png(url.split("/")[-2], 1)
    assert downloaded.url == url + "?moved"
    assert len(toapis_fake.requests_to(Endpoint.DOWNLOAD)) == 2


async def test_redirects_are_followed_a_few_times_at_most(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    url = await completed_task_url(toapis_client, toapis_fake)
    toapis_fake.fail(Endpoint.DOWNLOAD, Fault.answer(302, b"", headers={"Location": url}), times=None)
    with pytest.raises(DownloadError, match=f"more than {MAX_REDIRECTS} redirects"):
        await toapis_client.download_image(url, max_bytes=10_000_000)
    assert len(toapis_fake.requests_to(Endpoint.DOWNLOAD)) == MAX_REDIRECTS + 1


async def test_a_body_labelled_image_that_is_not_one_never_reaches_the_spool(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs, tmp_path: Path
) -> None:
    url = await completed_task_url(toapis_client, toapis_fake)
    page = b"<!doctype html><title>Sign in</title>" + b" " * 600_000  # larger than one block written to disk
    toapis_fake.fail(Endpoint.DOWNLOAD, Fault.answer(200, page, content_type="image/png"))
    with pytest.raises(DownloadError) as caught:
        await toapis_client.download_image(url, max_bytes=10_000_000, dest=tmp_path / "0.img")
    assert str(caught.value) == (
        "ToAPIs download: the files host sent 'image/png' and the bytes are not an image (HTTP 200)"
    )
    assert names_in(tmp_path) == []


async def test_a_host_that_does_not_resolve_is_a_connection_failure(make_client: MakeClient) -> None:
    resolver = FakeResolver({})
    client = make_client(resolver=resolver)
    with pytest.raises(APIConnectionError, match=r"could not resolve nowhere\.example"):
        await client.download_image("https://nowhere.example/x.png", max_bytes=10_000_000)
    assert len(resolver.asked) > 1  # retried, like any connection failure


async def test_the_allowance_is_the_trusted_origin_parameter(make_client: MakeClient, toapis_fake: FakeToAPIs) -> None:
    # Trusting another origin takes the allowance away from the base URL's: the fake's results are refused.
    client = make_client(trusted_origin="https://files.toapis.example")
    url = await completed_task_url(client, toapis_fake)
    with pytest.raises(DownloadError, match="https only"):
        await client.download_image(url, max_bytes=10_000_000)
    assert toapis_fake.requests_to(Endpoint.DOWNLOAD) == []
    with pytest.raises(ValueError, match="trusted origin"):
        make_client(trusted_origin="ftp://files.toapis.example")
