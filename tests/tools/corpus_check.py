"""Does a corpus run (`pocket doctor --corpus`, sdk_builder/corpus.py) build worse than the
recorded one (docs/corpus.json)? `regressions` says how, one line per problem, and [] when the
run builds at least as well. tests/export/test_user_corpus_builds.py applies it to a real run;
tests/unit/test_corpus_regressions.py feeds it fabricated regressions, so its failure branches
run in every `make test-fast` even while the real subset verifies everywhere."""
from __future__ import annotations

MIN_REASON = 20           # characters: a reason shorter than this cannot name the problem and a way out


def regressions(recorded: dict, result: dict) -> list[str]:
    """Problems of `result` against `recorded`: a model the record lacks, a recorded cell the
    run lacks, a cell verified before and not now, a smaller delegated share than recorded, and
    any unverified cell of the run without a reason."""
    if not result.get("rows"):
        return ["the corpus run holds no models"]
    before = {row["model"]: row for row in recorded["rows"]}
    problems = []
    for row in result["rows"]:
        model = row["model"]
        if model not in before:
            problems.append(f"{model}: not in the recorded run (run `make corpus` to record it)")
            continue
        for column, old in before[model]["cells"].items():
            new = row["cells"].get(column)
            if new is None:
                problems.append(f"{model} {column}: missing from the run (recorded {old['status']})")
            else:
                problems += cell_regressions(f"{model} {column}", old, new)
        problems += [f"{model} {column}: {cell['status']} without a reason and a way out "
                     f"({cell.get('reason', '')!r})"
                     for column, cell in row["cells"].items()
                     if cell["status"] != "verified" and len(cell.get("reason", "")) <= MIN_REASON]
    return problems


def cell_regressions(where: str, old: dict, new: dict) -> list[str]:
    """[] if the cell `new` is at least as good as the recorded `old`, else one line why."""
    if old["status"] != "verified":
        return []                                  # it may stay broken or improve
    if new["status"] != "verified":
        return [f"{where}: verified in the recorded run, now {new['status']}: {new.get('reason', '?')}"]
    old_share, new_share = old.get("delegated_share"), new.get("delegated_share")
    if old_share is not None and (new_share is None or new_share < old_share):
        off = ", ".join(new.get("fallback_ops", [])[:4]) or "?"
        got = "no" if new_share is None else f"{new_share:.1%}"
        return [f"{where}: {got} delegated, recorded {old_share:.1%} (off the delegate: {off})"]
    return []
