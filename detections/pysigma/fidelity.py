"""Fidelity warnings: where a target is known to translate a Sigma construct loosely."""

from dataclasses import asdict, dataclass

from sigma.rule import SigmaRule


@dataclass(frozen=True)
class FidelityWarning:
    """One known loss of meaning in a rendered query."""

    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def fidelity_warnings(rule: SigmaRule, target_key: str, query: str) -> list[FidelityWarning]:
    """Return the warnings that apply to `rule` rendered for `target_key` as `query`."""
    return []
