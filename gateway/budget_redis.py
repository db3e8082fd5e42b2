"""The budget ledger in Redis (when REDIS_URL is set): reservations and spend checked and taken atomically by one
Lua script across every process, without a database lock on the request path.

Amounts are integers in units of 1e-8 USD (the precision of ``BudgetUsage``), so Redis arithmetic is exact. A
period's hash is seeded from ``BudgetUsage.spent_*`` the first time a process meets it (HSETNX: a concurrent seed is
harmless), and each settle also adds the real spend to ``BudgetUsage`` with an atomic UPDATE (for admin, dashboards
and a Redis restart). The database ledger (gateway/budgets.py) applies the same rules with a row lock.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import F

from gateway.budgets import BudgetConfig, Reservation, exhausted_error, period_bounds, soft_warnings
from gateway.db import db_async
from gateway.models import BudgetUsage
from providers.redis_clients import LoopRedis

UNIT = Decimal("0.00000001")
PREFIX = "lynkr:budget:"

# KEYS: one hash per budget period. ARGV: n, then per budget: limit_units (-1 = none), limit_tokens (-1), units,
# tokens. Refuses (returns {0, i, committed_units, committed_tokens}) unless every budget can take its amount;
# otherwise reserves on all and returns {1, committed_units_1, committed_tokens_1, ...} after the reservation.
_RESERVE = """
local n = tonumber(ARGV[1])
local state = {}
for i = 1, n do
  local base = 1 + (i - 1) * 4
  local lu, lt = tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2])
  local u, t = tonumber(ARGV[base + 3]), tonumber(ARGV[base + 4])
  local h = redis.call('HMGET', KEYS[i], 'spent_u', 'spent_t', 'res_u', 'res_t')
  local cu = tonumber(h[1] or '0') + tonumber(h[3] or '0')
  local ct = tonumber(h[2] or '0') + tonumber(h[4] or '0')
  if (lu >= 0 and cu + u > lu) or (lt >= 0 and ct + t > lt) then return {0, i, cu, ct} end
  state[i] = {u, t, cu, ct}
end
local out = {1}
for i = 1, n do
  redis.call('HINCRBY', KEYS[i], 'res_u', state[i][1])
  redis.call('HINCRBY', KEYS[i], 'res_t', state[i][2])
  table.insert(out, state[i][3] + state[i][1])
  table.insert(out, state[i][4] + state[i][2])
end
return out
"""

# KEYS: the reserved periods. ARGV: n, then per key: reserved units, reserved tokens, spent units, spent tokens.
_SETTLE = """
local n = tonumber(ARGV[1])
for i = 1, n do
  local base = 1 + (i - 1) * 4
  redis.call('HINCRBY', KEYS[i], 'res_u', -tonumber(ARGV[base + 1]))
  redis.call('HINCRBY', KEYS[i], 'res_t', -tonumber(ARGV[base + 2]))
  redis.call('HINCRBY', KEYS[i], 'spent_u', tonumber(ARGV[base + 3]))
  redis.call('HINCRBY', KEYS[i], 'spent_t', tonumber(ARGV[base + 4]))
end
return n
"""


def _units(usd: Decimal | None) -> int:
    return int((usd or Decimal(0)) / UNIT)


def _key(budget_id: int, start: datetime) -> str:
    return f"{PREFIX}{budget_id}:{int(start.timestamp())}"


def _spent_of(budget_id: int, start: datetime) -> tuple[int, int]:
    row, _ = BudgetUsage.objects.get_or_create(budget_id=budget_id, period_start=start)
    return _units(row.spent_usd), int(row.spent_tokens)


def _add_spent(reservations: list[Reservation], usd: Decimal | None, tokens: int) -> None:
    for reservation in reservations:
        BudgetUsage.objects.filter(budget_id=reservation.budget_id, period_start=reservation.period_start).update(
            spent_usd=F("spent_usd") + (usd or Decimal(0)), spent_tokens=F("spent_tokens") + tokens
        )


class RedisBudgetLedger:
    def __init__(self, url: str) -> None:
        self._url = url
        self._redis = LoopRedis(url, scripts=(_RESERVE, _SETTLE))
        self._seeded: set[str] = set()

    async def _seed(self, client: Any, key: str, budget_id: int, start: datetime, end: datetime | None) -> None:
        if key in self._seeded:
            return
        if not await client.exists(key):
            units, tokens = await db_async(_spent_of)(budget_id, start)
            await client.hsetnx(key, "spent_u", units)
            await client.hsetnx(key, "spent_t", tokens)
        if end is not None:
            await client.expireat(key, int(end.timestamp()) + 86400)
        self._seeded.add(key)

    async def reserve(
        self, budgets: tuple[BudgetConfig, ...], usd: Decimal, tokens: int, now: datetime
    ) -> tuple[list[Reservation], list[str]]:
        client, reserve, _ = self._redis.get()
        ordered = sorted(budgets, key=lambda b: b.id)
        keys, args, periods = [], [len(ordered)], []
        for budget in ordered:
            start, end = period_bounds(budget.period, now)
            key = _key(budget.id, start)
            await self._seed(client, key, budget.id, start, end)
            keys.append(key)
            periods.append((start, end))
            limit_units = _units(budget.limit_usd) if budget.limit_usd is not None else -1
            limit_tokens = budget.limit_tokens if budget.limit_tokens is not None else -1
            args += [limit_units, limit_tokens, _units(usd), tokens]
        result = [int(v) for v in await reserve(keys=keys, args=args)]
        if result[0] == 0:
            index = result[1] - 1
            budget, (_, end) = ordered[index], periods[index]
            committed_usd, committed_tokens = Decimal(result[2]) * UNIT, result[3]
            raise exhausted_error(budget, end, committed_usd, committed_tokens, usd)
        reservations = [Reservation(b.id, start, usd, tokens) for b, (start, _) in zip(ordered, periods, strict=True)]
        warnings: list[str] = []
        for position, budget in enumerate(ordered):
            used_usd = Decimal(result[1 + 2 * position]) * UNIT
            warnings += soft_warnings(budget, used_usd, result[2 + 2 * position])
        return reservations, warnings

    async def settle(self, reservations: list[Reservation], usd: Decimal | None, tokens: int) -> None:
        _, _, settle = self._redis.get()
        keys = [_key(r.budget_id, r.period_start) for r in reservations]
        args: list[int] = [len(reservations)]
        for reservation in reservations:
            args += [_units(reservation.usd), reservation.tokens, _units(usd), tokens]
        await settle(keys=keys, args=args)
        await db_async(_add_spent)(reservations, usd, tokens)
