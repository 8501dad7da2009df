"""schemathesis hooks for scripts/contract-test.

A webhook URL is admitted only when its host is public or on the server's allow-list, a rule of
the deployment that the document cannot state (scripts/with-feedwatch allows 127.0.0.1). Random
schema-valid URLs are therefore refused, no endpoint is ever created, and the stateful phase never
reaches the operations that take a webhook id. Here a URL that already satisfies the schema is
swapped for one the service under test admits; a URL the schema rejects is left alone, so negative
cases stay negative.
"""
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
