# schemathesis hooks for the API's fuzz test (openapi-fuzz.integration.test.ts): two checks on
# every response, on top of schemathesis' own. Loaded through SCHEMATHESIS_HOOKS.
import json
import os
import re

import schemathesis

# Values that must never come back: the seeded credentials and the API token (set by the test).
SECRETS = [value for value in json.loads(os.environ.get("KEYWARD_FUZZ_SECRETS", "[]")) if value]
CODE = re.compile(r"^[A-Z][A-Z0-9_]*$")


# The only 5xx answers the API gives by design: the target or sidecar cannot do this (501).
DOCUMENTED_501_CODES = {"UNSUPPORTED_CAPABILITY", "ROTATION_NOT_SUPPORTED"}


@schemathesis.check
def error_body_shape(ctx, response, case):
    """Every 4xx and 5xx answer is `{"error": {"code", "message"}}`: an upper-case code and a message."""
    if response.status_code < 400:
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(f"{response.status_code} answer is not JSON: {response.content[:200]!r}")
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        raise AssertionError(f"{response.status_code} answer has no error object: {body!r}"[:400])
    code, message = error.get("code"), error.get("message")
    if not isinstance(code, str) or not CODE.match(code):
        raise AssertionError(f"{response.status_code} answer has no upper-case error code: {error!r}"[:400])
    if not isinstance(message, str) or not message.strip():
        raise AssertionError(f"{response.status_code} answer has no message: {error!r}"[:400])
    return True


@schemathesis.check
def server_errors_are_documented(ctx, response, case):
    """A 501 (the one 5xx schemathesis.toml lets through) only where declared, and only for "cannot do this"."""
    if response.status_code != 501:
        return None
    declared = case.operation.definition.raw.get("responses", {})
    if "501" not in declared:
        raise AssertionError(f"501 from {case.operation.label}, which does not declare it")
    try:
        code = json.loads(response.content)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = None
    if code not in DOCUMENTED_501_CODES:
        raise AssertionError(f"501 with code {code!r}; a 501 means {sorted(DOCUMENTED_501_CODES)}")
    return True


@schemathesis.check
def no_secret_in_response(ctx, response, case):
    """No seeded credential nor the API token in any header or body, whatever the status."""
    text = response.content.decode("utf-8", "replace")
    headers = "\n".join(f"{name}: {value}" for name, values in response.headers.items() for value in values)
    for index, secret in enumerate(SECRETS):
        if secret in text or secret in headers:
            # Never print the value itself: the report is a log too.
            raise AssertionError(f"the response holds seeded secret #{index}")
    return True
