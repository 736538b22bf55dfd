"""schemathesis checks the running server against the /openapi.json it serves: every response's
status, content type, headers and body must be what the document promises, no 5xx, negative
inputs refused where a schema can tell. Bounded: a fixed seed, a few examples per operation and a
time budget.

Two checks are left out, on purpose: negative_data_rejection and positive_data_acceptance assume
the body's JSON schema decides whether a request is valid. /v1/detect takes image bytes, whose
validity only the decoder can tell: schemathesis's "object instead of string" is still bytes, and
an empty raw body is schema-valid yet no image. The Swift integration tests assert what the server
does with both (a per-image error in a 200; a 400 for an empty body)."""
import subprocess

import pytest
from serving import ARTIFACTS, Server

RUN = ["schemathesis", "run", "--checks", "all", "--exclude-checks", "negative_data_rejection,positive_data_acceptance", "--max-examples", "40", "--max-time", "60", "--seed", "20261202",
       "--workers", "1", "--generation-database", "none", "--request-timeout", "30", "--no-color",
       "--suppress-health-check", "too_slow"]


@pytest.mark.parametrize("keyed", [False, True], ids=["open", "api-key"])
def test_the_running_server_keeps_its_openapi_contract(head, keyed):
    options, env, auth = [], None, []
    if keyed:
        options, env, auth = ["--api-key-env", "E2E_KEY"], {"E2E_KEY": "contract-key"}, ["-H", "Authorization: Bearer contract-key"]
    with Server(head, *options, env=env) as server:
        report = ARTIFACTS / f"schemathesis-{'api-key' if keyed else 'open'}.xml"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        run = subprocess.run(RUN + auth + ["--report", "junit", "--report-junit-path", str(report), server.base + "/openapi.json"],
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
