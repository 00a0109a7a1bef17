#!/usr/bin/env python3
"""Validates a FHIR R4 Bundle with fhir.resources 6.4 (FHIR 4.0.1) and prints a JSON summary.
Usage: validate_fhir.py FILE"""
import json
import sys

import fhir.resources
from fhir.resources.bundle import Bundle

assert fhir.resources.__fhir_version__ == "4.0.1", fhir.resources.__fhir_version__
bundle = Bundle.parse_file(sys.argv[1])
resources = [e.resource for e in bundle.entry]
report = next(r for r in resources if r.resource_type == "DiagnosticReport")
# fhir.resources checks types, cardinalities and unknown elements, not the codes of required bindings:
# check the ones this export uses.
REPORT_STATUS = {"registered", "partial", "preliminary", "final", "amended", "corrected", "appended",
                 "cancelled", "entered-in-error", "unknown"}
OBSERVATION_STATUS = {"registered", "preliminary", "final", "amended", "corrected", "cancelled",
                      "entered-in-error", "unknown"}
GENDER = {"male", "female", "other", "unknown"}
assert report.status in REPORT_STATUS, report.status
for r in resources:
    if r.resource_type == "Observation":
        assert r.status in OBSERVATION_STATUS, r.status
    if r.resource_type == "Patient" and r.gender is not None:
        assert r.gender in GENDER, r.gender
ids = {f"{r.resource_type}/{r.id}" for r in resources}
for ref in report.result:
    assert ref.reference in ids, f"dangling reference {ref.reference}"

quantities = [
    [float(c.valueQuantity.value), c.valueQuantity.code, c.valueQuantity.system]
    for r in resources if r.resource_type == "Observation" for c in (r.component or [])
]
print(json.dumps({
    "resource_types": [r.resource_type for r in resources],
    "status": report.status,
    "conclusion": report.conclusion,
    "results": [ref.reference for ref in report.result],
    "quantities": quantities,
}, ensure_ascii=False))
