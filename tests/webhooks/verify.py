"""Verifies one webhook delivery as a receiver would, with the `standardwebhooks` package.

Reads {"secret", "headers", "body"} as JSON on standard input (so the secret never shows in a
process list). Prints the verified payload and exits 0, or prints why and exits 1.
"""

import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main() -> int:
    request = json.load(sys.stdin)
    try:
        payload = Webhook(request["secret"]).verify(request["body"], request["headers"])
    except WebhookVerificationError as error:
        print(f"verification failed: {error}", file=sys.stderr)
        return 1
    print(json.dumps(payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
