#!/usr/bin/env python3
"""Parses an HL7 v2.5 message with hl7apy at STRICT validation level and validates it; prints a JSON
summary (segment names and every OBX as [value type, code, sub-id, value, units]) for the Rust test to
check. Usage: validate_hl7.py FILE"""
import json
import sys

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

text = open(sys.argv[1], encoding="utf-8", newline="").read()  # keep the CR segment ends
message = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
assert message.validate(), "hl7apy STRICT validation failed"


def segments(element):
    for child in element.children:
        if child.classname == "Segment":
            yield child
        else:
            yield from segments(child)


# hl7apy drops segments it cannot place and does not check number formats: check both here.
text_segments = text.strip("\r").split("\r")
parsed = [s.name for s in segments(message)]
assert parsed == [s.split("|")[0] for s in text_segments], f"parsed {parsed}, sent {text_segments}"
obx = []
for segment in text.strip("\r").split("\r"):
    fields = segment.split("|")
    if fields[0] == "OBX":
        if fields[2] == "NM":
            float(fields[5])  # NM must be a number
        obx.append([fields[2], fields[3].split("^")[0], fields[4], fields[5], fields[6]])
patient_result = message.oru_r01_patient_result
order = patient_result.oru_r01_order_observation
values = [o.obx.obx_5.value for o in order.oru_r01_observation]
print(json.dumps({
    "segments": [s.split("|")[0] for s in text.strip("\r").split("\r")],
    "charset": message.msh.msh_18.value,
    "message_type": message.msh.msh_9.value,
    "obx": obx,
    "parsed_obx_values": values,
}, ensure_ascii=False))
