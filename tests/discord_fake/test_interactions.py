"""Interaction responses against the fake with raw HTTP: callbacks, deadline, tokens, follow-ups, components."""

from __future__ import annotations

from typing import Any

import pytest

from tests.discord_fake.conftest import CONTEXT_MENU, IMAGINE_COMMAND, RawClient, World, png_bytes
from tests.fakes.discord import (
    DID_NOT_RESPOND,
    CallbackType,
    FakeDiscord,
    InteractionRecord,
    InvocationRefused,
    Upload,
)

BUTTON_ROW: dict[str, Any] = {
    "type": 1,
    "components": [{"type": 2, "style": 1, "label": "Again", "custom_id": "again:1"}],
}
MODAL = {
    "custom_id": "prompt-modal",
    "title": "Imagine from images",
    "components": [
        {
            "type": 1,
            "components": [{"type": 4, "custom_id": "prompt", "label": "Prompt", "style": 2, "max_length": 20}],
        },
        {"type": 18, "label": "Note", "component": {"type": 4, "custom_id": "note", "style": 1, "required": False}},
    ],
}


@pytest.fixture
async def synced(http: RawClient, world: World) -> World:
    answer = await http.sync([IMAGINE_COMMAND, CONTEXT_MENU])
    assert answer.status == 200
    return world


async def slash(fake: FakeDiscord, world: World, **kwargs: Any) -> InteractionRecord:
    return await fake.invoke_slash("imagine", {"prompt": "a cat"}, user=world.alice, channel=world.general, **kwargs)


async def test_the_payload_carries_what_discord_py_reads(fake: FakeDiscord, synced: World) -> None:
    call = await fake.invoke_slash(
        "imagine",
        {"prompt": "a cat", "n": 2, "image": Upload(png_bytes(8, 6), "ref.png", "image/png")},
        user=synced.alice,
        channel=synced.general,
    )

    payload = call.payload
    for key in ("attachment_size_limit", "app_permissions", "entitlements", "authorizing_integration_owners"):
        assert key in payload
    assert payload["attachment_size_limit"] == 10 * 1024 * 1024
    assert payload["context"] == 0
    assert (payload["locale"], payload["guild_locale"]) == ("en-US", "en-US")
    assert payload["member"]["user"]["id"] == str(synced.alice.id)
    assert int(payload["member"]["permissions"]) == synced.guild.permissions_in(synced.alice, synced.general)
    assert payload["channel"]["permissions"] == payload["member"]["permissions"]
    assert int(payload["app_permissions"]) == fake.state.bot_permissions(synced.general)
    data = payload["data"]
    assert data["id"] == fake.global_commands[0]["id"]
    options = {o["name"]: o for o in data["options"]}
    assert options["n"] == {"name": "n", "type": 4, "value": 2}
    attachment = data["resolved"]["attachments"][options["image"]["value"]]
    assert (attachment["filename"], attachment["width"], attachment["height"]) == ("ref.png", 8, 6)
    assert attachment["ephemeral"] is True


async def test_the_callback_answer_holds_an_interaction_object(
    fake: FakeDiscord, synced: World, http: RawClient
) -> None:
    call = await slash(fake, synced)

    answer = await http.callback(call, {"type": 5, "data": {"flags": 64}})

    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/json"
    inner = answer.body["interaction"]
    assert inner["id"] == str(call.id)
    assert inner["type"] == 2
    assert inner["response_message_loading"] is True
    assert inner["response_message_ephemeral"] is True
    assert answer.body["resource"]["type"] == 5
    assert answer.body["resource"]["message"]["id"] == inner["response_message_id"]
    assert call.callback_type is CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
    assert call.original is not None
    assert call.original.loading
    assert call.original.ephemeral
    # No bot is connected here, so nothing was dispatched: there is no time after dispatch to measure.
    assert call.response_time is None
    assert call.callback is not None
    assert call.callback.time >= call.created_at


async def test_without_with_response_the_callback_answers_204(
    fake: FakeDiscord, synced: World, http: RawClient
) -> None:
    call = await slash(fake, synced)

    answer = await http.callback(call, {"type": 4, "data": {"content": "hi"}}, with_response=False)

    assert answer.status == 204
    assert call.original is not None
    assert call.original.content == "hi"


async def test_an_interaction_can_be_acknowledged_once(fake: FakeDiscord, synced: World, http: RawClient) -> None:
    call = await slash(fake, synced)

    first = await http.callback(call, {"type": 5})
    second = await http.callback(call, {"type": 4, "data": {"content": "again"}})

    assert first.status == 200
    assert (second.status, second.code) == (400, 40060)
    assert second.body["message"] == "Interaction has already been acknowledged."
    assert [c.error_code for c in call.refused_callbacks] == [40060]
    assert call.callback is not None
    assert call.callback.type == 5


async def test_after_the_deadline_the_interaction_failed_and_a_callback_is_unknown(
    fake: FakeDiscord, synced: World, http: RawClient
) -> None:
    call = await slash(fake, synced, deadline=0.05)

    await fake.wait_for(lambda: call.failed, 5.0)
    late = await http.callback(call, {"type": 5})

    assert call.failure == DID_NOT_RESPOND
    assert call.failed_at is not None
    assert call.failed_at >= call.created_at + 0.05
    assert (late.status, late.code, late.body["message"]) == (404, 10062, "Unknown interaction")
    assert not call.acknowledged
    assert call.original is None


async def test_the_default_deadline_is_three_seconds(fake: FakeDiscord, synced: World) -> None:
    call = await slash(fake, synced)

    assert call.deadline - call.created_at == pytest.approx(3.0)
    assert call.token_expires_at - call.created_at == pytest.approx(15 * 60)


async def test_an_expired_token_is_refused_by_every_webhook_route(
    fake: FakeDiscord, synced: World, http: RawClient
) -> None:
    call = await slash(fake, synced)
    await http.callback(call, {"type": 5})

    fake.expire_tokens()
    answers = [
        await http.webhook("PATCH", call, "/messages/@original", json_body={"content": "late"}),
        await http.webhook("GET", call, "/messages/@original"),
        await http.webhook("DELETE", call, "/messages/@original"),
        await http.webhook("POST", call, json_body={"content": "late"}, query={"wait": "true"}),
    ]

    assert {(a.status, a.code) for a in answers} == {(401, 50027)}
    assert answers[0].body["message"] == "Invalid Webhook Token"
    assert call.original is not None
    assert call.original.loading
    assert [r.error_code for r in call.refused_requests] == [50027] * 4


async def test_the_token_lifetime_is_a_parameter(fake: FakeDiscord, synced: World, http: RawClient) -> None:
    call = await slash(fake, synced, token_lifetime=0.0)

    deferred = await http.callback(call, {"type": 5})
    edit = await http.webhook("PATCH", call, "/messages/@original", json_body={"content": "late"})

    assert deferred.status == 200
    assert (edit.status, edit.code) == (401, 50027)


async def test_advancing_the_clock_passes_deadlines_and_expires_tokens(
    fake: FakeDiscord, synced: World, http: RawClient
) -> None:
    unanswered = await slash(fake, synced)
    answered = await slash(fake, synced)
    assert (await http.callback(answered, {"type": 5})).status == 200

    fake.advance_time(fake.config.ack_deadline + 1)
    late = await http.callback(unanswered, {"type": 5})
    still_valid = await http.webhook("PATCH", answered, "/messages/@original", json_body={"content": "progress"})
    fake.advance_time(fake.config.token_lifetime)
    expired = await http.webhook("PATCH", answered, "/messages/@original", json_body={"content": "done"})

    assert unanswered.failure == DID_NOT_RESPOND
    assert late.code == 10062
    assert still_valid.status == 200
    assert (expired.status, expired.code) == (401, 50027)
    with pytest.raises(ValueError, match="forward"):
        fake.advance_time(-1)


async def test_a_webhook_for_another_application_is_unknown(fake: FakeDiscord, synced: World, http: RawClient) -> None:
    call = await slash(fake, synced)
    await http.callback(call, {"type": 5})

    answer = await http.request("GET", f"/webhooks/1/{call.token}/messages/@original", auth=None)

    assert (answer.status, answer.code) == (404, 10015)


async def test_editing_the_deferred_reply_keeps_every_version(
    fake: FakeDiscord, synced: World, http: RawClient
) -> None:
    call = await slash(fake, synced)
    await http.callback(call, {"type": 5})

    await http.webhook("PATCH", call, "/messages/@original", json_body={"content": "queued"})
    final = await http.webhook(
        "PATCH",
        call,
        "/messages/@original",
        json_body={"content": "done", "attachments": [{"id": 0, "filename": "result.png"}], "components": [BUTTON_ROW]},
        files=[("ignored-name.png", png_bytes())],
    )

    assert final.status == 200
    original = call.original
    assert original is not None
    assert [v.content for v in original.versions] == ["", "queued", "done"]
    assert original.versions[0].flags & 128
    assert not original.loading
    assert original.attachments[0].filename == "result.png"
    assert original.custom_ids() == ["again:1"]
    assert original.edits[1].time >= original.edits[0].time >= original.created_at


async def test_files_on_an_edit_replace_the_attachments_unless_kept_by_id(
    fake: FakeDiscord, synced: World, http: RawClient
) -> None:
    call = await slash(fake, synced)
    await http.callback(call, {"type": 5})
    first = await http.webhook(
        "PATCH", call, "/messages/@original", json_body={"content": "one"}, files=[("a.txt", b"a")]
    )
    kept_id = first.body["attachments"][0]["id"]

    both = await http.webhook(
        "PATCH",
        call,
        "/messages/@original",
        json_body={"attachments": [{"id": kept_id}, {"id": 0, "filename": "b.txt"}]},
        files=[("b.txt", b"b")],
    )
    replaced = await http.webhook(
        "PATCH",
        call,
        "/messages/@original",
        json_body={"attachments": [{"id": 0, "filename": "c.txt"}]},
        files=[("c.txt", b"c")],
    )
    cleared = await http.webhook("PATCH", call, "/messages/@original", json_body={"attachments": []})

    assert [a["filename"] for a in both.body["attachments"]] == ["a.txt", "b.txt"]
    assert [a["filename"] for a in replaced.body["attachments"]] == ["c.txt"]
    assert cleared.body["attachments"] == []
    assert cleared.body["content"] == "one"


async def test_the_first_followup_after_a_defer_resolves_the_placeholder(
    fake: FakeDiscord, synced: World, http: RawClient
) -> None:
    call = await slash(fake, synced)
    await http.callback(call, {"type": 5})

    first = await http.webhook("POST", call, json_body={"content": "result", "flags": 64}, query={"wait": "true"})
    second = await http.webhook("POST", call, json_body={"content": "more", "flags": 64}, query={"wait": "true"})

    # Discord keeps the defer's visibility: a public defer cannot become ephemeral.
    assert call.original is not None
    assert first.body["id"] == str(call.original.id)
    assert call.followups[0] is call.original
    assert not call.original.ephemeral
    assert call.original.content == "result"
    assert second.body["id"] != first.body["id"]
    assert call.followups[1].ephemeral


async def test_after_deleting_the_deferred_reply_a_followup_can_be_ephemeral(
    fake: FakeDiscord, synced: World, http: RawClient
) -> None:
    call = await slash(fake, synced)
    await http.callback(call, {"type": 5})

    deleted = await http.webhook("DELETE", call, "/messages/@original")
    refusal = await http.webhook(
        "POST", call, json_body={"content": "Quota reached", "flags": 64}, query={"wait": "true"}
    )
    gone = await http.webhook("GET", call, "/messages/@original")

    assert deleted.status == 204
    assert refusal.status == 200
    assert call.original is not None
    assert call.original.deleted
    assert call.followups[0].ephemeral
    assert call.followups[0].content == "Quota reached"
    assert (gone.status, gone.code) == (404, 10008)
    assert fake.channel_messages(synced.general) == []


async def test_a_followup_before_any_response_is_refused(fake: FakeDiscord, synced: World, http: RawClient) -> None:
    call = await slash(fake, synced)

    answer = await http.webhook("POST", call, json_body={"content": "early"}, query={"wait": "true"})

    assert (answer.status, answer.code) == (404, 10015)


async def test_limits_apply_to_interaction_responses_with_data_in_the_path(
    fake: FakeDiscord, synced: World, http: RawClient
) -> None:
    call = await slash(fake, synced)

    refused = await http.callback(call, {"type": 4, "data": {"content": "x" * 2001}})
    accepted = await http.callback(call, {"type": 4, "data": {"content": "ok"}})

    assert refused.field_errors("data", "content") == ["BASE_TYPE_MAX_LENGTH"]
    assert accepted.status == 200


async def test_a_file_over_the_interaction_limit_is_refused(fake: FakeDiscord, synced: World, http: RawClient) -> None:
    call = await slash(fake, synced)
    await http.callback(call, {"type": 5})

    answer = await http.webhook(
        "PATCH", call, "/messages/@original", json_body={}, files=[("big.bin", b"\0" * (10 * 1024 * 1024 + 1))]
    )

    assert (answer.status, answer.code) == (413, 40005)


async def test_update_message_is_only_for_components(fake: FakeDiscord, synced: World, http: RawClient) -> None:
    call = await slash(fake, synced)

    answer = await http.callback(call, {"type": 7, "data": {"content": "x"}})

    assert (answer.status, answer.code) == (400, 50035)
    assert answer.field_errors("type") == ["INTERACTION_CALLBACK_TYPE_INVALID"]
    assert not call.acknowledged


async def test_a_click_updates_the_message_it_is_on(fake: FakeDiscord, synced: World, http: RawClient) -> None:
    call = await slash(fake, synced)
    await http.callback(call, {"type": 4, "data": {"content": "result", "components": [BUTTON_ROW]}})
    assert call.original is not None

    click = await fake.click(call.original, "again:1", synced.bob)
    updated = await http.callback(click, {"type": 7, "data": {"content": "clicked", "components": []}})

    assert click.payload["data"] == {"custom_id": "again:1", "component_type": 2}
    assert click.payload["message"]["id"] == str(call.original.id)
    assert click.payload["member"]["user"]["id"] == str(synced.bob.id)
    assert updated.body["resource"]["message"]["content"] == "clicked"
    assert click.original is call.original
    assert call.original.content == "clicked"
    with pytest.raises(InvocationRefused, match="no component"):
        await fake.click(call.original, "again:1", synced.bob)


async def test_a_deferred_update_then_edit_of_original_edits_the_component_message(
    fake: FakeDiscord, synced: World, http: RawClient
) -> None:
    message_answer = await http.request(
        "POST", f"/channels/{synced.general.id}/messages", json_body={"content": "pick", "components": [BUTTON_ROW]}
    )
    message = next(m for m in fake.messages if m.id == int(message_answer.body["id"]))

    click = await fake.click(message, "again:1", synced.alice)
    await http.callback(click, {"type": 6})
    await http.webhook("PATCH", click, "/messages/@original", json_body={"content": "picked"})

    assert message.content == "picked"
    assert [v.via for v in message.versions] == ["channel", "webhook"]


async def test_ephemeral_messages_can_be_clicked_only_by_their_member(
    fake: FakeDiscord, synced: World, http: RawClient
) -> None:
    call = await slash(fake, synced)
    await http.callback(call, {"type": 4, "data": {"content": "secret", "flags": 64, "components": [BUTTON_ROW]}})
    assert call.original is not None

    with pytest.raises(InvocationRefused, match="ephemeral"):
        await fake.click(call.original, "again:1", synced.bob)
    own = await fake.click(call.original, "again:1", synced.alice)

    assert own.source_message is call.original


async def test_component_rules_are_checked(fake: FakeDiscord, synced: World, http: RawClient) -> None:
    duplicate = {"type": 1, "components": [BUTTON_ROW["components"][0], BUTTON_ROW["components"][0]]}
    six_rows = [BUTTON_ROW] * 6
    no_id = {"type": 1, "components": [{"type": 2, "style": 1, "label": "x"}]}

    answers = [
        await http.request(
            "POST", f"/channels/{synced.general.id}/messages", json_body={"content": "x", "components": c}
        )
        for c in ([duplicate], six_rows, [no_id])
    ]

    assert [a.code for a in answers] == [50035, 50035, 50035]
    assert answers[0].field_errors("components") == ["COMPONENT_CUSTOM_ID_DUPLICATED"]
    assert "BASE_TYPE_REQUIRED" in answers[2].field_errors("components", 0, "components", 0, "custom_id")


async def test_a_select_needs_values_among_its_options(fake: FakeDiscord, synced: World, http: RawClient) -> None:
    select = {
        "type": 1,
        "components": [
            {"type": 3, "custom_id": "size", "options": [{"label": "S", "value": "s"}, {"label": "L", "value": "l"}]}
        ],
    }
    answer = await http.request(
        "POST", f"/channels/{synced.general.id}/messages", json_body={"content": "x", "components": [select]}
    )
    message = next(m for m in fake.messages if m.id == int(answer.body["id"]))

    with pytest.raises(InvocationRefused):
        await fake.click(message, "size", synced.alice, values=["xl"])
    picked = await fake.click(message, "size", synced.alice, values=["l"])

    assert picked.payload["data"] == {"custom_id": "size", "component_type": 3, "values": ["l"]}


async def test_a_context_menu_opens_a_modal_and_the_submit_mirrors_it(
    fake: FakeDiscord, synced: World, http: RawClient
) -> None:
    target = await fake.post_message(synced.general, synced.bob, "refs", files=[Upload(png_bytes(), "r.png")])
    call = await fake.invoke_message_context("Imagine from images", target, user=synced.alice)

    opened = await http.callback(call, {"type": 9, "data": MODAL})
    with pytest.raises(InvocationRefused, match="required"):
        await fake.submit_modal(call, {"note": "x"})
    with pytest.raises(InvocationRefused, match="characters"):
        await fake.submit_modal(call, {"prompt": "p" * 21})
    with pytest.raises(InvocationRefused, match="only the member"):
        await fake.submit_modal(call, {"prompt": "a dog"}, user=synced.bob)
    submit = await fake.submit_modal(call, {"prompt": "a dog"})
    modal_again = await http.callback(submit, {"type": 9, "data": MODAL})

    assert opened.status == 200
    assert "resource" not in opened.body
    assert call.modal == MODAL
    data = call.payload["data"]
    assert (data["type"], data["target_id"]) == (3, str(target.id))
    resolved = data["resolved"]["messages"][str(target.id)]
    assert resolved["attachments"][0]["filename"] == "r.png"
    assert submit.payload["data"] == {
        "custom_id": "prompt-modal",
        "components": [
            {"type": 1, "id": 1, "components": [{"type": 4, "id": 2, "custom_id": "prompt", "value": "a dog"}]},
            {"type": 18, "id": 3, "component": {"type": 4, "id": 4, "custom_id": "note", "value": ""}},
        ],
    }
    assert submit.parent is call
    assert modal_again.status == 400
    with pytest.raises(InvocationRefused, match="already"):
        await fake.submit_modal(call, {"prompt": "again"})


async def test_an_interaction_without_a_gateway_session_is_never_delivered(fake: FakeDiscord, synced: World) -> None:
    call = await slash(fake, synced, deadline=0.05)

    await fake.wait_for(lambda: call.failed, 5.0)

    assert call.delivered_by is None
    assert call.dispatched_at is None


async def test_suggestions_are_held_to_discords_limits(fake: FakeDiscord, world: World, http: RawClient) -> None:
    model = {"type": 3, "name": "model", "description": "model", "required": False, "autocomplete": True}
    synced = await http.sync([IMAGINE_COMMAND | {"options": [*IMAGINE_COMMAND["options"], model]}])
    assert synced.status == 200

    def typing() -> InteractionRecord:
        return fake._invocations.autocomplete(
            "imagine", {"model": "gp"}, focused="model", user=world.alice, channel=world.general, locale=None
        )

    too_many = await http.callback(typing(), {"type": 8, "data": {"choices": [{"name": "a", "value": "a"}] * 26}})
    long_name = await http.callback(typing(), {"type": 8, "data": {"choices": [{"name": "a" * 101, "value": "a"}]}})
    long_value = await http.callback(typing(), {"type": 8, "data": {"choices": [{"name": "a", "value": "a" * 101}]}})
    fitting = await http.callback(typing(), {"type": 8, "data": {"choices": [{"name": "a" * 100, "value": "a" * 100}]}})

    assert [answer.status for answer in (too_many, long_name, long_value, fitting)] == [400, 400, 400, 200]
