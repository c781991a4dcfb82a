"""The models a server offers its members, what each takes, and what one of their images counts as.

The operator pays for some of the catalogued models (TOAPIS_MODELS, default TOAPIS_MODEL); a server's admins may
offer fewer and pick their own default (`/imagine-settings models`). Each model and resolution counts as a
number of images in every quota, cap and usage figure: its weight, from the catalog (1 for 1K, 2 for 2K, 4 for
4K) unless MODEL_WEIGHTS says otherwise. Everything here is read from memory: it runs before an interaction's
first response.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from generation.refusals import ModelNotOffered, OptionNotOffered, PromptTooLong, TooManyReferences
from storage.guild_settings import GuildSettings
from toapis import catalog
from toapis.catalog import ModelSpec, RequestOption


@dataclass(frozen=True)
class Choice:
    """A request's model, aspect and resolution, resolved and checked, with its weight."""

    model: ModelSpec
    aspect: str
    resolution: str
    weight: int


class ModelMenu:
    """The operator's models, the servers' offers among them, and the weights."""

    def __init__(
        self,
        models: Iterable[str],
        default: str,
        weights: Iterable[tuple[str, str | None, int]] = (),
    ) -> None:
        self.models: tuple[ModelSpec, ...] = tuple(catalog.get_model(model) for model in models)
        self.default = catalog.get_model(default)
        if self.default not in self.models:
            raise ValueError(f"the default model {self.default.id} is not among the operator's models")
        self._weights: Mapping[tuple[str, str | None], int] = {
            (catalog.get_model(model).id, resolution): weight for model, resolution, weight in weights
        }

    def find(self, model_id: str) -> ModelSpec | None:
        """One of the operator's models by its id or alias, or None."""
        try:
            spec = catalog.get_model(model_id)
        except catalog.UnknownModelError:
            return None
        return spec if spec in self.models else None

    def offered(self, server: GuildSettings) -> tuple[ModelSpec, ...]:
        """The models this server offers, in the operator's order (all of the operator's unless it chose)."""
        if server.models is None:
            return self.models
        chosen = [spec for spec in self.models if spec.id in server.models]
        # A server whose every choice the operator has since withdrawn offers the operator's default.
        return tuple(chosen) or (self.default,)

    def default_for(self, server: GuildSettings) -> ModelSpec:
        """The model a request of this server uses when it names none."""
        offered = self.offered(server)
        chosen = self.find(server.default_model) if server.default_model else None
        if chosen is not None and chosen in offered:
            return chosen
        return self.default if self.default in offered else offered[0]

    def weight(self, model: ModelSpec, resolution: str) -> int:
        """What one image of this model at this resolution counts as."""
        for key in ((model.id, resolution), (model.id, None)):
            if key in self._weights:
                return self._weights[key]
        return catalog.default_weight(model, resolution)

    def choose(
        self,
        server: GuildSettings,
        *,
        model: str | None,
        aspect: str | None,
        resolution: str | None,
        n: int,
        reference_count: int,
        prompt_length: int,
    ) -> Choice:
        """The request's model (the server's default if None), aspect (1:1 if None) and resolution (the model's
        default if None), checked against what the model takes; a `Refusal` saying what it offers otherwise."""
        offered = self.offered(server)
        if model is None:
            spec = self.default_for(server)
        else:
            found = self.find(model)
            if found is None or found not in offered:
                raise ModelNotOffered(model, tuple(spec.name for spec in offered))
            spec = found
        chosen_aspect = aspect or catalog.DEFAULT_ASPECT
        tier = spec.default_resolution if resolution is None else catalog.normalise_resolution(resolution)
        problem = catalog.check_request(spec, chosen_aspect, tier, n, reference_count, prompt_length)
        if problem is not None:
            raise _refusal(spec, problem, prompt_length=prompt_length, reference_count=reference_count, n=n)
        return Choice(spec, chosen_aspect, tier, self.weight(spec, tier))


def _refusal(
    spec: ModelSpec, problem: catalog.RequestProblem, *, prompt_length: int, reference_count: int, n: int
) -> Exception:
    if problem.option is RequestOption.PROMPT:
        return PromptTooLong(prompt_length, spec.prompt_max)
    if problem.option is RequestOption.REFERENCES:
        return TooManyReferences(reference_count, spec.reference_limit)
    return OptionNotOffered(problem.option.value, spec.name, problem.offered)
