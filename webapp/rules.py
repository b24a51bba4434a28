"""The loyalty arithmetic, one function per rule.

Everything that records, quotes, seeds or searches a sale computes its points here, so the till's
quote, the recorded sale (the demo street's too), the bench's seeded history and the street
search agree to the point.
All amounts are integers in minor units; rates are basis points (500 = 5 %).
"""

from __future__ import annotations


def points_earned(amount_paid: int, rate_bp: int, point_value: int) -> int:
    """Points for ``amount_paid`` at ``rate_bp``: the cashback's value in points, rounded down."""
    if amount_paid <= 0 or rate_bp <= 0:
        return 0
    return amount_paid * rate_bp // 10000 // point_value


def points_limit(amount: int, share_pct: int, point_value: int) -> int:
    """Most points a bill of ``amount`` may be paid with: ``share_pct`` of it, in whole points."""
    if amount <= 0:
        return 0
    return amount * share_pct // 100 // point_value
