"""Extract the users endpoints of Auth0's Management API OpenAPI document.

What: reads the full Management API OpenAPI 3.1 document (see SOURCE.md) and writes
`users-subset.json`: the `openapi` and `info` header, the path items in PATHS (the
users endpoints, and since issue 13 connections, jobs and password-change tickets; every
method, unchanged), every component they
reference through `$ref`, followed transitively, and the security schemes named by
those operations' `security` requirements. Nothing else is copied and no value is
changed; keys keep the source's order, so the output is deterministic.

How to run (Python 3 standard library only), from the repository root:

    python3 tests/oas/extract.py /work/shared/spec/management-api-oas.json tests/oas/users-subset.json
    python3 tests/oas/extract.py --check SPEC tests/oas/users-subset.json   # exit 1 if stale

The SHA-256 of the input is compared with the one recorded in SOURCE.md; a different
document is refused unless --any-source is given.
"""

import argparse
import hashlib
import json
import sys

PATHS = [
    "/users",
    "/users/{id}",
    "/users-by-email",
    # Issue 13: bulk-import jobs and what goes with them.
    "/connections",
    "/jobs/users-imports",
    "/jobs/{id}",
    "/jobs/{id}/errors",
    "/jobs/users-exports",
    "/tickets/password-change",
    # Issue 14: roles, permissions, resource servers and organizations.
    "/roles",
    "/roles/{id}",
    "/roles/{id}/users",
    "/roles/{id}/permissions",
    "/users/{id}/roles",
    "/users/{id}/permissions",
    "/users/{id}/organizations",
    "/resource-servers",
    "/organizations",
    "/organizations/name/{name}",
    "/organizations/{id}",
    "/organizations/{id}/members",
    "/organizations/{id}/members/{user_id}/roles",
]
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
EXPECTED_SHA256 = "3ac17a404d0b2d3acd45b002e4b2e55a70cbf809175187cf9a5bfe604f1335c3"


def local_refs(node):
    """Yield every `$ref` string found anywhere below `node`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from local_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from local_refs(item)


def split_component_ref(ref):
    """`#/components/schemas/X` -> ("schemas", "X"); anything else is an error."""
    parts = ref.split("/")
    if len(parts) != 4 or parts[0] != "#" or parts[1] != "components":
        raise SystemExit(f"unsupported $ref {ref!r}: only #/components/<section>/<name>")
    # JSON Pointer escapes (RFC 6901).
    return parts[2], parts[3].replace("~1", "/").replace("~0", "~")


def extract(spec):
    missing = [p for p in PATHS if p not in spec["paths"]]
    if missing:
        raise SystemExit(f"paths not in the document: {missing}")
    paths = {p: item for p, item in spec["paths"].items() if p in PATHS}

    # Transitive closure over component references.
    wanted = set()
    todo = list(local_refs(paths))
    while todo:
        section, name = split_component_ref(todo.pop())
        if (section, name) in wanted:
            continue
        try:
            target = spec["components"][section][name]
        except KeyError:
            raise SystemExit(f"dangling $ref #/components/{section}/{name}") from None
        wanted.add((section, name))
        todo.extend(local_refs(target))

    # Security schemes are referenced by name from operation-level `security`.
    for item in paths.values():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                for requirement in operation.get("security", []):
                    for scheme in requirement:
                        wanted.add(("securitySchemes", scheme))

    components = {}
    for section, entries in spec["components"].items():  # source order
        kept = {n: v for n, v in entries.items() if (section, n) in wanted}
        if kept:
            components[section] = kept
    return {
        "openapi": spec["openapi"],
        "info": spec["info"],
        "paths": paths,
        "components": components,
    }


def render(document):
    # indent=2 and ensure_ascii=False reproduce the source document byte for byte
    # when applied to it whole, so every copied value reads exactly as upstream.
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", help="the full management-api-oas.json")
    parser.add_argument("output", help="where to write the subset")
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--any-source", action="store_true", help="skip the SHA-256 check")
    args = parser.parse_args()

    with open(args.spec, "rb") as f:
        raw = f.read()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != EXPECTED_SHA256 and not args.any_source:
        raise SystemExit(f"{args.spec}: SHA-256 {digest}, expected {EXPECTED_SHA256}")
    text = render(extract(json.loads(raw)))

    if args.check:
        with open(args.output, encoding="utf-8") as f:
            if f.read() != text:
                print(f"{args.output} is stale: re-run extract.py", file=sys.stderr)
                return 1
        return 0
    with open(args.output, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
