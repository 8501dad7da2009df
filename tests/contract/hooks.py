"""schemathesis hooks for scripts/contract-test.

Known values: some rules of a valid request depend on the service's state, on the caller or on
other requests, which the document cannot state. The values that satisfy them are prepared for the
run by tests/contract/prepare.py (target/contract/values.json), and `before_call` puts them into a
request in every phase, replacing only a value that already satisfies its schema, so negative
cases stay negative and the refusal paths stay covered:
- a new connection's `institution_id` must name an active institution and a declared incident's
  one an institution (the stateful phase takes these from the document's links, so they are left
  alone there); an incident so declared is resolved at once (`after_call`), since an institution
  has one open incident at a time (409) and the next declare would otherwise never succeed;
- `tenant_id` is required with an admin key, and must be the key's own with a tenant key;
- a catalogue edit's `code` must be the path's, its `reason` is the entry's for good, and
  `related` must name other entries;
- a new institution's `slug` must be unused: one this run already sent gets a sibling of the
  same length (409 stays reachable through slugs the hook never saw);
- an Idempotency-Key sent before with another request is refused: a valid case gets a fresh one;
- a webhook URL is admitted only when its host is public or on the server's allow-list, a rule of
  the deployment (scripts/with-feedwatch allows 127.0.0.1): a schema-valid URL is swapped for one
  the service under test admits. Without this no endpoint is ever created, and the stateful phase
  never reaches the operations that take a webhook id.
Headers are changed only in cases schemathesis sends as valid (see `is_positive`).

Disconnects: `DELETE /v1/connections/{id}` disconnects (refreshes stop; the connection stays
readable in state `disconnected` with its accounts and history; only `?purge=true` removes it, and
then every read answers 404). schemathesis' use-after-free check (ST301) cannot be switched off per
operation in 4.32, so its failure is dropped here exactly when the deleted resource is a connection
and, for the connection itself, the read shows it disconnected.
"""
import itertools
import json
import os
import re

import requests
import schemathesis

VALUES = "target/contract/values.json"
ADMITTED_URL = "http://127.0.0.1:9/hooks/feedwatch"
URL_PATTERN = re.compile(r"^https?://\S+$")
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
REASON = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
IDEMPOTENCY_KEY = re.compile(r"^[!-~]{1,200}$")
IF_MATCH = re.compile(r'^(\*|"r[0-9]{1,9}")$')
INT32 = 2**31 - 1

# What this run has sent (one process per schemathesis run).
_values = None
_sent_slugs = set()
_keys = {}
_tails = itertools.count()


def values():
    """What prepare.py found or made for this run, and the role (CONTRACT_ROLE) the run is in."""
    global _values
    if _values is None:
        with open(VALUES) as file:
            _values = json.load(file)
        _values["role"] = os.environ.get("CONTRACT_ROLE", "admin")
    return _values


def is_uuid(value):
    return isinstance(value, str) and UUID.match(value) is not None


def is_int(value, minimum):
    """An integer as JSON Schema reads one: `2.0` is one too (the service's parser refuses it)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= INT32


def is_positive(case):
    """Whether schemathesis sent the case as valid. Headers are changed in such cases only: a
    case that leaves out a required header (the API key) turns valid on any header edit, and is
    then sent with the key."""
    meta = getattr(case, "meta", None)
    return meta is not None and meta.generation.mode.is_positive


def unique_idempotency_key(case):
    """An Idempotency-Key sent before with another request is refused (422, a rule across
    requests; the coverage phase sends one key with every variant of a body): a valid case gets
    a new tail for its key then. The same key with the same request is left alone, so replays
    stay covered."""
    headers = case.headers or {}
    name = next((name for name in headers if name.lower() == "idempotency-key"), None)
    key = headers.get(name) if name else None
    if not isinstance(key, str) or not IDEMPOTENCY_KEY.match(key) or not is_positive(case):
        return
    request = repr((case.operation.method, case.operation.path, case.path_parameters, case.query, case.body))
    while _keys.setdefault(key, request) != request:
        tail = f"~{next(_tails):x}"
        key = key[: 200 - len(tail)] + tail
    headers[name] = key


def in_stateful_phase(case):
    meta = getattr(case, "meta", None)
    return meta is not None and str(meta.phase.name) == "stateful"


def supply_tenant(body):
    """Admin keys must name a tenant; tenant keys may name only their own."""
    own = values()["tenants"].get(values()["role"])
    if own is None:
        return
    if values()["role"] == "admin":
        if body.get("tenant_id") is None:
            body["tenant_id"] = own
    elif is_uuid(body.get("tenant_id")):
        body["tenant_id"] = own


def new_connection(case, body):
    supply_tenant(body)
    if is_uuid(body.get("institution_id")) and not in_stateful_phase(case):
        body["institution_id"] = values()["institution"]


def new_incident(case, body):
    if is_uuid(body.get("institution_id")) and not in_stateful_phase(case):
        body["institution_id"] = values()["incident_institution"]


def entry_edit(case, body):
    code = case.path_parameters.get("code") if case.path_parameters else None
    try:
        code = int(code)
    except (TypeError, ValueError):
        return
    reason = values()["reasons"].get(str(code))
    if reason is None:
        return
    if is_int(body.get("code"), 1):
        body["code"] = code
    if isinstance(body.get("reason"), str) and REASON.match(body["reason"]):
        body["reason"] = reason
    related = body.get("related")
    others = [other for other in map(int, values()["reasons"]) if other != code]
    if isinstance(related, list) and others:
        body["related"] = [others[i % len(others)] if is_int(item, 0) else item for i, item in enumerate(related)]


def new_institution(case, body):
    slug = body.get("slug")
    if isinstance(slug, str) and SLUG.match(slug):
        body["slug"] = unused_slug(slug)


def unused_slug(slug):
    """`slug`, or, when this run sent it before, another of the same length: its tail replaced by
    a counter in base 36 (a one-character slug has 36). A slug set by another process, or with
    no sibling left, meets its 409."""
    if slug not in _sent_slugs:
        _sent_slugs.add(slug)
        return slug
    for n in itertools.count():
        tail = base36(n)
        if len(tail) > len(slug):
            return slug
        sibling = slug[: len(slug) - len(tail)] + tail
        if sibling not in _sent_slugs:
            _sent_slugs.add(sibling)
            return sibling


def base36(n):
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = digits[n % 36]
    while n >= 36:
        n //= 36
        text = digits[n % 36] + text
    return text


def webhook(case, body):
    url = body.get("url")
    if isinstance(url, str) and URL_PATTERN.match(url) and len(url) <= 2000:
        body["url"] = ADMITTED_URL
    if case.operation.method.upper() == "POST":
        supply_tenant_for_webhook(body)


def supply_tenant_for_webhook(body):
    """A tenant key's endpoint is its own tenant's; admin and helpdesk keys may name any."""
    if values()["role"] == "tenant" and is_uuid(body.get("tenant_id")):
        body["tenant_id"] = values()["tenants"]["tenant"]


IMPORTS = {("POST", "/v1/connections/{id}/imports"), ("POST", "/v1/connections/{id}/accounts/{account_id}/imports")}
# A statement the service reads: one row for the account the query or the path names. Text, not
# bytes: schemathesis judges an edited body again, and judges any body with bytes in it invalid.
STATEMENT = "Date,Description,Amount\n2026-01-02,Contract test,-1.50\n"
_imports = itertools.count()


def statement_import(case):
    """An import needs a connection and account of the caller's that exist, and a file the
    service can read (which no schema states: any bytes are a `binary` string). Valid cases in
    the phases that generate ids get the prepared connection and account; every other one also
    carries a readable statement, the rest keep the fuzzer's bytes for the statement readers."""
    if in_stateful_phase(case) or not is_positive(case):
        return
    target = values()["import"]
    path = case.path_parameters or {}
    if is_uuid(path.get("id")):
        path["id"] = target["connection"]
    if is_uuid(path.get("account_id")):
        path["account_id"] = target["account"]
    if next(_imports) % 2:
        return
    if isinstance(case.body, dict) and "file" in case.body:
        case.body["file"] = STATEMENT
        case.body.pop("options", None)  # CSV options are for another file (an optional part)
    elif isinstance(case.body, (bytes, str)):
        case.body = STATEMENT
    else:
        return
    if "account_id" not in path:
        case.query = {**(case.query or {}), "account_id": target["account"]}


SUPPLY = {
    ("POST", "/v1/connections"): new_connection,
    ("POST", "/v1/incidents"): new_incident,
    ("PUT", "/v1/errors/{code}"): entry_edit,
    ("POST", "/v1/institutions"): new_institution,
    ("PUT", "/v1/institutions/{id}"): new_institution,
    ("POST", "/v1/webhooks"): webhook,
    ("PATCH", "/v1/webhooks/{id}"): webhook,
}


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    operation = (case.operation.method.upper(), case.operation.path)
    supply = SUPPLY.get(operation)
    if supply is not None and isinstance(case.body, dict):
        supply(case, case.body)
    if operation in IMPORTS:
        statement_import(case)
    unique_idempotency_key(case)
    # schemathesis 4.32's coverage phase draws header values from letters and digits only, and an
    # entry's If-Match (`*` or a quoted revision) has none: it sends `0` in cases it calls valid,
    # which the service refuses (400). Such a case asks for any revision (`*`) instead.
    if operation == ("PUT", "/v1/errors/{code}") and case.headers and is_positive(case):
        if not IF_MATCH.match(str(case.headers.get("if-match", "*"))):
            case.headers["if-match"] = "*"
    # A valid edit of a connection names the version its caller last read; schemathesis draws a
    # well-formed but random one, stale (412) nearly always, so on some seeds the operation looks
    # as if it refused valid data. A valid case asks for the current version, whatever it is
    # (`*`); the stale version's 412 is the integration tests' (`connections`).
    if operation == ("PATCH", "/v1/connections/{id}") and case.headers and is_positive(case):
        case.headers["if-match"] = "*"


@schemathesis.hook
def after_call(ctx, case, response):
    """Resolves an incident declared at the prepared institution, so the next declare can succeed."""
    if (case.operation.method.upper(), case.operation.path) != ("POST", "/v1/incidents") or response.status_code != 201:
        return
    if not isinstance(case.body, dict) or case.body.get("institution_id") != values()["incident_institution"]:
        return
    incident = json.loads(response.content)["id"]
    answer = requests.patch(
        f"{os.environ['FEEDWATCH_URL']}/v1/incidents/{incident}",
        json={"state": "resolved", "resolution": "contract-test: frees the institution for the next declare"},
        headers={"Authorization": response.request.headers["Authorization"]},
        timeout=10,
    )
    answer.raise_for_status()


DISCONNECT = re.compile(r"^DELETE /v1/connections/[^/]+$")


@schemathesis.hook
def filter_failure(ctx, failure, case, response):
    if getattr(failure, "code", None) != "ST301" or not DISCONNECT.match(getattr(failure, "free", "")):
        return True
    if case.operation.path != "/v1/connections/{id}":
        return False
    try:
        return json.loads(response.content).get("state") != "disconnected"
    except (ValueError, AttributeError):
        return True
