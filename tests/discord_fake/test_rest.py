"""The fake's REST API with raw HTTP: headers, errors, limits, attachments, nonces, mentions, permissions."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.discord_fake.conftest import RawClient, World, build_world, png_bytes
from tests.fakes.discord import FakeDiscord, Permission, Upload

MiB = 1024 * 1024


def messages_path(world: World, channel: str = "general") -> str:
    return f"/channels/{getattr(world, channel.replace('-', '_')).id}/messages"


async def test_json_answers_have_exact_content_type_and_rate_limit_headers(fake: FakeDiscord, http: RawClient) -> None:
    answer = await http.request("GET", "/users/@me")

    assert answer.status == 200
    # discord.py treats anything but exactly this header as text.
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.body["id"] == str(fake.bot_user.id)
    assert answer.body["bot"] is True
    for header in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset-After", "X-RateLimit-Bucket"):
        assert header in answer.headers
    assert int(answer.headers["X-RateLimit-Remaining"]) > 0


async def test_application_info_is_what_login_reads(fake: FakeDiscord, http: RawClient) -> None:
    answer = await http.request("GET", "/oauth2/applications/@me")

    assert answer.status == 200
    for key in ("id", "name", "description", "icon", "bot_public", "bot_require_code_grant", "owner", "verify_key"):
        assert key in answer.body
    assert answer.body["id"] == str(fake.application_id)
    assert answer.body["interactions_endpoint_url"] is None


async def test_bot_routes_refuse_a_wrong_token(http: RawClient) -> None:
    missing = await http.request("GET", "/users/@me", auth=None)
    wrong = await http.request("GET", "/users/@me", auth="Bot not-the-token")

    assert (missing.status, missing.code) == (401, 0)
    assert (wrong.status, wrong.code) == (401, 0)


async def test_unknown_routes_answer_404_json_and_are_recorded(fake: FakeDiscord, http: RawClient) -> None:
    answer = await http.request("GET", "/guilds/1/bans")
    wrong_method = await http.request("PUT", "/users/@me")

    assert answer.status == 404
    assert answer.body == {"message": "404: Not Found", "code": 0}
    assert wrong_method.status == 405
    assert [(r.method, r.path) for r in fake.unknown_routes] == [
        ("GET", "/api/v10/guilds/1/bans"),
        ("PUT", "/api/v10/users/@me"),
    ]


async def test_every_request_is_recorded_with_its_time_status_and_body(
    fake: FakeDiscord, world: World, http: RawClient
) -> None:
    await http.request("POST", messages_path(world), json_body={"content": "hello"})
    await http.request("POST", messages_path(world), json_body={"content": "x" * 2001})

    posted = fake.requests_to("POST", "/channels/{channel_id}/messages")
    assert [(r.status, r.error_code) for r in posted] == [(200, None), (400, 50035)]
    assert posted[0].body == {"content": "hello"}
    assert 0 <= posted[0].time <= posted[1].time


async def test_content_over_2000_characters_is_invalid_form_body(world: World, http: RawClient) -> None:
    at_limit = await http.request("POST", messages_path(world), json_body={"content": "x" * 2000})
    over = await http.request("POST", messages_path(world), json_body={"content": "x" * 2001})

    assert at_limit.status == 200
    assert (over.status, over.code, over.body["message"]) == (400, 50035, "Invalid Form Body")
    assert over.field_errors("content") == ["BASE_TYPE_MAX_LENGTH"]


@pytest.mark.parametrize(
    ("embed", "path"),
    [
        ({"title": "t" * 257}, ("embeds", 0, "title")),
        ({"description": "d" * 4097}, ("embeds", 0, "description")),
        ({"fields": [{"name": "n" * 257, "value": "v"}]}, ("embeds", 0, "fields", 0, "name")),
        ({"fields": [{"name": "n", "value": "v" * 1025}]}, ("embeds", 0, "fields", 0, "value")),
        ({"fields": [{"name": "n", "value": ""}]}, ("embeds", 0, "fields", 0, "value")),
        ({"fields": [{"name": "n", "value": "v"}] * 26}, ("embeds", 0, "fields")),
        ({"footer": {"text": "f" * 2049}}, ("embeds", 0, "footer", "text")),
        ({"author": {"name": "a" * 257}}, ("embeds", 0, "author", "name")),
        ({"image": {"url": "ftp://example.com/x.png"}}, ("embeds", 0, "image", "url")),
    ],
)
async def test_embed_field_limits(world: World, http: RawClient, embed: dict[str, Any], path: tuple[Any, ...]) -> None:
    answer = await http.request("POST", messages_path(world), json_body={"embeds": [embed]})

    assert (answer.status, answer.code) == (400, 50035)
    assert answer.field_errors(*path)


async def test_embeds_at_their_limits_are_accepted(world: World, http: RawClient) -> None:
    embed = {
        "title": "t" * 256,
        "description": "d" * 4096,
        "fields": [{"name": "n" * 100, "value": "v" * 100}] * 7,
        "footer": {"text": "f" * 48},
        "image": {"url": "attachment://result.png"},
    }
    assert 256 + 4096 + 7 * 200 + 48 == 5800

    answer = await http.request("POST", messages_path(world), json_body={"embeds": [embed]})

    assert answer.status == 200
    assert answer.body["embeds"][0]["title"] == "t" * 256


async def test_embeds_over_6000_characters_in_total_or_more_than_10(world: World, http: RawClient) -> None:
    too_big = await http.request(
        "POST", messages_path(world), json_body={"embeds": [{"description": "d" * 3001}, {"description": "d" * 3000}]}
    )
    too_many = await http.request("POST", messages_path(world), json_body={"embeds": [{"title": "t"}] * 11})
    exactly = await http.request(
        "POST", messages_path(world), json_body={"embeds": [{"description": "d" * 3000}, {"description": "d" * 3000}]}
    )

    assert too_big.field_errors("embeds") == ["MAX_EMBED_SIZE_EXCEEDED"]
    assert too_many.field_errors("embeds") == ["BASE_TYPE_MAX_LENGTH"]
    assert exactly.status == 200


async def test_at_most_10_files_per_message(world: World, http: RawClient) -> None:
    ten = [(f"f{n}.txt", b"x") for n in range(10)]
    eleven = [(f"f{n}.txt", b"x") for n in range(11)]

    accepted = await http.request("POST", messages_path(world), json_body={}, files=ten)
    refused = await http.request("POST", messages_path(world), json_body={}, files=eleven)

    assert accepted.status == 200
    assert len(accepted.body["attachments"]) == 10
    assert (refused.status, refused.code) == (400, 50035)
    assert refused.field_errors("attachments") == ["BASE_TYPE_MAX_LENGTH"]


async def test_a_file_over_10_mib_is_request_entity_too_large(fake: FakeDiscord, world: World, http: RawClient) -> None:
    at_limit = await http.request("POST", messages_path(world), files=[("big.bin", b"\0" * (10 * MiB))])
    over = await http.request("POST", messages_path(world), files=[("big.bin", b"\0" * (10 * MiB + 1))])

    assert at_limit.status == 200
    assert (over.status, over.code, over.body["message"]) == (413, 40005, "Request entity too large")
    assert len(fake.channel_messages(world.general)) == 1


async def test_a_boosted_guild_has_its_own_file_limit(fake: FakeDiscord, http: RawClient) -> None:
    guild = fake.add_guild("Small uploads", max_file_size=1000)
    channel = guild.add_text_channel("general")

    ok = await http.request("POST", f"/channels/{channel.id}/messages", files=[("a.bin", b"\0" * 1000)])
    over = await http.request("POST", f"/channels/{channel.id}/messages", files=[("a.bin", b"\0" * 1001)])

    assert ok.status == 200
    assert over.code == 40005


async def test_an_empty_message_is_refused(world: World, http: RawClient) -> None:
    answer = await http.request("POST", messages_path(world), json_body={"content": ""})

    assert (answer.status, answer.code) == (400, 50006)


async def test_invalid_json_is_refused(fake: FakeDiscord, world: World, http: RawClient) -> None:
    async with http.session.post(
        f"{fake.api_base}{messages_path(world)}",
        data=b"{not json",
        headers={"Authorization": f"Bot {fake.token}", "Content-Type": "application/json"},
    ) as response:
        body = await response.json(content_type=None)

    assert (response.status, body["code"]) == (400, 50109)


async def test_files_are_kept_with_their_bytes_and_served_by_the_cdn(
    fake: FakeDiscord, world: World, http: RawClient
) -> None:
    image = png_bytes(6, 4)
    answer = await http.request(
        "POST",
        messages_path(world),
        json_body={"content": "files", "attachments": [{"id": 0, "filename": "cat.png", "description": "a cat"}]},
        files=[("upload.png", image), ("notes.txt", b"hello")],
    )

    assert answer.status == 200
    first, second = answer.body["attachments"]
    # Discord names the file as the attachments array says, and reads the type from the bytes.
    assert (first["filename"], first["content_type"], first["width"], first["height"]) == ("cat.png", "image/png", 6, 4)
    assert first["description"] == "a cat"
    assert (second["filename"], second["size"]) == ("notes.txt", 5)
    async with http.session.get(first["url"]) as response:
        assert response.status == 200
        assert await response.read() == image
    record = fake.channel_messages(world.general)[-1]
    assert [a.data for a in record.attachments] == [image, b"hello"]
    assert record.attachments[0].declared_content_type == "application/octet-stream"


async def test_cdn_urls_are_signed_and_expire(fake: FakeDiscord, world: World, http: RawClient) -> None:
    answer = await http.request("POST", messages_path(world), files=[("a.txt", b"secret")])
    url = answer.body["attachments"][0]["url"]
    tampered = url.replace("hm=", "hm=0")

    async with http.session.get(tampered) as response:
        assert response.status == 404
    async with http.session.get(url.split("?")[0]) as response:
        assert response.status == 404
    fake.expire_attachment_urls()
    async with http.session.get(url) as response:
        assert response.status == 404


async def test_a_nonce_with_enforce_nonce_returns_the_message_already_created(
    fake: FakeDiscord, world: World, http: RawClient
) -> None:
    body = {"content": "result", "nonce": "job-42", "enforce_nonce": True}
    first = await http.request("POST", messages_path(world), json_body=body)
    repeat = await http.request("POST", messages_path(world), json_body=body)
    unenforced = await http.request("POST", messages_path(world), json_body={"content": "again", "nonce": "job-42"})

    assert first.status == repeat.status == 200
    assert repeat.body["id"] == first.body["id"]
    assert unenforced.body["id"] != first.body["id"]
    assert [m.content for m in fake.channel_messages(world.general)] == ["result", "again"]


async def test_a_nonce_longer_than_25_characters_is_refused(world: World, http: RawClient) -> None:
    answer = await http.request(
        "POST", messages_path(world), json_body={"content": "x", "nonce": "n" * 26, "enforce_nonce": True}
    )

    assert answer.field_errors("nonce") == ["BASE_TYPE_MAX_LENGTH"]


async def test_the_nonce_window_is_a_parameter(http: RawClient) -> None:
    # A window of zero: any earlier message is already outside it.
    async with FakeDiscord(nonce_window=0.0) as short:
        world = build_world(short)
        client = RawClient(short, http.session)
        body = {"content": "result", "nonce": "job-1", "enforce_nonce": True}
        first = await client.request("POST", messages_path(world), json_body=body)
        later = await client.request("POST", messages_path(world), json_body=body)

    assert later.body["id"] != first.body["id"]


async def test_past_the_nonce_window_a_repost_creates_a_second_message(
    fake: FakeDiscord, world: World, http: RawClient
) -> None:
    body = {"content": "result", "nonce": "job-7", "enforce_nonce": True}
    first = await http.request("POST", messages_path(world), json_body=body)
    fake.advance_time(fake.config.nonce_window - 1)
    within = await http.request("POST", messages_path(world), json_body=body)
    fake.advance_time(2)

    past = await http.request("POST", messages_path(world), json_body=body)

    assert within.body["id"] == first.body["id"]
    assert past.status == 200
    assert past.body["id"] != first.body["id"]
    assert [m.content for m in fake.channel_messages(world.general)] == ["result", "result"]


async def test_a_repost_whose_message_was_deleted_meanwhile_is_unknown_message(
    fake: FakeDiscord, world: World, http: RawClient
) -> None:
    body = {"content": "result", "nonce": "job-8", "enforce_nonce": True}
    first = await http.request("POST", messages_path(world), json_body=body)
    await http.request("DELETE", f"{messages_path(world)}/{first.body['id']}")

    repost = await http.request("POST", messages_path(world), json_body=body)

    assert (repost.status, repost.code) == (404, 10008)
    assert fake.channel_messages(world.general) == []


async def test_mentions_follow_allowed_mentions(fake: FakeDiscord, world: World, http: RawClient) -> None:
    pinging = world.guild.add_role("Pingable", mentionable=True)
    text = f"@everyone {world.alice.mention} {world.bob.mention} {pinging.mention}"

    default = await http.request("POST", messages_path(world), json_body={"content": text})
    none = await http.request(
        "POST", messages_path(world), json_body={"content": text, "allowed_mentions": {"parse": []}}
    )
    only_alice = await http.request(
        "POST",
        messages_path(world),
        json_body={"content": text, "allowed_mentions": {"parse": [], "users": [str(world.alice.id)]}},
    )
    exclusive = await http.request(
        "POST",
        messages_path(world),
        json_body={"content": text, "allowed_mentions": {"parse": ["users"], "users": [str(world.alice.id)]}},
    )

    records = {m.id: m for m in fake.messages}
    everything = records[int(default.body["id"])]
    assert everything.pings.everyone
    assert everything.pings.users == {world.alice.id, world.bob.id}
    assert everything.pings.roles == {pinging.id}
    assert default.body["mention_everyone"] is True
    assert records[int(none.body["id"])].mentions_nobody
    assert none.body["mentions"] == []
    assert records[int(none.body["id"])].current.mentioned.users == {world.alice.id, world.bob.id}
    assert records[int(only_alice.body["id"])].pings.users == {world.alice.id}
    assert exclusive.field_errors("allowed_mentions") == ["MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE"]


async def test_everyone_pings_only_with_mention_everyone_permission(http: RawClient) -> None:
    async with FakeDiscord() as fake:
        guild = fake.add_guild(
            "Strict", everyone_permissions=Permission.everyone_default() & ~Permission.MENTION_EVERYONE
        )
        channel = guild.add_text_channel("general")
        client = RawClient(fake, http.session)
        await client.request("POST", f"/channels/{channel.id}/messages", json_body={"content": "@everyone hi"})

        assert fake.channel_messages(channel)[0].mentions_nobody


async def test_channel_permissions_are_enforced(fake: FakeDiscord, world: World, http: RawClient) -> None:
    hidden = await http.request("POST", messages_path(world, "hidden"), json_body={"content": "x"})
    no_files = await http.request("POST", messages_path(world, "no-files"), files=[("a.txt", b"x")])
    embed_only = await http.request("POST", messages_path(world, "no-embeds"), json_body={"embeds": [{"title": "t"}]})
    embed_and_text = await http.request(
        "POST", messages_path(world, "no-embeds"), json_body={"content": "text", "embeds": [{"title": "t"}]}
    )
    history = await http.request("GET", messages_path(world, "hidden"))

    assert (hidden.status, hidden.code) == (403, 50001)
    assert (no_files.status, no_files.code) == (403, 50013)
    assert (embed_only.status, embed_only.code) == (403, 50013)
    # Without Embed Links the text goes through and the embeds are dropped.
    assert embed_and_text.status == 200
    assert embed_and_text.body["embeds"] == []
    assert history.code == 50001


async def test_editing_deleting_and_reading_channel_messages(fake: FakeDiscord, world: World, http: RawClient) -> None:
    own = await http.request("POST", messages_path(world), json_body={"content": "v1"})
    theirs = await fake.post_message(world.general, world.alice, "member text")
    path = messages_path(world)

    edited = await http.request("PATCH", f"{path}/{own.body['id']}", json_body={"content": "v2"})
    edit_theirs = await http.request("PATCH", f"{path}/{theirs.id}", json_body={"content": "hacked"})
    delete_theirs = await http.request("DELETE", f"{path}/{theirs.id}")
    listed = await http.request("GET", path, query={"limit": "10"})
    deleted = await http.request("DELETE", f"{path}/{own.body['id']}")
    gone = await http.request("GET", f"{path}/{own.body['id']}")

    assert edited.body["content"] == "v2"
    assert edited.body["edited_timestamp"] is not None
    assert (edit_theirs.status, edit_theirs.code) == (403, 50005)
    assert (delete_theirs.status, delete_theirs.code) == (403, 50013)
    # Without the Message Content intent the bot reads other members' messages empty.
    assert [m["content"] for m in listed.body] == ["", "v2"]
    assert deleted.status == 204
    assert "Content-Type" not in deleted.headers
    assert (gone.status, gone.code) == (404, 10008)
    record = next(m for m in fake.messages if m.id == int(own.body["id"]))
    assert [v.content for v in record.versions] == ["v1", "v2"]
    assert record.deleted


async def test_fetch_routes_a_bot_uses(fake: FakeDiscord, world: World, http: RawClient) -> None:
    channel = await http.request("GET", f"/channels/{world.general.id}")
    member = await http.request("GET", f"/guilds/{world.guild.id}/members/{world.alice.id}")
    stranger = await http.request("GET", f"/guilds/{world.guild.id}/members/1")
    guild = await http.request("GET", f"/guilds/{world.guild.id}")
    gateway = await http.request("GET", "/gateway/bot")
    guilds = await http.request("GET", "/users/@me/guilds")

    assert channel.body["name"] == "general"
    assert member.body["user"]["username"] == "alice"
    assert stranger.code == 10007
    assert guild.body["owner_id"] == str(world.guild.owner.id)
    assert gateway.body["url"] == fake.gateway_url
    assert gateway.body["shards"] == 1
    assert [g["id"] for g in guilds.body] == [str(world.guild.id)]


async def test_an_injected_429_has_what_discord_py_needs_to_retry(fake: FakeDiscord, http: RawClient) -> None:
    injection = fake.inject_429("GET /users/@me", retry_after=0.25)

    limited = await http.request("GET", "/users/@me")
    after = await http.request("GET", "/users/@me")

    assert limited.status == 429
    assert limited.headers["Content-Type"] == "application/json"
    assert limited.headers["Via"]
    assert limited.headers["Retry-After"] == "1"
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert limited.body == {"message": "You are being rate limited.", "code": 0, "retry_after": 0.25, "global": False}
    assert after.status == 200
    assert (injection.hits, injection.remaining) == (1, 0)


async def test_a_global_429(fake: FakeDiscord, http: RawClient) -> None:
    fake.inject_429("*", is_global=True, retry_after=1.5)

    answer = await http.request("GET", "/users/@me")

    assert answer.headers["X-RateLimit-Global"] == "true"
    assert answer.headers["X-RateLimit-Scope"] == "user"
    assert answer.body["global"] is True


async def test_route_buckets_answer_429_when_exhausted(http: RawClient) -> None:
    async with FakeDiscord(route_limits={"POST /channels/*/messages": (2, 60.0)}) as fake:
        world = build_world(fake)
        client = RawClient(fake, http.session)
        answers = [await client.request("POST", messages_path(world), json_body={"content": "x"}) for _ in range(3)]
        other_channel = await client.request("POST", messages_path(world, "no-files"), json_body={"content": "x"})

    assert [a.status for a in answers] == [200, 200, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers[:2]] == ["1", "0"]
    assert 59 < answers[2].body["retry_after"] <= 60
    assert other_channel.status == 200


async def test_member_messages_can_carry_attachments(fake: FakeDiscord, world: World) -> None:
    message = await fake.post_message(world.general, world.alice, "look", files=[Upload(png_bytes(), "ref.png")])

    assert message.author is world.alice.user
    assert message.attachments[0].content_type == "image/png"
    assert fake.channel_messages(world.general) == [message]


async def test_wait_for_times_out_with_a_message(fake: FakeDiscord) -> None:
    with pytest.raises(TimeoutError, match="never"):
        await fake.wait_for(lambda: False, 0.05, what="never")


async def test_wait_for_wakes_up_on_a_change(fake: FakeDiscord, world: World) -> None:
    async def later() -> None:
        await asyncio.sleep(0)
        await fake.post_message(world.general, world.alice, "now")

    task = asyncio.create_task(later())
    found = await fake.wait_for(lambda: fake.channel_messages(world.general), 5.0)
    await task

    assert [m.content for m in found] == ["now"]
