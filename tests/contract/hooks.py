"""schemathesis hooks for scripts/contract-test.

Webhook URLs: a webhook URL is admitted only when its host is public or on the server's allow-list, a rule of
the deployment that the document cannot state (scripts/with-feedwatch allows 127.0.0.1). Random
schema-valid URLs are therefore refused, no endpoint is ever created, and the stateful phase never
reaches the operations that take a webhook id. Here a URL that already satisfies the schema is
swapped for one the service under test admits; a URL the schema rejects is left alone, so negative
cases stay negative.

Disconnects: `DELETE /v1/connections/{id}` disconnects (refreshes stop; the connection stays
readable in state `disconnected` with its accounts and history; only `?purge=true` removes it, and
then every read answers 404). schemathesis' use-after-free check (ST301) cannot be switched off per
operation in 4.32, so its failure is dropped here exactly when the deleted resource is a connection
and, for the connection itself, the read shows it disconnected.
"""
import json
import re

import schemathesis

ADMITTED_URL = "http://127.0.0.1:9/hooks/feedwatch"
URL_PATTERN = re.compile(r"^https?://\S+$")
WEBHOOK_WRITES = {("POST", "/v1/webhooks"), ("PATCH", "/v1/webhooks/{id}")}


@schemathesis.hook
def map_body(ctx, body):
    operation = getattr(ctx, "operation", None)
    if operation is None or (operation.method.upper(), operation.path) not in WEBHOOK_WRITES:
        return body
    url = body.get("url") if isinstance(body, dict) else None
    if isinstance(url, str) and URL_PATTERN.match(url) and len(url) <= 2000:
        return {**body, "url": ADMITTED_URL}
    return body


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
