"""What the metadata DB's instance class implies: memory, and PostgreSQL's default max_connections.

RDS for PostgreSQL sets `max_connections` to LEAST({DBInstanceClassMemory/9531392}, 5000). We compute it
from the class's nominal memory, which slightly over-states DBInstanceClassMemory (RDS reserves some
memory for the OS), so the figure is an upper bound: alarms and capacity checks built on it err late,
never early. Only classes listed here are accepted by the config, so every figure has a known source.
"""

from __future__ import annotations

_GIB = 1024**3
_MAX_CONNECTIONS_DIVISOR = 9_531_392
_MAX_CONNECTIONS_CAP = 5_000

# vCPUs per size of the m/r families (AWS instance type tables).
_VCPUS = {"large": 2, "xlarge": 4, "2xlarge": 8, "4xlarge": 16, "8xlarge": 32, "12xlarge": 48, "16xlarge": 64}
# GiB of memory per vCPU: general purpose (m) and memory optimised (r).
_GIB_PER_VCPU = {"m": 4, "r": 8}
_GENERAL_AND_MEMORY_FAMILIES = ("m5", "m6g", "m6i", "m7g", "m7i", "m8g", "r5", "r6g", "r6i", "r7g", "r7i", "r8g")
# Burstable classes do not follow the per-vCPU ratio.
_BURSTABLE_GIB = {"micro": 1, "small": 2, "medium": 4, "large": 8, "xlarge": 16, "2xlarge": 32}
_BURSTABLE_FAMILIES = ("t3", "t4g")


def _memory_table() -> dict[str, int]:
    table = {}
    for family in _BURSTABLE_FAMILIES:
        for size, gib in _BURSTABLE_GIB.items():
            table[f"db.{family}.{size}"] = gib
    for family in _GENERAL_AND_MEMORY_FAMILIES:
        for size, vcpus in _VCPUS.items():
            table[f"db.{family}.{size}"] = vcpus * _GIB_PER_VCPU[family[0]]
    return table


MEMORY_GIB: dict[str, int] = _memory_table()


def is_known(instance_class: str) -> bool:
    return instance_class in MEMORY_GIB


def supports_performance_insights(instance_class: str) -> bool:
    """RDS for PostgreSQL offers Performance Insights on every listed class but the smallest burstable ones."""
    family, size = instance_class.split(".")[1:]
    return not (family in _BURSTABLE_FAMILIES and size in ("micro", "small"))


def memory_gib(instance_class: str) -> int:
    return MEMORY_GIB[instance_class]


def max_connections(instance_class: str) -> int:
    """PostgreSQL's default max_connections on RDS for this class (upper bound, see module docstring)."""
    return min(memory_gib(instance_class) * _GIB // _MAX_CONNECTIONS_DIVISOR, _MAX_CONNECTIONS_CAP)
