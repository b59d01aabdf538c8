"""Reads the JUnit reports of `make fuzz` and decides the run.

A failed check (a 5xx, an undocumented status or content type, a body
off its schema) is a finding, and so is a network error (a request that
hung or broke the connection), and so is a family of which nothing was
tested (its document could not be loaded). An error inside schemathesis itself (its
generator failing, as CPython 3.11 does on deep schemas) is reported but is
not a finding about the service.
"""

import sys
import xml.etree.ElementTree as ET

SERVICE_ERRORS = ("Network Error", "timed out", "Connection")

findings, tool_errors = [], []
for path in sys.argv[1:]:
    cases = list(ET.parse(path).iter("testcase"))
    if not cases:
        # The schema could not be loaded, or nothing was selected.
        findings.append(f"{path}: nothing was tested")
    for case in cases:
        for outcome in case:
            text = f"{outcome.get('message') or ''} {outcome.text or ''}".strip()
            line = f"{path}: {case.get('name')}: {text.splitlines()[0] if text else outcome.tag}"
            if outcome.tag == "failure" or (
                outcome.tag == "error" and any(s in text for s in SERVICE_ERRORS)
            ):
                findings.append(line)
            elif outcome.tag == "error":
                tool_errors.append(line)
for line in tool_errors:
    print(f"schemathesis error (not a finding): {line}")
for line in findings:
    print(f"finding: {line}")
sys.exit(1 if findings else 0)
