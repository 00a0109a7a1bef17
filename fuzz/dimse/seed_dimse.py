"""Seeds for the dimse fuzz target (fuzz/dimse/fuzz_targets/dimse.rs): one file per reader, its first byte
picking it (0 PDU, 1 command set, 2 implicit identifier, 3 explicit identifier). Usage: seed_dimse.py DIR"""
import struct
import sys
from pathlib import Path


def element(number, value):
    return struct.pack("<HHI", 0, number, len(value)) + value


def command_set(field, sop_class, data_set=True):
    body = element(0x0002, sop_class) + element(0x0100, struct.pack("<H", field)) + element(0x0110, b"\x07\x00")
    body += element(0x0800, struct.pack("<H", 0 if data_set else 0x0101))
    return element(0x0000, struct.pack("<I", len(body))) + body


def implicit(group, number, value):
    value += b"\0" if len(value) % 2 else b""
    return struct.pack("<HHI", group, number, len(value)) + value


def explicit(group, number, vr, value):
    value += b" " if len(value) % 2 else b""
    return struct.pack("<HH", group, number) + vr + struct.pack("<H", len(value)) + value


def item(vr_bytes):
    return struct.pack("<HHI", 0xFFFE, 0xE000, len(vr_bytes)) + vr_bytes


def associate_rq():
    def sub(kind, body):
        return struct.pack(">BBH", kind, 0, len(body)) + body
    context = sub(0x30, b"1.2.840.10008.5.1.4.1.2.2.1") + sub(0x40, b"1.2.840.10008.1.2.1")
    body = struct.pack(">HH", 1, 0) + b"MEDGEMMAX       " + b"READING_WS      " + bytes(32)
    body += sub(0x10, b"1.2.840.10008.3.1.1.1")
    body += sub(0x20, struct.pack(">BBBB", 1, 0, 0, 0) + context)
    body += sub(0x50, sub(0x51, struct.pack(">I", 65536)) + sub(0x52, b"2.25.1"))
    return struct.pack(">BBI", 1, 0, len(body)) + body


def p_data(payload):
    pdv = struct.pack(">IBB", len(payload) + 2, 1, 0x03) + payload
    return struct.pack(">BBI", 4, 0, len(pdv)) + pdv


out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
find = command_set(0x0020, b"1.2.840.10008.5.1.4.1.2.2.1\0")
store = command_set(0x0001, b"1.2.840.10008.5.1.4.1.1.1\0") + element(0x1000, b"1.2.3.4\0")
identifier_implicit = implicit(0x0008, 0x0052, b"STUDY") + implicit(0x0010, 0x0010, b"ZHANG*")
identifier_implicit += implicit(0x0020, 0x000D, b"")
identifier_explicit = explicit(0x0008, 0x0005, b"CS", b"ISO_IR 192") + explicit(0x0008, 0x0052, b"CS", b"SERIES")
identifier_explicit += explicit(0x0010, 0x0010, b"PN", "张*".encode())
sequence = explicit(0x0008, 0x0060, b"CS", b"CT")
identifier_explicit += struct.pack("<HH", 0x0008, 0x1110) + b"SQ\0\0" + struct.pack("<I", 0xFFFFFFFF)
identifier_explicit += item(sequence) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
seeds = {
    "pdu-associate": b"\0" + associate_rq(),
    "pdu-data": b"\0" + p_data(find),
    "pdu-release": b"\0" + struct.pack(">BBIHH", 5, 0, 4, 0, 0),
    "command-find": b"\1" + find,
    "command-store": b"\1" + store,
    "identifier-implicit": b"\2" + identifier_implicit,
    "identifier-explicit": b"\3" + identifier_explicit,
}
for name, data in seeds.items():
    (out / name).write_bytes(data)
