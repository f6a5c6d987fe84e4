"""Plans and what each allows."""

from __future__ import annotations

import dataclasses
import enum


class Plan(enum.StrEnum):
    FREE = "FREE"
    TEAM = "TEAM"
    BUSINESS = "BUSINESS"
    ENTERPRISE = "ENTERPRISE"


@dataclasses.dataclass(frozen=True)
class PlanLimits:
    rps: float
    storage_quota_bytes: int

    @property
    def api_enabled(self) -> bool:
        return self.rps > 0


def parse_plan(value: str) -> Plan:
    try:
        return Plan(value.strip().upper())
    except ValueError:
        names = ", ".join(p.value for p in Plan)
        raise ValueError(f"unknown plan {value!r}; expected one of {names}") from None
