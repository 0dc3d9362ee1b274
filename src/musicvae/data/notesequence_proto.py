"""Protobuf schemas built at run time, so reading Magenta/TF files needs neither protoc nor TF.

``message_classes`` turns a compact field table into real ``google.protobuf`` message classes via a
``FileDescriptorProto`` registered in a *private* descriptor pool (so it cannot clash with
``note_seq`` or ``tensorflow`` if either is imported in the same process). Only the fields we use
are declared; the parser skips the others, which is how protobuf treats unknown fields anyway.

``NOTE_SEQUENCE`` is the subset of note_seq's ``music.proto`` (package ``magenta``) that maps onto
our :class:`musicvae.data.sequence.NoteSequence`, with the real field numbers.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_TYPES = {
    "double": _F.TYPE_DOUBLE,
    "int32": _F.TYPE_INT32,
    "int64": _F.TYPE_INT64,
    "fixed32": _F.TYPE_FIXED32,
    "bool": _F.TYPE_BOOL,
    "string": _F.TYPE_STRING,
    "bytes": _F.TYPE_BYTES,
}

# Field table: message name -> [(field name, number, type, repeated)]. A type that is not a scalar
# name is a message of this file; "Outer.Inner" declares a nested message.
Schema = dict[str, list[tuple[str, int, str, bool]]]

NOTE_SEQUENCE: Schema = {
    "NoteSequence": [
        ("id", 1, "string", False),
        ("filename", 2, "string", False),
        ("collection_name", 3, "string", False),
        ("ticks_per_quarter", 4, "int32", False),
        ("time_signatures", 5, "NoteSequence.TimeSignature", True),
        ("tempos", 7, "NoteSequence.Tempo", True),
        ("notes", 8, "NoteSequence.Note", True),
        ("total_time", 9, "double", False),
    ],
    "NoteSequence.Note": [
        ("pitch", 1, "int32", False),
        ("velocity", 2, "int32", False),
        ("start_time", 3, "double", False),
        ("end_time", 4, "double", False),
        ("instrument", 7, "int32", False),
        ("program", 8, "int32", False),
        ("is_drum", 9, "bool", False),
    ],
    "NoteSequence.TimeSignature": [
        ("time", 1, "double", False),
        ("numerator", 2, "int32", False),
        ("denominator", 3, "int32", False),
    ],
    "NoteSequence.Tempo": [
        ("time", 1, "double", False),
        ("qpm", 2, "double", False),
    ],
}


def message_classes(file_name: str, package: str, schema: Schema) -> dict[str, Any]:
    """Build message classes (proto3) for ``schema``; returns {"Outer.Inner": class, ...}."""
    fdp = descriptor_pb2.FileDescriptorProto(name=file_name, package=package, syntax="proto3")
    protos: dict[str, descriptor_pb2.DescriptorProto] = {}
    # Parents sort before their children ("A" < "A.B"), so each parent exists when needed.
    for full in sorted(schema):
        parent, _, short = full.rpartition(".")
        msg = protos[parent].nested_type.add() if parent else fdp.message_type.add()
        msg.name = short
        protos[full] = msg
        for name, number, typ, repeated in schema[full]:
            field = msg.field.add(name=name, number=number, json_name=name)
            field.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
            if typ in _TYPES:
                field.type = _TYPES[typ]
            else:
                field.type = _F.TYPE_MESSAGE
                field.type_name = f".{package}.{typ}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {
        full: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.{full}"))
        for full in schema
    }


@cache
def note_sequence_class() -> Any:
    """The ``magenta.NoteSequence`` message class (subset of fields, wire-compatible)."""
    return message_classes("musicvae_music.proto", "magenta", NOTE_SEQUENCE)["NoteSequence"]
