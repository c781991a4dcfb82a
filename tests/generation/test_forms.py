"""Form records: kept when a form is shown, found whenever it is sent, gone once their time is over."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from generation.forms import FormBook
from storage.store import Storage
from tests.generation.conftest import Clock


async def test_a_form_is_found_until_its_time_is_over_then_purged(tmp_path: Path) -> None:
    clock = Clock()
    async with await Storage.open(f"sqlite:///{tmp_path / 'imagine.db'}", clock=clock) as store:
        forms = FormBook(store)
        form_id = forms.new_id()
        assert len(form_id) == 32
        payload = {"message_id": 5, "images": [{"id": 1, "url": "https://cdn/x.png"}], "total": 1}
        await forms.open(
            form_id,
            kind="from-images",
            guild_id=1,
            channel_id=2,
            user_id=3,
            payload=payload,
            expires_at=clock() + timedelta(hours=20),
        )

        found = await forms.find(form_id)
        assert found is not None
        assert (found.kind, found.guild_id, found.channel_id, found.user_id, found.payload) == (
            "from-images",
            1,
            2,
            3,
            payload,
        )
        clock.advance(hours=21)  # the images' links have expired: the member must open the form again
        assert await forms.find(form_id) is None
        assert await forms.purge_expired() == 1
        assert await store.forms.get(form_id) is None
