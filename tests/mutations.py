"""Bugs a generated project's own test suite must catch (`nox -s mutate`, tools/mutate.py).

Each mutation is one small, named edit of the default project (openai, auth, celery, nginx),
for one promise of the contract that a test should guard. It finds its target by module,
function and a snippet of that function's source, not by line number, so it follows the code
when it moves; when the function or the snippet is gone it fails loudly ("mutation X no longer
applies") instead of testing nothing. The snippet matches whatever the formatter does to line
breaks and indentation.

`tests` lists the test files of the project that should catch the mutation: only those run
(with `-x`), so that the whole list runs in minutes instead of a full suite per mutation.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path


class MutationError(Exception):
    """A mutation that no longer applies to the project (its target moved or is gone)."""


@dataclass(frozen=True)
class Mutation:
    name: str
    promise: str  # what a user relies on, that the mutation breaks
    module: str  # the file under the package, e.g. "ai/usage.py"
    function: str  # "reserve", "Class.method", "outer.inner" (a function defined in another)
    edits: tuple[tuple[str, str], ...]  # (snippet of the function's source, replacement)
    tests: tuple[str, ...]  # test files (relative to the project) that should catch it


def mutation(
    name: str,
    promise: str,
    target: str,
    *edits: tuple[str, str],
    tests: tuple[str, ...],
) -> Mutation:
    """`target` is "module.py:function"."""
    module, function = target.split(":")
    return Mutation(name, promise, module, function, edits, tests)


# -- the mutations -------------------------------------------------------------------------------

CORE = [
    mutation(
        "request-id-not-echoed",
        "every response carries X-Request-ID, the caller's own when it sent one",
        "core/observability.py:init_observability._start",
        (
            "incoming if _VALID_REQUEST_ID.match(incoming) else secrets.token_hex(16)",
            "secrets.token_hex(16)",
        ),
        tests=("tests/test_errors.py",),
    ),
    mutation(
        "ready-always-200",
        "GET /health/ready answers 503 while the database is down",
        "core/probes.py:get_readiness",
        (
            'response.status_code = 200 if database.status == "ok" else 503',
            "response.status_code = 200",
        ),
        tests=("tests/test_health.py",),
    ),
    mutation(
        "weak-secrets-accepted",
        "production refuses a short SECRET_KEY / JWT_SECRET_KEY",
        "core/settings.py:check_secret",
        (
            "if not value or value == DEFAULT_SECRET or len(value) < MIN_SECRET_LENGTH:",
            "if not value or value == DEFAULT_SECRET:",
        ),
        tests=("tests/test_errors.py",),
    ),
    mutation(
        "readonly-writes",
        "the readonly role may only read (403 on writes)",
        "core/identity.py:current_caller",
        ("if writes and caller.read_only:", "if False:"),
        tests=("tests/test_items_auth.py",),
    ),
    mutation(
        "has-more-wrong",
        "a page says has_more only when another page has items",
        "core/models.py:paginate",
        ("has_more=query.page * query.size < total,", "has_more=query.page * query.size <= total,"),
        tests=("tests/test_items.py",),
    ),
]

ITEMS = [
    mutation(
        "owner-filter-dropped",
        "with auth, another user's item is invisible (404)",
        "items/service.py:visible",
        ("conditions.append(col(Item.owner_id) == owner_id)", "pass"),
        tests=("tests/test_items_auth.py",),
    ),
    mutation(
        "soft-deleted-items-listed",
        "a deleted item is gone from lists and lookups",
        "items/service.py:visible",
        (
            "conditions: list[ColumnElement[bool]] = [col(Item.deleted_at).is_(None)]",
            "conditions: list[ColumnElement[bool]] = []",
        ),
        tests=("tests/test_items.py",),
    ),
]

AUTH = [
    mutation(
        "token-state-read-crosswise",
        "the token state read with the rate limit is the token's own: revocation and role",
        "core/extensions.py:FixedWindowInOneTrip.hit",
        ("zip(reads, values, strict=True)", "zip(reads, values[::-1], strict=True)"),
        tests=("tests/test_auth.py",),
    ),
    mutation(
        "revocation-off",
        "a revoked token (logout, refresh) is refused at once",
        "auth/service.py:_token_state",
        ("revoked = revoked_raw is not None", "revoked = False"),
        tests=("tests/test_auth.py",),
    ),
    mutation(
        "remembered-token-never-expires",
        "an access token stops working when it expires, however often it was used before",
        "auth/verified.py:VerifiedTokens.get",
        ("expires <= time.time() - leeway", "False"),
        tests=("tests/test_auth.py",),
    ),
    mutation(
        "remembered-tokens-shared-by-apps",
        "a token is accepted only by an app holding the key that signed it",
        "auth/verified.py:VerifyOnceJWTManager.init_app",
        ("VerifiedTokens()", 'self.__dict__.setdefault("_verified", VerifiedTokens())'),
        tests=("tests/test_auth.py",),
    ),
    mutation(
        "refresh-not-rotated",
        "POST /auth/refresh rotates the refresh token and revokes the old one",
        "auth/service.py:refresh",
        ("if not revoke_token(get_jwt()):", "if False:"),
        tests=("tests/test_auth.py",),
    ),
    mutation(
        "password-change-keeps-sessions",
        "changing the password signs out every other session",
        "auth/service.py:change_password",
        ("user.token_version += 1", "pass"),
        tests=("tests/test_users.py",),
    ),
    mutation(
        "login-not-rate-limited",
        "RATE_LIMIT_AUTH limits login per client address",
        "auth/api.py:login",
        ("@limiter.limit(_auth_rate_limit)", ""),
        tests=("tests/test_auth.py",),
    ),
    mutation(
        "register-not-rate-limited",
        "RATE_LIMIT_AUTH limits registration per client address",
        "auth/api.py:register",
        ("@limiter.limit(_auth_rate_limit)", ""),
        tests=("tests/test_auth_rate_limits.py",),
    ),
]

AI = [
    mutation(
        "budget-off-by-one",
        "a call is refused once today's tokens reach the budget (<, not <=)",
        "ai/usage.py:_reserve_statement",
        (
            "under_budget = col(AIDailyUsage.tokens) + reserved + reserved_before < budget",
            "under_budget = col(AIDailyUsage.tokens) + reserved + reserved_before <= budget",
        ),
        tests=("tests/test_ai_budget.py",),
    ),
    mutation(
        "reservations-never-expire",
        "a reservation its worker never settled stops counting once its lease has passed",
        "ai/usage.py:_reserve_statement",
        ("current = lease >= period", "current = lease >= 0"),
        tests=("tests/test_ai_budget.py",),
    ),
    mutation(
        "budget-exceeded-without-retry-after",
        "429 budget_exceeded carries Retry-After: the seconds to the next UTC midnight",
        "ai/usage.py:budget_exceeded",
        ('headers={"Retry-After": str(wait)},', ""),
        tests=("tests/test_ai_budget.py",),
    ),
    mutation(
        "settlements-lost-at-exit",
        "a worker that stops counts every AI call it answered",
        "ai/usage.py:_SettlementThread.__init__",
        ("atexit.register(self.drain)", "atexit.register(lambda: None)"),
        tests=("tests/test_ai_budget.py",),
    ),
    mutation(
        "streams-drop-their-connection",
        "streamed calls reuse the pooled connection to the provider, not one each",
        "ai/providers/openai.py:OpenAIProvider.stream",
        ("stream_cls=_PooledStream", "stream_cls=openai.Stream[object]"),
        tests=("tests/test_ai.py",),
    ),
    mutation(
        "check-budget-off-by-one",
        "POST /ai/jobs is refused once today's tokens reach the budget (>=, not >)",
        "ai/usage.py:check_budget",
        (
            "usage_summary(owner).today_tokens >= budget",
            "usage_summary(owner).today_tokens > budget",
        ),
        tests=("tests/test_ai_job_budget.py",),
    ),
    mutation(
        "streams-uncounted",
        "streamed calls count toward usage and the budget",
        "ai/streaming.py:StreamedReply.finish",
        ("self.record.prompt_tokens = usage.prompt_tokens", "self.record.prompt_tokens = 0"),
        (
            "self.record.completion_tokens = usage.completion_tokens",
            "self.record.completion_tokens = 0",
        ),
        tests=("tests/test_ai.py",),
    ),
    mutation(
        "sse-buffered",
        "POST /ai/stream flushes each upstream chunk at once",
        "ai/api.py:event_stream",
        ("stream_with_context(events),", "list(stream_with_context(events)),"),
        tests=("tests/test_ai.py",),
    ),
    mutation(
        "structured-validation-skipped",
        "a reply that does not match response_schema is never returned as parsed",
        "ai/structured.py:parse_reply",
        ("if errors:", "if False:"),
        tests=("tests/test_ai.py", "tests/test_recipes.py"),
    ),
    mutation(
        "one-reask-fewer",
        "an invalid structured reply is re-asked up to AI_MAX_RETRIES times",
        "ai/structured.py:complete_structured",
        ("for _ in range(max_reasks + 1):", "for _ in range(max_reasks):"),
        tests=("tests/test_ai.py", "tests/test_recipes.py"),
    ),
    mutation(
        "upstream-429-as-502",
        "an upstream 429 is 503 ai_unavailable (retried first), not 502",
        "ai/base.py:status_error",
        ("if status in (429, 529):", "if status in (529,):"),
        tests=("tests/test_ai_errors.py",),
    ),
    mutation(
        "retry-after-dropped",
        "503 ai_unavailable carries Retry-After (the provider's, when it sent one)",
        "ai/errors.py:to_api_error",
        ('headers={"Retry-After": str(max(1, math.ceil(retry_after)))},', ""),
        tests=("tests/test_ai_errors.py",),
    ),
]

JOBS = [
    mutation(
        "jobs-acknowledged-early",
        "a job whose worker dies mid-run is handed out again (acks_late)",
        "jobs/celery_app.py:celery_config",
        ('"task_acks_late": True,', '"task_acks_late": False,'),
        # Only the worker-kill test: tests/test_tasks.py also reads the setting itself.
        tests=("tests/test_worker.py",),
    ),
]

TOOLS = [
    mutation(
        "tool-sees-every-item",
        "a tool sees only what its caller may see (search_items follows the items' rules)",
        "ai/tools/builtin.py:search_items",
        ("size=args.limit), caller)", "size=args.limit), Caller(key=caller.key, is_admin=True))"),
        tests=("tests/test_tools_auth.py",),
    ),
    mutation(
        "max-steps-not-enforced",
        "the tool loop stops after max_steps model calls, with the max_steps_reached warning",
        "ai/agent.py:AgentRun.complete",
        ("if made == self.toolbox.max_steps:", "if made == self.toolbox.max_steps + 1:"),
        tests=("tests/test_tools.py",),
    ),
]
# RAG is off by default: tools/mutate.py bakes the default project with use_rag on.
RAG = [
    mutation(
        "rag-citations-dropped",
        "a grounded answer cites the chunks the model was given",
        "rag/ask.py:ask",
        ("citations=grounding.citations", "citations=[]"),
        tests=("tests/test_rag_ask.py",),
    ),
    mutation(
        "rag-search-sees-every-document",
        "search, ask and the search_documents tool never see another user's documents",
        "rag/service.py:search",
        ("owner_id = None if caller.sees_all() else caller.user_id", "owner_id = None"),
        tests=("tests/test_rag_auth.py",),
    ),
    mutation(
        "rag-failure-reason-lost",
        "a document whose ingestion failed says why",
        "rag/tasks.py:rag_ingest",
        ("mark_failed(document_id, exc.message)", 'mark_failed(document_id, "")'),
        tests=("tests/test_rag_worker.py",),
    ),
    mutation(
        "rag-sqlite-ranks-fewer",
        "SQLite search is exact up to 200 chunks (the bits only pick which to compare)",
        "rag/store.py:SqliteVecStore.search",
        ('"candidates": max(CANDIDATES, 10 * k),', '"candidates": k,'),
        tests=("tests/test_rag_stores.py",),
    ),
    mutation(
        "rag-no-overlap",
        "chunks overlap by RAG_CHUNK_OVERLAP, so a sentence cut in two is whole in one chunk",
        "rag/chunking.py:split_text",
        ("max(start + 1, end - overlap)", "max(start + 1, end)"),
        tests=("tests/test_rag_documents.py",),
    ),
]

MUTATIONS: list[Mutation] = [*CORE, *ITEMS, *AUTH, *AI, *JOBS, *TOOLS, *RAG]


# -- applying one --------------------------------------------------------------------------------


def find_function(tree: ast.Module, dotted: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """The function (or method, or function inside a function) named by the dotted path."""
    scope: list[ast.stmt] = tree.body
    found: ast.AST | None = None
    for part in dotted.split("."):
        found = next(
            (
                node
                for node in scope
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                and node.name == part
            ),
            None,
        )
        if found is None:
            return None
        scope = found.body
    return found if isinstance(found, ast.FunctionDef | ast.AsyncFunctionDef) else None


_OPENING, _CLOSING = "([{", ")]}"


def snippet_pattern(snippet: str) -> re.Pattern[str]:
    """The snippet as a regex that allows any line breaks and indentation where it has
    whitespace, and after an opening bracket or a comma, and before a closing bracket."""
    parts: list[str] = []
    for token in re.split(r"(\s+)", snippet.strip()):
        if not token:
            continue
        if token.isspace():
            parts.append(r"\s+")
            continue
        for char in token:
            if char in _CLOSING:
                parts.append(r"\s*")
            parts.append(re.escape(char))
            if char in _OPENING or char == ",":
                parts.append(r"\s*")
    if parts and parts[-1] == r"\s*":
        parts.pop()  # what follows the snippet stays where it is
    return re.compile("".join(parts))


def apply_mutation(item: Mutation, source: str) -> str:
    """The module's source with the mutation applied; MutationError when it no longer applies."""

    def stale(reason: str) -> MutationError:
        return MutationError(f"mutation {item.name} no longer applies: {reason}")

    tree = ast.parse(source)
    function = find_function(tree, item.function)
    if function is None:
        raise stale(f"no function {item.function} in {item.module}")
    start = min([function.lineno, *(node.lineno for node in function.decorator_list)])
    end = function.end_lineno or function.lineno
    lines = source.splitlines(keepends=True)
    segment = "".join(lines[start - 1 : end])
    for old, new in item.edits:
        found = list(snippet_pattern(old).finditer(segment))
        if len(found) != 1:
            where = "is not" if not found else f"is {len(found)} times"
            raise stale(f"{old!r} {where} in {item.module}:{item.function}")
        segment = segment[: found[0].start()] + new + segment[found[0].end() :]
    mutated = "".join(lines[: start - 1]) + segment + "".join(lines[end:])
    try:
        changed = ast.dump(ast.parse(mutated)) != ast.dump(tree)
    except SyntaxError as exc:
        raise stale(f"the edit does not parse: {exc}") from exc
    if not changed:
        raise stale("the edit changes nothing")
    return mutated


def mutated_source(project: Path, package: str, item: Mutation) -> str:
    """The mutated source of the mutation's module in a baked project; MutationError when the
    module, the function, the snippet or one of the test files is gone."""
    module = project / "src" / package / item.module
    if not module.is_file():
        raise MutationError(f"mutation {item.name} no longer applies: no {item.module}")
    missing = [path for path in item.tests if not (project / path).is_file()]
    if missing:
        raise MutationError(
            f"mutation {item.name} no longer applies: no test file {', '.join(missing)}"
        )
    return apply_mutation(item, module.read_text(encoding="utf-8"))
