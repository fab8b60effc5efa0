#!/usr/bin/env python3
"""Check celeris-frontend's OpenAPI document and real answers against it.

    openapi_check.py DOCUMENT [ANSWERS]

DOCUMENT is the OpenAPI 3.1 JSON (as GET /openapi.json serves it); it is validated with
openapi-spec-validator. ANSWERS (optional) is a JSON file:

    {"answers":  [{"method": "POST", "path": "/tasks?x=1", "status": 200,
                   "content_type": "application/json", "headers": {"allow": "POST"}, "body": "..."}],
     "messages": [{"schema": "WebSocketTaskUpdate", "body": "..."}],
     "routes":   [{"method": "DELETE", "path": "/tasks/x"}]}

Each answer is matched to the operation its method and path reach (a templated segment
matches one non-empty path segment; literal paths win; `x-path-aliases` map extra paths to
documented ones). A request that reaches no operation is checked against the document's
`x-unrouted-responses`. The status must be documented, the content type must be one the
response lists (none: the body must be empty), its required headers present, and a JSON body
must validate against the response's schema ($refs resolved in the document, formats checked).
Each WebSocket message must validate against `components.schemas[schema]`. Each route
(a method and path the frontend resolves) must reach a documented operation.

Prints one JSON object: {"errors": [...], "operations": [{"method", "path"}],
"exercised": ["POST /tasks 200", ...], "unexercised": [...]} and exits 1 when there are errors,
2 when the document or the answers file cannot be read.
"""

import json
import re
import sys

from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate as validate_spec

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
UNROUTED = "* *"


def pointer(doc, ref):
    """The object a local `#/a/b` reference names."""
    if not ref.startswith("#/"):
        raise ValueError(f"only local references are supported: {ref}")
    node = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def deref(doc, node):
    """Follow `$ref` chains of OpenAPI objects (responses, parameters, path items)."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        node = pointer(doc, node["$ref"])
        seen += 1
        if seen > 32:
            raise ValueError("reference loop")
    return node


def segments(path):
    return path.strip("/").split("/") if path.strip("/") else []


def match_template(template, path):
    """Number of templated segments when `path` fits `template`, else None."""
    t, p = segments(template), segments(path)
    slash = (template != "/" and template.endswith("/"), path != "/" and path.endswith("/"))
    if len(t) != len(p) or slash[0] != slash[1]:
        return None
    params = 0
    for ts, ps in zip(t, p):
        if re.fullmatch(r"\{[^}]+\}", ts):
            if not ps:
                return None
            params += 1
        elif ts != ps:
            return None
    return params


def find_path(doc, raw_path):
    """The documented path template a request path reaches (aliases applied), or None."""
    path = raw_path.split("?", 1)[0]
    path = doc.get("x-path-aliases", {}).get(path, path)
    best = None
    for template in doc.get("paths", {}):
        params = match_template(template, path)
        if params is not None and (best is None or params < best[1]):
            best = (template, params)
    return best[0] if best else None


def media_type(content_type):
    return (content_type or "").split(";", 1)[0].strip().lower()


class Checker:
    def __init__(self, doc):
        self.doc = doc
        self.errors = []
        self.exercised = set()

    def operations(self):
        out = []
        for template, item in self.doc.get("paths", {}).items():
            item = deref(self.doc, item)
            for method in METHODS:
                if method in item:
                    out.append((method.upper(), template, item[method]))
        return out

    def documented(self):
        keys = set()
        for method, template, op in self.operations():
            for status in op.get("responses", {}):
                keys.add(f"{method} {template} {status}")
        for status in self.doc.get("x-unrouted-responses", {}):
            keys.add(f"{UNROUTED} {status}")
        return keys

    def schema_errors(self, schema, value):
        # The document is the root resource, so "#/components/..." resolves; the schema's own
        # keywords sit beside the document's keys (none of which is a JSON Schema keyword).
        root = dict(self.doc)
        root.update(schema if isinstance(schema, dict) else {"allOf": [schema]})
        validator = OAS31Validator(root, format_checker=OAS31Validator.FORMAT_CHECKER)
        return [
            f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
            for e in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        ]

    def check_answer(self, answer):
        method = answer["method"].upper()
        if method == "HEAD":
            method = "GET"
        status = str(answer["status"])
        where = f"{answer['method']} {answer['path'][:120]} -> {status}"
        template = find_path(self.doc, answer["path"])
        op = None
        if template is not None:
            op = deref(self.doc, self.doc["paths"][template]).get(method.lower())
        if op is None:
            key, responses = UNROUTED, self.doc.get("x-unrouted-responses", {})
        else:
            key, responses = f"{method} {template}", op.get("responses", {})
        response = responses.get(status) or responses.get(status[0] + "XX") or responses.get("default")
        if response is None:
            self.errors.append(f"{where}: status {status} is not documented for {key}")
            return
        self.exercised.add(f"{key} {status}" if status in responses else f"{key} {status[0]}XX")
        response = deref(self.doc, response)
        headers = {k.lower(): v for k, v in (answer.get("headers") or {}).items()}
        for name, header in (response.get("headers") or {}).items():
            header = deref(self.doc, header)
            if header.get("required") and name.lower() not in headers:
                self.errors.append(f"{where}: required header {name} is missing")
            elif name.lower() in headers and "schema" in header:
                for e in self.schema_errors(header["schema"], headers[name.lower()]):
                    self.errors.append(f"{where}: header {name}: {e}")
        content = response.get("content") or {}
        body = answer.get("body") or ""
        if not content:
            if body.strip():
                self.errors.append(f"{where}: documented without a body, got {body[:200]!r}")
            return
        mt = media_type(answer.get("content_type"))
        if mt not in content:
            self.errors.append(f"{where}: content type {answer.get('content_type')!r} is not one of {sorted(content)}")
            return
        schema = content[mt].get("schema")
        if schema is None:
            return
        if mt == "application/json" or mt.endswith("+json"):
            try:
                value = json.loads(body)
            except ValueError as e:
                self.errors.append(f"{where}: body is not JSON ({e}): {body[:200]!r}")
                return
        else:
            value = body
        for e in self.schema_errors(schema, value):
            self.errors.append(f"{where}: {e} (body {body[:300]!r})")

    def check_message(self, message):
        name = message["schema"]
        schemas = self.doc.get("components", {}).get("schemas", {})
        if name not in schemas:
            self.errors.append(f"WebSocket message: no schema {name} in components.schemas")
            return
        try:
            value = json.loads(message["body"])
        except ValueError as e:
            self.errors.append(f"WebSocket message ({name}) is not JSON ({e}): {message['body'][:200]!r}")
            return
        for e in self.schema_errors({"$ref": f"#/components/schemas/{name}"}, value):
            self.errors.append(f"WebSocket message ({name}): {e} (body {message['body'][:300]!r})")

    def check_route(self, route):
        method, path = route["method"].upper(), route["path"]
        template = find_path(self.doc, path)
        item = deref(self.doc, self.doc["paths"][template]) if template else {}
        if method.lower() not in item:
            self.errors.append(f"the frontend routes {method} {path}, which the document does not describe")


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="utf-8") as f:
            doc = json.load(f)
        data = {}
        if len(argv) == 3:
            with open(argv[2], encoding="utf-8") as f:
                data = json.load(f)
    except (OSError, ValueError) as e:
        print(json.dumps({"errors": [f"cannot read input: {e}"]}))
        return 2
    checker = Checker(doc)
    try:
        validate_spec(doc)
    except Exception as e:  # the validator raises several exception types
        checker.errors.append(f"document is not valid OpenAPI: {type(e).__name__}: {e}")
    for answer in data.get("answers", []):
        try:
            checker.check_answer(answer)
        except (KeyError, ValueError, TypeError) as e:
            checker.errors.append(f"answer {answer!r:.200}: cannot check: {e}")
    for message in data.get("messages", []):
        checker.check_message(message)
    for route in data.get("routes", []):
        checker.check_route(route)
    documented = checker.documented()
    print(
        json.dumps(
            {
                "errors": checker.errors,
                "operations": [{"method": m, "path": t} for m, t, _ in checker.operations()],
                "exercised": sorted(checker.exercised),
                "unexercised": sorted(documented - checker.exercised),
            },
            indent=1,
        )
    )
    return 1 if checker.errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
