"""The README's tour as a dashboard or script would write it, with the client that
openapi-python-client generates from openapi/openapi.json (scripts/client-test generates it
into target/clients/python and puts it on PYTHONPATH).

FEEDWATCH_URL and FEEDWATCH_ADMIN_KEY name a live service, FEEDWATCH_SANDBOX_URL its sandbox bank
(scripts/with-feedwatch starts one).
Every answer is parsed into the generated models: a response outside the document fails here.
"""

import os
import secrets
import sys
import time
import uuid

from feedwatch_client import AuthenticatedClient
from feedwatch_client.api.api_keys import create_api_key
from feedwatch_client.api.connections import create_connection, diagnose_connection, get_connection
from feedwatch_client.api.errors import lookup_error, search_errors
from feedwatch_client.api.feed import sync_transactions
from feedwatch_client.api.health import get_health_summary
from feedwatch_client.api.institutions import create_institution
from feedwatch_client.api.refreshes import get_refresh, trigger_refresh
from feedwatch_client.models import (
    AmbiguousCode,
    ConnectionView,
    CreateApiKeyType2,
    CreateApiKeyType2Role,
    CreateConnection,
    CreatedApiKey,
    CredentialsInput,
    Diagnosis,
    ErrorLookup,
    HealthSummary,
    InstitutionInput,
    InstitutionView,
    JobState,
    OfxInput,
    Problem,
    ProviderKind,
    RefreshAccepted,
    RefreshRequest,
    RefreshView,
    SearchResults,
    State,
    SyncView,
)
from feedwatch_client.types import Response

BASE_URL = os.environ["FEEDWATCH_URL"]
SANDBOX_URL = os.environ["FEEDWATCH_SANDBOX_URL"]
ADMIN_KEY = os.environ["FEEDWATCH_ADMIN_KEY"]
# One trace for the whole tour: the service logs it and passes it on to the bank it calls.
TRACEPARENT = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


class ProblemError(Exception):
    """An error answer, as the typed problem document the API promises."""

    def __init__(self, step: str, problem: Problem):
        super().__init__(f"{step}: {problem.status} {problem.code}: {problem.detail}")
        self.problem = problem


def client(key: str) -> AuthenticatedClient:
    return AuthenticatedClient(base_url=BASE_URL, token=key, headers={"traceparent": TRACEPARENT}, timeout=30.0)


def ok(step: str, response: Response, expected: type):
    """The parsed body of a success, or a ProblemError for the document's error answers."""
    parsed = response.parsed
    if isinstance(parsed, expected) and response.status_code < 300:
        print(f"ok   {step} ({response.status_code})")
        return parsed
    if isinstance(parsed, Problem):
        raise ProblemError(step, parsed)
    raise AssertionError(f"{step}: HTTP {response.status_code}, parsed as {type(parsed).__name__}: {response.content[:300]!r}")


def check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(f"check failed: {what}")


def follow(tenant: AuthenticatedClient, refresh_id: int) -> JobState:
    deadline = time.monotonic() + 60
    while True:
        refresh = ok(f"follow refresh {refresh_id}", get_refresh.sync_detailed(refresh_id, client=tenant), RefreshView)
        if refresh.state not in (JobState.AVAILABLE, JobState.RUNNING):
            return refresh.state
        if time.monotonic() > deadline:
            raise AssertionError(f"refresh {refresh_id} still {refresh.state} after a minute")
        # The API has no long poll; a script polls like this.
        time.sleep(0.2)


def main() -> None:
    admin = client(ADMIN_KEY)

    # What does this error mean, and what do I do?
    entry = ok("look up 102", lookup_error.sync_detailed("102", client=admin), ErrorLookup)
    check(entry.entry.code == 102 and entry.matched.by == "code", "102 is the entry with code 102")
    alias = ok("look up plaid:ITEM_LOGIN_REQUIRED", lookup_error.sync_detailed("plaid:ITEM_LOGIN_REQUIRED", client=admin), ErrorLookup)
    check(alias.matched.by == "alias" and alias.matched.alias.namespace == "plaid", "an alias lookup names the alias that matched")
    hits = ok("search 'password changed'", search_errors.sync_detailed(client=admin, q="password changed"), SearchResults)
    check(len(hits.items) > 0, "a search for a changed password finds entries")
    ambiguous = lookup_error.sync_detailed("402", client=admin)
    check(ambiguous.status_code == 300 and isinstance(ambiguous.parsed, AmbiguousCode), "a bare code several providers use answers 300")
    print(f"ok   look up 402 (300, {len(ambiguous.parsed.candidates)} candidates)")

    # Keys: a tenant key sees one tenant only.
    tenant_id = uuid.uuid4()
    body = CreateApiKeyType2(role=CreateApiKeyType2Role.TENANT, tenant_id=tenant_id, label="dashboard (python tour)")
    created = ok("create a tenant key", create_api_key.sync_detailed(client=admin, body=body), CreatedApiKey)
    tenant = client(created.secret)

    # An institution (this service's own sandbox bank, spoken to over real OFX) and a connection.
    ofx = OfxInput(url=f"{SANDBOX_URL}/ofx/healthy", org="FEEDWATCH-SANDBOX", fid="90001")
    institution_body = InstitutionInput(slug=f"py-tour-{secrets.token_hex(4)}", name="Python Tour Bank", provider=ProviderKind.OFX, ofx=ofx)
    institution = ok("create an institution", create_institution.sync_detailed(client=admin, body=institution_body), InstitutionView)
    connection_body = CreateConnection(
        institution_id=institution.id,
        display_name="Operating",
        credentials=CredentialsInput(user_id="user_good", password="pass_good"),
    )
    connection = ok(
        "create a connection",
        create_connection.sync_detailed(client=tenant, body=connection_body, idempotency_key=str(uuid.uuid4())),
        ConnectionView,
    )
    check(connection.tenant_id == tenant_id, "the connection belongs to the key's tenant")

    # Trigger a refresh with no body at all, and follow it to its outcome.
    accepted = ok("trigger a refresh", trigger_refresh.sync_detailed(connection.id, client=tenant), RefreshAccepted)
    outcome = follow(tenant, accepted.refresh_id)
    check(outcome == JobState.SUCCEEDED, f"the refresh succeeded (it ended {outcome})")

    # Right after a success a tenant's refresh is refused (a typed 429); an admin may force one
    # with the optional body: the request this generator could not send before.
    try:
        ok("refresh again at once", trigger_refresh.sync_detailed(connection.id, client=tenant), RefreshAccepted)
        raise AssertionError("a refresh right after a success was accepted")
    except ProblemError as error:
        check(error.problem.code == "refresh_cooldown", f"refused as refresh_cooldown ({error})")
        print(f"ok   a refresh right after a success is a typed problem: {error.problem.code}")
    forced = ok(
        "force a refresh",
        trigger_refresh.sync_detailed(connection.id, client=admin, body=RefreshRequest(force=True)),
        RefreshAccepted,
    )
    check(follow(tenant, forced.refresh_id) == JobState.SUCCEEDED, "the forced refresh succeeded")

    # The sync feed, from the start.
    sync = ok("read the sync feed", sync_transactions.sync_detailed(connection.id, client=tenant, cursor="0"), SyncView)
    check(len(sync.added) > 0, "the first sync lists the bank's transactions")

    # Health at a glance, and the troubleshooting ladder.
    summary = ok("read the health summary", get_health_summary.sync_detailed(client=tenant), HealthSummary)
    check(summary.connections == 1 and summary.by_state["healthy"] == 1, "the tenant's one connection is healthy")
    diagnosis = ok("diagnose the connection", diagnose_connection.sync_detailed(connection.id, client=tenant), Diagnosis)
    check(diagnosis.state == State.HEALTHY and len(diagnosis.findings) > 0, "the diagnosis reads a healthy connection")

    # A problem response, handled as a typed error: another tenant's (or no) connection is a 404.
    try:
        ok("read a connection that does not exist", get_connection.sync_detailed(uuid.uuid4(), client=tenant), ConnectionView)
        raise AssertionError("a missing connection was found")
    except ProblemError as error:
        check(error.problem.status == 404 and error.problem.code == "not_found", f"a missing connection is not_found ({error})")
        print(f"ok   a missing connection is a typed problem: {error.problem.code}")

    print(f"python tour: passed (trace {TRACEPARENT[3:35]})")


if __name__ == "__main__":
    try:
        main()
    except (AssertionError, ProblemError) as failure:
        print(f"python tour: FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
