"""Nothing but `core.repo.transitions` writes `jobs.state` (DESIGN.md: one owner of a job's state).

The product's source is read as syntax trees: an assignment to an attribute `state` or
`resume_state`, a `state=` keyword to an UPDATE's `.values(...)`, a `setattr` of `state`, or an
SQL text that updates `jobs` is a write. Creating a job (an INSERT) is not a change of state.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("api", "core", "worker", "cli")
OWNER = ROOT / "core" / "repo" / "transitions.py"
STATE_FIELDS = frozenset({"state", "resume_state"})
# When a job runs next and who holds it: a wait, a wake-up or a lease is a change of state too.
SCHEDULE_FIELDS = frozenset({"next_attempt_at", "lease_token", "lease_expires_at"})


def state_writes(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) of every write of a job's state the tree makes."""
    found = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            parts = target.elts if isinstance(target, ast.Tuple | ast.List) else [target]
            for part in parts:
                if isinstance(part, ast.Attribute) and part.attr in STATE_FIELDS:
                    found.append((part.lineno, f"assigns .{part.attr}"))
                elif (
                    isinstance(part, ast.Attribute)
                    and part.attr in SCHEDULE_FIELDS
                    and "job" in ast.unparse(part.value).lower()
                ):
                    found.append((part.lineno, f"assigns a job's .{part.attr}"))
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "values":
                for keyword in node.keywords:
                    if keyword.arg in STATE_FIELDS:
                        found.append((node.lineno, f".values({keyword.arg}=...)"))
            if (
                isinstance(func, ast.Name)
                and func.id == "update"
                and node.args
                and ast.unparse(node.args[0]) in {"Job", "JOBS", "Job.__table__"}
            ):
                found.append((node.lineno, "UPDATE of jobs"))
            if isinstance(func, ast.Name) and func.id == "setattr" and len(node.args) > 1:
                holder, name = node.args[0], node.args[1]
                named = isinstance(name, ast.Constant) and name.value in STATE_FIELDS
                unseen = not isinstance(name, ast.Constant) and "job" in ast.unparse(holder)
                if named or unseen:
                    found.append((node.lineno, "setattr of a job's field it cannot see"))
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = " ".join(node.value.lower().split())
            if "update jobs" in text:
                found.append((node.lineno, "SQL text updating jobs"))
    return found


def product_sources() -> list[Path]:
    return [path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))]


def test_only_the_transitions_module_writes_a_jobs_state() -> None:
    writes = [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for path in product_sources()
        if path != OWNER
        for line, what in state_writes(ast.parse(path.read_text(), str(path)))
    ]
    assert writes == [], "job state written outside core/repo/transitions.py:\n" + "\n".join(writes)


def test_the_check_sees_each_kind_of_write() -> None:
    samples = {
        "job.state = JobState.FAILED": "assigns .state",
        "job.resume_state = step": "assigns .resume_state",
        "session.execute(statement.values(state='canceled'))": ".values(state=...)",
        "setattr(job, name, value)": "setattr of a job's field it cannot see",
        "setattr(row, 'state', value)": "setattr of a job's field it cannot see",
        "job.state, job.error_code = 'failed', 'x'": "assigns .state",
        "session.execute(text('UPDATE  jobs SET state = :s'))": "SQL text updating jobs",
        "session.execute(update(Job).values(next_attempt_at=now))": "UPDATE of jobs",
        "job.next_attempt_at = utcnow()": "assigns a job's .next_attempt_at",
    }
    for source, what in samples.items():
        assert [what for _, what in state_writes(ast.parse(source))] == [what], source
    harmless = (
        "batch.status = 'running'; job.error_message = None; app.state.settings = 1; "
        "delivery.next_attempt_at = None; session.execute(update(Batch).values(status='x'))"
    )
    assert state_writes(ast.parse(harmless)) == []


def test_the_owner_module_is_where_the_writes_are() -> None:
    assert state_writes(ast.parse(OWNER.read_text())), "the check no longer finds the owner's"
