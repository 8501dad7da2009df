"""Prepares the schemathesis runs of scripts/contract-test against the service under test.

- Keys for every role the contract is fuzzed as: the admin key the service was started with, and a
  helpdesk and a tenant key made here (written to target/contract/keys.env for the script).
- A seeded data set: a connection of that tenant at the sandbox's healthy bank, refreshed, so the
  operations that need an existing connection or account (PATCH /v1/connections/{id}, PATCH
  /v1/connections/{id}/accounts/{account_id}, GET /v1/accounts/{id}/transactions) are fuzzed with
  real ids instead of random ones that only ever find nothing.
- Values for tests/contract/hooks.py (target/contract/values.json): institutions for fuzzed
  connections and declared incidents, the tenant each role's connections belong to, the
  catalogue's codes and reasons, and a connection with accounts for statement imports.
- One schemathesis configuration per role (target/contract/<role>.toml): the committed
  tests/contract/schemathesis.toml, with each operation's accepted statuses narrowed to what the
  role gets (tests/api/authz_matrix.toml, the one table of who may call what): a 403 only where the
  role may not call the operation, and then nothing else; never a 401 for a valid key.
"""
import copy
import json
import re
import os
import sys
import time
import tomllib
import urllib.request
import uuid

URL = os.environ["FEEDWATCH_URL"]
ADMIN = os.environ["FEEDWATCH_ADMIN_KEY"]
OUT = "target/contract"
ROLES = {"admin": 5, "helpdesk": 4, "tenant": 2}  # the matrix's columns
COLUMNS = ["no_key", "revoked", "tenant_a", "tenant_b", "helpdesk", "admin"]
# schemathesis 4.32's own default for positive_data_acceptance.
DEFAULT_ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]


def call(method, path, key=ADMIN, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(URL + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def make_keys():
    tenant = str(uuid.uuid4())
    helpdesk = call("POST", "/v1/api-keys", body={"role": "helpdesk", "label": "contract"})["secret"]
    tenant_key = call("POST", "/v1/api-keys", body={"role": "tenant", "tenant_id": tenant, "label": "contract"})["secret"]
    with open(f"{OUT}/keys.env", "w") as file:
        file.write(f"HELPDESK_KEY={helpdesk}\nTENANT_KEY={tenant_key}\n")
    return tenant


def institution(slug, name):
    """An institution of the sandbox made for this run (a fresh service has none of these)."""
    return call("POST", "/v1/institutions", body={
        "slug": slug, "name": name, "provider": "sandbox", "ofx": {"org": "SANDBOX", "fid": "1"},
    })["id"]


def make_values(tenant):
    """The values tests/contract/hooks.py puts into requests whose validity depends on the
    service's state or the caller, which the document cannot state (see its docstring).
    Connections and incidents get institutions of their own, away from the seeded connection's:
    fuzzed connections queue refreshes there, and an open incident paces refreshes."""
    entries = call("GET", "/v1/errors?limit=100")["items"]
    found = {
        "institution": institution("contract-connections", "Contract connections bank"),
        "incident_institution": institution("contract-incidents", "Contract incidents bank"),
        # The tenant admin-made connections belong to is the one the document's links name.
        "tenants": {"admin": "00000000-0000-4000-8000-00000000de70", "tenant": tenant},
        "reasons": {str(entry["code"]): entry["reason"] for entry in entries},
        # Statement imports go to a connection of their own, apart from the per-role seeds.
        "import": seed(),
    }
    with open(f"{OUT}/values.json", "w") as file:
        json.dump(found, file, indent=1)


def seed():
    """A fresh connection of the tenant, refreshed: an earlier run may have deleted the last one."""
    with open(f"{OUT}/keys.env") as file:
        tenant_key = dict(line.strip().split("=", 1) for line in file if "=" in line)["TENANT_KEY"]
    institution = call("GET", "/v1/institutions?q=sandbox-healthy")["items"][0]["id"]
    connection = call("POST", "/v1/connections", key=tenant_key, body={
        "institution_id": institution, "display_name": "Contract seed",
        "credentials": {"user_id": "user_good", "password": "pass_good"},
    })["id"]
    # The service's own workers run the first refresh; its accounts appear when it is stored.
    deadline = time.monotonic() + 60
    while not (accounts := call("GET", f"/v1/connections/{connection}/accounts")):
        if time.monotonic() > deadline:
            sys.exit("contract-test: the seeded connection's first refresh found no accounts within 60 s")
        time.sleep(0.5)
    return {"connection": connection, "account": accounts[0]["id"]}


def document_operations():
    with urllib.request.urlopen(URL + "/openapi.json", timeout=30) as response:
        document = json.load(response)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if "operationId" in operation:
                yield f"{method.upper()} {path}", operation["operationId"]


def seeded_parameters(ids):
    return {
        "PATCH /v1/connections/{id}": {"id": ids["connection"]},
        "PATCH /v1/connections/{id}/accounts/{account_id}": {"id": ids["connection"], "account_id": ids["account"]},
        "GET /v1/accounts/{id}/transactions": {"id": ids["account"]},
    }


def accepted(base, status, forbidden_by_request):
    """What a valid request of the role may get: exactly 403 where the role may not call the
    operation; elsewhere what the committed configuration accepts, less 401, and less 403 unless
    some valid requests are not the role's to send (the matrix's `forbidden_by_request`). A 403
    cell with `forbidden_by_request` is refused on the matrix's resource (tenant A's) but not on
    every resource (a helpdesk key's own fleet-wide webhook): both answers are the role's."""
    if status == 403 and not forbidden_by_request:
        return [403]
    refused = ("401",) if forbidden_by_request else ("401", "403")
    kept = [code for code in base if str(code) not in refused]
    return kept + [403] if forbidden_by_request and "403" not in map(str, kept) else kept


def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def flat(table, prefix=""):
    for key, value in table.items():
        if isinstance(value, dict) and key != "parameters":
            yield from flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def merge(into, extra):
    for key, value in extra.items():
        if isinstance(value, dict):
            merge(into.setdefault(key, {}), value)
        else:
            into.setdefault(key, value)


def write_config(name, role, base, matrix, operations, parameters):
    """One configuration in which every operation has exactly one block: schemathesis applies
    one block per operation, so the committed path-pattern blocks are merged into them."""
    column = ROLES[role]
    lines = [f"# Generated by tests/contract/prepare.py for the {name} run; do not edit."]
    for section in ("cache", "phases"):
        for key, value in flat(base.get(section, {}), f"{section}."):
            lines.append(f"{key} = {toml_value(value)}")
    operations_config = copy.deepcopy(base.get("operations", []))
    blocks = {op["include-name"]: op for op in operations_config if "include-name" in op}
    others = [op for op in operations_config if "include-name" not in op]
    patterns = [op for op in others if "include-path-regex" in op]
    for label, operation_id in operations:
        block = blocks.get(label, {"include-name": label})
        method, path = label.split(" ", 1)
        for pattern in patterns:
            if re.search(pattern["include-path-regex"], path) and pattern.get("include-method", method) == method:
                merge(block, {key: value for key, value in pattern.items() if not key.startswith("include-")})
        checks = block.setdefault("checks", {}).setdefault("positive_data_acceptance", {})
        row = matrix["operations"][operation_id]
        forbidden_by_request = COLUMNS[column] in row.get("forbidden_by_request", [])
        base_statuses = checks.get("expected-statuses", DEFAULT_ACCEPTED)
        checks["expected-statuses"] = accepted(base_statuses, row["statuses"][column], forbidden_by_request)
        missing_header = block["checks"].get("missing_required_header", {})
        if row["statuses"][column] == 403 and "expected-statuses" in missing_header:
            # The role is refused before any header is looked at.
            missing_header["expected-statuses"] = [403]
        if label in parameters:
            block["parameters"] = {**block.get("parameters", {}), **parameters[label]}
        others.append(block)
    for block in others:
        lines.append("\n[[operations]]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in flat(block))
    with open(f"{OUT}/{name}.toml", "w") as file:
        file.write("\n".join(lines) + "\n")


def main():
    """`prepare.py`: keys, and the configurations the stateful phase uses (no fixed ids: it takes
    its ids from the responses it follows, and a fixed one would replace a resource a scenario
    just created). `prepare.py ROLE`: a freshly seeded connection and ROLE's configuration with
    its ids, for the phases that generate parameters."""
    os.makedirs(OUT, exist_ok=True)
    with open("tests/contract/schemathesis.toml", "rb") as file:
        base = tomllib.load(file)
    with open("tests/api/authz_matrix.toml", "rb") as file:
        matrix = tomllib.load(file)
    operations = list(document_operations())
    missing = [operation_id for _, operation_id in operations if operation_id not in matrix["operations"]]
    if missing:
        sys.exit(f"contract-test: operations without a row in tests/api/authz_matrix.toml: {missing}")
    if len(sys.argv) == 1:
        make_values(make_keys())
        for role in ROLES:
            write_config(f"{role}-linked", role, base, matrix, operations, {})
        return
    role = sys.argv[1]
    ids = seed()
    write_config(role, role, base, matrix, operations, seeded_parameters(ids))
    print(f"contract-test: {role} run with seeded connection {ids['connection']} and account {ids['account']}")


if __name__ == "__main__":
    main()
