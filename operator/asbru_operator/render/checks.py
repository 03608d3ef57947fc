"""What is wrong with one LLMProvider, LLMRoute or LLMPlugin, as one readable line per problem.

The renderer leaves a resource with a problem out of a gateway's config (and renders the rest);
the resource's own status says why. Both use these functions, so a CR's conditions always agree
with what its gateways serve. The checks are the gateway's own where one exists (provider types
from its registry, plugin settings from its plugin models, the private network guard), so the
operator refuses, with ``Accepted=False``, what pods would refuse.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from asbru_gateway.config.loader import format_validation_error
from asbru_gateway.config.network_guard import private_host_reason
from asbru_gateway.plugins.builtin.registry import settings_error
from asbru_gateway.providers.registry import PROVIDER_TYPES
from asbru_operator.crd_models.plugin import LLMPluginSpec
from asbru_operator.crd_models.provider import LLMProviderSpec
from asbru_operator.render import status

Body = Mapping[str, Any]
M = TypeVar("M", bound=BaseModel)


class RenderError(ValueError):
    """The gateway itself cannot be rendered (its own spec is invalid): not Accepted."""


class GatewayRefsError(RenderError):
    """The gateway's own spec references a Secret (or key) that is missing, and nothing safe can be
    served without it (governance's Redis password): Accepted, ResolvedRefs=False, config unchanged."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Problem:
    """Why a resource is left out of a gateway's config (or serves only in part)."""

    kind: str
    name: str
    reason: str
    """The condition reason: Invalid, UnknownType, SecretNotFound, KeyNotFound, ProviderNotFound, ..."""
    message: str
    unresolved: bool = False
    """A reference that does not resolve (ResolvedRefs=False), rather than an invalid spec (Accepted)."""

    def describe(self) -> str:
        return f"{self.kind} {self.name!r} ({self.message})"


def name_of(body: Body) -> str:
    return str((body.get("metadata") or {}).get("name"))


def parse_spec(model: type[M], body: Body) -> M:
    """A resource's spec as a model; an invalid one is a ``RenderError`` in one readable line."""
    try:
        return model.model_validate(body.get("spec") or {})
    except ValidationError as error:
        kind = body.get("kind", "object")
        raise RenderError(f"{kind} {name_of(body)!r}: {format_validation_error(error)}") from None


def spec_of(model: type[M], kind: str, body: Body) -> tuple[M | None, list[Problem]]:
    """The parsed spec, or the problem that its spec is invalid (field paths, no input values)."""
    try:
        return model.model_validate(body.get("spec") or {}), []
    except ValidationError as error:
        return None, [Problem(kind, name_of(body), "Invalid", format_validation_error(error))]


def provider_problems(
    body: Body, spec: LLMProviderSpec, secrets: Mapping[str, Mapping[str, str]]
) -> list[Problem]:
    """An unknown type, a private default address, and every key whose Secret or key is missing."""
    name = name_of(body)
    provider_type = PROVIDER_TYPES.get(spec.type)
    if provider_type is None:
        known = ", ".join(sorted(PROVIDER_TYPES))
        message = f"type {spec.type!r} is not a provider type the gateway knows (known: {known})"
        return [Problem("LLMProvider", name, "UnknownType", message)]
    problems = []
    default_url = provider_type.default_base_url or ""
    if spec.base_url is None and spec.service_ref is None and default_url.startswith("http"):
        reason = None if spec.allow_private_network else private_host_reason(default_url)
        if reason is not None:
            message = (
                f"type {spec.type!r} defaults to {default_url}, and {reason};"
                " set baseURL, or allowPrivateNetwork: true if that is intended"
            )
            problems.append(Problem("LLMProvider", name, "PrivateNetwork", message))
    for key in spec.keys:
        ref = key.secret_key_ref
        if ref.name not in secrets:
            message = f"Secret {ref.name!r} not found (key {key.name!r})"
            problems.append(Problem("LLMProvider", name, "SecretNotFound", message, unresolved=True))
        elif not secrets[ref.name].get(ref.key, "").strip():
            message = f"key {ref.key!r} not found in Secret {ref.name!r} (key {key.name!r})"
            problems.append(Problem("LLMProvider", name, "KeyNotFound", message, unresolved=True))
    return problems


def plugin_problems(body: Body, spec: LLMPluginSpec) -> list[Problem]:
    """Settings the gateway's plugin would refuse (a typo is an error there, so it is one here)."""
    error = settings_error(str(spec.type), dict(spec.settings or {}))
    return [Problem("LLMPlugin", name_of(body), "InvalidSettings", error)] if error else []


def member_checks(problems: Sequence[Problem], *, resolved: str | None) -> dict[str, status.Check]:
    """Accepted and ResolvedRefs of a provider, route or plugin from its problems (first one wins).

    ``resolved``: the message of a True ResolvedRefs; None for kinds that reference nothing.
    """
    invalid = [problem for problem in problems if not problem.unresolved]
    unresolved = [problem for problem in problems if problem.unresolved]
    if invalid:
        message = "; ".join(problem.message for problem in invalid)
        return {status.ACCEPTED: status.Check(False, invalid[0].reason, message)}
    checks = {status.ACCEPTED: status.Check(True, "Accepted", "the spec is valid")}
    if resolved is None:
        return checks
    if unresolved:
        message = "; ".join(problem.message for problem in unresolved)
        checks[status.RESOLVED_REFS] = status.Check(False, unresolved[0].reason, message)
    else:
        checks[status.RESOLVED_REFS] = status.Check(True, "ResolvedRefs", resolved)
    return checks
