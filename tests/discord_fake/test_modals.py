"""Modals with Labels, Text Inputs and String Selects as Discord takes them, checks them and sends them back."""

from __future__ import annotations

from typing import Any

import pytest

from tests.discord_fake.conftest import CONTEXT_MENU, IMAGINE_COMMAND, RawClient, World, png_bytes
from tests.fakes.discord import FakeDiscord, InteractionRecord, InvocationRefused, Upload


def select(custom_id: str, values: list[str], *, default: str | None = None, **extra: Any) -> dict[str, Any]:
    options = [{"label": v.upper(), "value": v, **({"default": True} if v == default else {})} for v in values]
    return {"type": 3, "custom_id": custom_id, "options": options, **extra}


def label(text: str, component: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": 18, "label": text, "component": component, **extra}


def modal(*components: dict[str, Any], title: str = "Remix") -> dict[str, Any]:
    return {"custom_id": "remix-form", "title": title, "components": list(components)}


PROMPT = {"type": 4, "custom_id": "prompt", "style": 2, "value": "a red fox", "max_length": 100}
GOOD = modal(
    label("Prompt", PROMPT),
    label("Aspect", select("aspect", ["1:1", "16:9", "9:16"], default="16:9"), description="The shape"),
    label("Resolution", select("resolution", ["1k", "2k"], default="1k")),
)


async def opened(fake: FakeDiscord, world: World) -> InteractionRecord:
    target = await fake.post_message(world.general, world.bob, "refs", files=[Upload(png_bytes(), "r.png")])
    return await fake.invoke_message_context("Imagine from images", target, user=world.alice)


@pytest.fixture
async def synced(http: RawClient, world: World) -> World:
    assert (await http.sync([IMAGINE_COMMAND, CONTEXT_MENU])).status == 200
    return world


async def test_a_submit_returns_labels_with_their_component_the_prefilled_text_and_the_defaults(
    fake: FakeDiscord, synced: World, http: RawClient
) -> None:
    call = await opened(fake, synced)
    assert (await http.callback(call, {"type": 9, "data": GOOD})).status == 200

    submit = await fake.submit_modal(call, {"resolution": ["2k"]})

    assert submit.payload["type"] == 5
    assert submit.payload["data"] == {
        "custom_id": "remix-form",
        "components": [
            {"type": 18, "id": 1, "component": {"type": 4, "id": 2, "custom_id": "prompt", "value": "a red fox"}},
            {"type": 18, "id": 3, "component": {"type": 3, "id": 4, "custom_id": "aspect", "values": ["16:9"]}},
            {"type": 18, "id": 5, "component": {"type": 3, "id": 6, "custom_id": "resolution", "values": ["2k"]}},
        ],
    }


async def test_a_submit_takes_only_what_the_member_could_pick_or_type(
    fake: FakeDiscord, synced: World, http: RawClient
) -> None:
    call = await opened(fake, synced)
    await http.callback(call, {"type": 9, "data": GOOD})

    with pytest.raises(InvocationRefused, match="not among the options"):
        await fake.submit_modal(call, {"aspect": ["21:9"]})
    with pytest.raises(InvocationRefused, match="choose 1-1"):
        await fake.submit_modal(call, {"aspect": ["1:1", "16:9"]})
    with pytest.raises(InvocationRefused, match="0-100 characters"):
        await fake.submit_modal(call, {"prompt": "x" * 101})
    with pytest.raises(InvocationRefused, match="required"):
        await fake.submit_modal(call, {"prompt": ""})
    sent = await fake.submit_modal(call, {"prompt": "a blue fox", "aspect": "9:16"})

    components = sent.payload["data"]["components"]
    assert [c["component"].get("value", c["component"].get("values")) for c in components] == [
        "a blue fox",
        ["9:16"],
        ["1k"],
    ]


async def test_a_required_select_without_a_default_must_be_picked(
    fake: FakeDiscord, synced: World, http: RawClient
) -> None:
    call = await opened(fake, synced)
    await http.callback(call, {"type": 9, "data": modal(label("Aspect", select("aspect", ["1:1", "3:2"])))})

    with pytest.raises(InvocationRefused, match="required"):
        await fake.submit_modal(call, {})
    assert (await fake.submit_modal(call, {"aspect": "3:2"})).payload["data"]["components"][0]["component"][
        "values"
    ] == ["3:2"]


@pytest.mark.parametrize(
    ("data", "path", "code"),
    [
        (modal(label("Prompt", PROMPT), title="t" * 46), ("title",), "BASE_TYPE_BAD_LENGTH"),
        (modal(label("L" * 46, PROMPT)), ("components", "0", "label"), "BASE_TYPE_BAD_LENGTH"),
        (modal(label("Prompt", PROMPT, description="d" * 101)), ("components", "0", "description"), None),
        (
            modal(label("Aspect", select("aspect", [f"{i}:1" for i in range(26)]))),
            ("components", "0", "component", "options"),
            "BASE_TYPE_BAD_LENGTH",
        ),
        (modal(label("Aspect", select("aspect", []))), ("components", "0", "component", "options"), None),
        (
            modal(label("Aspect", {**select("aspect", ["1:1"]), "options": [{"label": "x" * 101, "value": "1:1"}]})),
            ("components", "0", "component", "options", "0", "label"),
            "BASE_TYPE_BAD_LENGTH",
        ),
        (
            modal(label("Aspect", select("aspect", ["1:1", "3:2"], disabled=True))),
            ("components", "0", "component", "disabled"),
            None,
        ),
        (modal(label("Aspect", {"type": 2, "style": 1, "custom_id": "b", "label": "B"})), None, None),
        (modal(*[label(f"P{i}", {**PROMPT, "custom_id": f"p{i}"}) for i in range(6)]), ("components",), None),
        (modal(label("A", select("same", ["1"])), label("B", select("same", ["2"]))), ("components",), None),
        (modal({"type": 1, "components": [{**PROMPT}]}), ("components", "0", "components", "0", "label"), None),
        (modal({"type": 1, "components": [select("aspect", ["1:1"])]}), None, None),
    ],
    ids=[
        "title over 45",
        "label over 45",
        "label description over 100",
        "26 options",
        "no option",
        "option label over 100",
        "disabled",
        "a button in a label",
        "six components",
        "duplicate custom ids",
        "text input in a row without its label",
        "select in an action row of a modal",
    ],
)
async def test_a_modal_breaking_discords_rules_is_refused(
    fake: FakeDiscord,
    synced: World,
    http: RawClient,
    data: dict[str, Any],
    path: tuple[str, ...] | None,
    code: str | None,
) -> None:
    call = await opened(fake, synced)

    answer = await http.callback(call, {"type": 9, "data": data})

    assert (answer.status, answer.code) == (400, 50035)
    if path is not None:
        errors = answer.field_errors("data", *path)
        assert errors
        if code is not None:
            assert code in errors
    assert call.modal is None
