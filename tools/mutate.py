"""Mutation testing: does the generated project's own suite catch the bugs it should?

Bake the default project (openai, auth, celery, nginx) with RAG on, once, outside the
repository, install it with uv, and check that the test files the mutations name pass as baked.
Then, for each mutation of tests/mutations.py, one at a time: apply it to the project's
source, run the test files it names (`pytest -x`) against PostgreSQL and Redis with CI=true,
put the file back, and report whether a test failed (caught, with the first failing test) or
none did (survived), with the time of the run. Exit 1 when a mutation survived, no longer
applies, or its run broke (a collection error, a timeout).

    python tools/mutate.py [--only NAME ...] [--list] [--keep] [--report FILE]

Needs cookiecutter and pytest (`nox -s mutate` installs them), uv, a PostgreSQL server
(MUTATE_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/postgres; the role must be
allowed to create databases) and Redis (MUTATE_REDIS_URL, default redis://127.0.0.1:6379/15;
the suite empties that database). Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness import (
    DEFAULT_DATABASE_URL,
    STOP,
    TEMPLATE,
    Postgres,
    log,
    run,
    spawn,
    stop_children,
    untrack,
)

sys.path.insert(0, str(TEMPLATE / "tests"))
from mutations import MUTATIONS, Mutation, MutationError, mutated_source
from test_variants import clean_env, failed_tests, tail, variant_python

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
PACKAGE = "llm_service"  # the default bake's package


@dataclass
class Outcome:
    mutation: Mutation
    result: str  # caught | survived | stale | error
    seconds: float = 0.0
    caught_by: str = ""
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.result == "caught"


def bake(output: Path) -> Path:
    # A separate process: cookiecutter changes the working directory while its hooks run.
    # The default answers, and RAG (off by default) so that its mutations have their code.
    command = [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(output)]
    run([*command, str(TEMPLATE), "use_rag=True"])
    (project,) = (path for path in output.iterdir() if path.is_dir())
    return project


def install(project: Path, python: str, env: dict[str, str]) -> None:
    run(["uv", "venv", "-q", "--python", python, ".venv"], cwd=project, env=env)
    run(
        ["uv", "pip", "install", "-q", "--python", ".venv/bin/python", "-e", ".", "--group", "dev"],
        cwd=project,
        env=env,
    )


def forget_bytecode(module: Path) -> None:
    """A .pyc records its source's size and mtime in whole seconds: an edit of the same size
    within the second would run the stale bytecode. Drop it."""
    for pyc in (module.parent / "__pycache__").glob(f"{module.stem}.*.pyc"):
        pyc.unlink()


def run_tests(
    project: Path, env: dict[str, str], files: list[str], *, first_failure: bool, timeout: float
) -> tuple[int | None, str, float]:
    """(pytest's exit code or None on timeout, its output, seconds)."""
    args = [str(project / ".venv" / "bin" / "pytest"), "-q", "-p", "no:cacheprovider"]
    if first_failure:
        args.append("-x")
    started = time.monotonic()
    # In its own process group, so that an interruption stops it and the worker it starts.
    process = spawn(
        [*args, *files],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        return None, output, time.monotonic() - started
    finally:
        untrack(process)
    return process.returncode, output, time.monotonic() - started


def try_mutation(
    project: Path, env: dict[str, str], mutation: Mutation, mutated: str, timeout: float
) -> Outcome:
    module = project / "src" / PACKAGE / mutation.module
    original = module.read_bytes()
    try:
        module.write_text(mutated, encoding="utf-8")
        forget_bytecode(module)
        code, output, seconds = run_tests(
            project, env, list(mutation.tests), first_failure=True, timeout=timeout
        )
    finally:
        module.write_bytes(original)
        forget_bytecode(module)
    failed = failed_tests(output)
    if code is None:
        return Outcome(mutation, "error", seconds, detail=f"timed out after {timeout:.0f} s")
    if code == 0:
        return Outcome(mutation, "survived", seconds, detail=tail(output, 3))
    if code == 1 and failed:
        return Outcome(mutation, "caught", seconds, caught_by=failed[0])
    # 2-5: interrupted (a collection error), internal or usage error, nothing collected.
    return Outcome(mutation, "error", seconds, detail=f"pytest exit {code}:\n{tail(output, 15)}")


def report(outcomes: list[Outcome], total: float) -> str:
    """The table: one line per mutation, then the totals."""
    width = max([len("mutation"), *(len(outcome.mutation.name) for outcome in outcomes)])
    lines = [f"{'mutation':{width}}  {'result':8}  {'seconds':>7}  caught by (or why not)"]
    for outcome in outcomes:
        why = outcome.caught_by or (outcome.detail.strip().splitlines() or [""])[-1]
        lines.append(
            f"{outcome.mutation.name:{width}}  {outcome.result:8}  {outcome.seconds:7.1f}  {why}"
        )
    caught = sum(outcome.ok for outcome in outcomes)
    lines.append(f"{caught} of {len(outcomes)} mutations caught; {total:.0f} s in all")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", action="append", default=[], help="run this mutation (repeatable)"
    )
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--workdir", type=Path, help="bake here and keep it (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument(
        "--python",
        help="interpreter for the project (default: this one, if its sqlite3 can load sqlite-vec)",
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("MUTATE_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    parser.add_argument(
        "--database", default="mutate", help="the test database created (and dropped)"
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("MUTATE_REDIS_URL", DEFAULT_REDIS_URL)
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds per test run")
    parser.add_argument("--report", type=Path, help="write a JSON report here")
    args = parser.parse_args(argv)

    if args.list:
        for mutation in MUTATIONS:
            log(f"{mutation.name}: {mutation.promise} ({', '.join(mutation.tests)})")
        return 0
    known = {mutation.name for mutation in MUTATIONS}
    unknown = [name for name in args.only if name not in known]
    if unknown:
        parser.error(f"no such mutation: {', '.join(unknown)} (--list lists them)")
    selected = [m for m in MUTATIONS if not args.only or m.name in args.only]

    signal.signal(signal.SIGTERM, stop_children)
    signal.signal(signal.SIGINT, stop_children)
    started = time.monotonic()
    root = args.workdir or Path(tempfile.mkdtemp(prefix="mutate-"))
    root.mkdir(parents=True, exist_ok=True)
    database: Postgres | None = None
    outcomes: list[Outcome] = []
    try:
        shutil.rmtree(root / "project", ignore_errors=True)
        project = bake(root / "project")
        env = clean_env(project)
        log(f"baked the default project into {project}; installing it")
        install(project, args.python or variant_python({"use_rag": True}), env)
        database = Postgres(args.database_url, project / ".venv" / "bin" / "python")
        env |= {
            "TEST_DATABASE_URL": database.create(args.database),
            "TEST_REDIS_URL": args.redis_url,
            "CI": "true",
        }

        runnable: list[tuple[Mutation, str]] = []
        for mutation in selected:
            try:
                runnable.append((mutation, mutated_source(project, PACKAGE, mutation)))
            except MutationError as exc:
                log(str(exc))
                outcomes.append(Outcome(mutation, "stale", detail=str(exc)))

        files = list(dict.fromkeys(path for mutation, _ in runnable for path in mutation.tests))
        log(f"the suite as baked: {' '.join(files)}")
        code, output, seconds = run_tests(
            project, env, files, first_failure=False, timeout=args.timeout
        )
        if code != 0:
            log(f"the unmutated suite fails ({seconds:.0f} s): nothing to learn from mutations")
            log(tail(output, 40))
            return 1
        log(f"passes as baked in {seconds:.1f} s; {len(runnable)} mutations to try")

        for mutation, mutated in runnable:
            if STOP.is_set():
                break
            outcome = try_mutation(project, env, mutation, mutated, args.timeout)
            outcomes.append(outcome)
            why = outcome.caught_by or (outcome.detail.strip().splitlines() or [""])[-1]
            log(f"{mutation.name}: {outcome.result} in {outcome.seconds:.1f} s  {why}")
    finally:
        if database is not None:
            database.drop(args.database)
        if not (args.keep or args.workdir):
            shutil.rmtree(root, ignore_errors=True)

    order = {mutation.name: index for index, mutation in enumerate(MUTATIONS)}
    outcomes.sort(key=lambda outcome: order[outcome.mutation.name])
    total = time.monotonic() - started
    log("")
    log(report(outcomes, total))
    if args.report:
        args.report.write_text(
            json.dumps(
                {
                    "seconds": round(total, 1),
                    "mutations": [
                        {
                            "name": o.mutation.name,
                            "promise": o.mutation.promise,
                            "result": o.result,
                            "caught_by": o.caught_by,
                            "seconds": round(o.seconds, 1),
                            "detail": o.detail,
                        }
                        for o in outcomes
                    ],
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    if STOP.is_set():
        return 130
    return 0 if outcomes and all(outcome.ok for outcome in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
