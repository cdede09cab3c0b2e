"""Which version a query goes to during a rollout: sticky per user. A user (``uid`` other than 0) is hashed with
the rollout's salt to a point in [0, 10000); the candidate takes the points below its share (in basis points).
The share only grows from step to step, so a user on the candidate stays there, and every frontend splits alike
(no state shared). Queries without a user (``uid`` 0, Clipper's default) are hashed by their query id instead:
spread evenly, not sticky."""

from __future__ import annotations

__all__ = ["BASIS_POINTS", "point", "to_basis_points"]

BASIS_POINTS = 10_000
_MASK = (1 << 64) - 1


def point(salt: int, uid: int, query_id: int) -> int:
    """The query's point in [0, BASIS_POINTS): splitmix64 of the user (or the query) and the salt."""
    z = ((uid if uid else query_id + (1 << 62)) ^ (salt << 20)) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return (z ^ (z >> 31)) % BASIS_POINTS


def to_basis_points(share: float) -> int:
    """A share (0..1) as the number of points the candidate takes."""
    return max(0, min(BASIS_POINTS, round(share * BASIS_POINTS)))
