"""Compares two plans (`terraform show -json`) of an old and a new configuration, both from an empty
state: every old resource and data source must stand in the new plan, at its old address or where
the new configuration's moved blocks put it, with the same planned values. A value the old plan
could only know after apply and the new one knows at plan time is listed, not refused (review it).

    python compare_plans.py OLD_PLAN_JSON NEW_PLAN_JSON MIGRATIONS_TF

Used by check_refactor.sh; exits 1 on any difference."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

# Data sources need no moved blocks; where the refactoring into modules/s3-bucket and for_each put them.
DATA_SOURCES_MOVED = {
    "data.aws_iam_policy_document.media_bucket": "module.media_bucket.data.aws_iam_policy_document.this",
    "data.aws_iam_policy_document.logs_bucket[0]": "module.logs_bucket[0].data.aws_iam_policy_document.this",
    **{
        f"data.aws_secretsmanager_random_password.{name}": f'data.aws_secretsmanager_random_password.this["{name}"]'
        for name in ("db_password", "redis_auth_token", "api_key_pepper")
    },
}
# Generated anew by every plan (Secrets Manager's random passwords, also the id of their data source).
RANDOM = {"password", "auth_token", "secret_string", "random_password"}
RANDOM_IDS = "data.aws_secretsmanager_random_password."


def planned(path: str) -> dict[str, tuple[Any, Any]]:
    """Address -> (planned values, which of them are unknown) of every resource and data source."""
    plan = json.load(open(path))
    items = {rc["address"]: (rc["change"]["after"], rc["change"]["after_unknown"]) for rc in plan["resource_changes"]}

    def read_at_plan_time(module: dict[str, Any]) -> None:
        for resource in module.get("resources", []):
            if resource["mode"] == "data":
                items.setdefault(resource["address"], (resource["values"], {}))
        for child in module.get("child_modules", []):
            read_at_plan_time(child)

    read_at_plan_time(plan.get("prior_state", {}).get("values", {}).get("root_module", {}))
    return items


def differences(
    path: str, old: Any, old_unknown: Any, new: Any, new_unknown: Any, known_earlier: list[str]
) -> list[str]:
    random = RANDOM | {"id"} if path.startswith(RANDOM_IDS) and "." not in path[len(RANDOM_IDS) :] else RANDOM
    if old_unknown is True:
        if new_unknown is not True:
            known_earlier.append(f"{path} = {json.dumps(new)}")
        return []
    if new_unknown is True:
        return [f"{path}: known before, unknown now"]
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new)):
            if key in random:
                continue
            found += differences(
                f"{path}.{key}",
                old.get(key),
                (old_unknown or {}).get(key),
                new.get(key),
                (new_unknown or {}).get(key),
                known_earlier,
            )
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        old_unknown = old_unknown if isinstance(old_unknown, list) else [None] * len(old)
        new_unknown = new_unknown if isinstance(new_unknown, list) else [None] * len(new)
        return [
            found
            for index, (o, ou, n, nu) in enumerate(zip(old, old_unknown, new, new_unknown))
            for found in differences(f"{path}[{index}]", o, ou, n, nu, known_earlier)
        ]
    return [] if old == new else [f"{path}: {json.dumps(old)[:300]} -> {json.dumps(new)[:300]}"]


def main(old_path: str, new_path: str, migrations: str) -> int:
    moves: dict[str, str] = dict(re.findall(r"moved \{\s*from = (\S+)\s*to\s*= (\S+)\s*\}", open(migrations).read()))
    moves |= DATA_SOURCES_MOVED

    def moved(address: str) -> str:
        if address in moves:
            return moves[address]
        resource, bracket, key = address.partition("[")  # a moved resource keeps its instance keys
        return moves[resource] + bracket + key if bracket and resource in moves else address

    old = {moved(address): values for address, values in planned(old_path).items()}
    new = planned(new_path)
    problems = [f"{address}: gone" for address in sorted(set(old) - set(new))]
    problems += [f"{address}: new" for address in sorted(set(new) - set(old))]
    known_earlier: list[str] = []
    for address in sorted(set(old) & set(new)):
        problems += differences(address, *old[address], *new[address], known_earlier)
    print(f"   {len(old)} resources and data sources, {sum(moved(a) != a for a in planned(old_path))} of them moved")
    for line in known_earlier:
        print(f"   known at plan time now: {line}")
    for line in problems:
        print(f"   DIFFERENT {line}")
    print("   same planned values" if not problems else f"   {len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
