"""Small helpers shared by the toapis tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from toapis import Task, ToAPIsClient

MakeClient = Callable[..., ToAPIsClient]


async def submit(
    client: ToAPIsClient,
    business_id: str,
    *,
    prompt: str = "a red fox",
    aspect: str = "1:1",
    n: int = 1,
    references: Sequence[str] = (),
) -> Task:
    """Submit a generation with test defaults."""
    return await client.submit_generation(
        prompt=prompt, aspect=aspect, n=n, reference_urls=references, client_business_id=business_id
    )
