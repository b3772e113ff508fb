#!/usr/bin/env python3
"""Cross-checks a TensorBoard event file written by GradFlow with an independent decoder.

Verifies the TFRecord framing (both masked CRC-32Cs of every record, computed here bit by bit) and
parses every record with python3-protobuf (Debian: apt-get install python3-protobuf) against message
types declared from TensorFlow's event.proto / summary.proto field numbers. Prints each event; exits
non-zero on any error.

    /usr/bin/python3 tools/check_tfevents.py runs/mlp/events.out.tfevents.*
"""
import struct
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto


def _crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def _masked(data: bytes) -> int:
    crc = _crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _message_types():
    # proto2 keeps field presence, so a re-encoded Event must equal the bytes GradFlow wrote.
    fdp = descriptor_pb2.FileDescriptorProto(name="gradflow_check_event.proto", package="gradflowcheck", syntax="proto2")

    def message(name, fields):
        m = fdp.message_type.add(name=name)
        for fname, number, ftype, label, type_name in fields:
            f = m.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = ".gradflowcheck." + type_name
            if label == F.LABEL_REPEATED and ftype == F.TYPE_DOUBLE:
                f.options.packed = True

    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    message("HistogramProto", [("min", 1, F.TYPE_DOUBLE, opt, None), ("max", 2, F.TYPE_DOUBLE, opt, None),
                               ("num", 3, F.TYPE_DOUBLE, opt, None), ("sum", 4, F.TYPE_DOUBLE, opt, None),
                               ("sum_squares", 5, F.TYPE_DOUBLE, opt, None),
                               ("bucket_limit", 6, F.TYPE_DOUBLE, rep, None), ("bucket", 7, F.TYPE_DOUBLE, rep, None)])
    message("Value", [("tag", 1, F.TYPE_STRING, opt, None), ("simple_value", 2, F.TYPE_FLOAT, opt, None),
                      ("histo", 5, F.TYPE_MESSAGE, opt, "HistogramProto"), ("node_name", 7, F.TYPE_STRING, opt, None)])
    message("Summary", [("value", 1, F.TYPE_MESSAGE, rep, "Value")])
    message("Event", [("wall_time", 1, F.TYPE_DOUBLE, opt, None), ("step", 2, F.TYPE_INT64, opt, None),
                      ("file_version", 3, F.TYPE_STRING, opt, None), ("summary", 5, F.TYPE_MESSAGE, opt, "Summary")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    factory = message_factory.MessageFactory(pool)
    return factory.GetPrototype(pool.FindMessageTypeByName("gradflowcheck.Event"))


def check(path: str) -> int:
    event_type = _message_types()
    data = open(path, "rb").read()
    pos, count = 0, 0
    while pos < len(data):
        if len(data) - pos < 12:
            raise ValueError(f"{path}: truncated record header at byte {pos}")
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        if length_crc != _masked(header):
            raise ValueError(f"{path}: bad length CRC at byte {pos}")
        body = data[pos + 12:pos + 12 + length]
        (data_crc,) = struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])
        if len(body) != length or data_crc != _masked(body):
            raise ValueError(f"{path}: bad data CRC at byte {pos}")
        event = event_type()
        event.ParseFromString(body)
        if event.SerializeToString() != body:
            raise ValueError(f"{path}: record {count} does not re-encode to the same bytes")
        if count == 0 and event.file_version != "brain.Event:2":
            raise ValueError(f"{path}: first record's file_version is {event.file_version!r}")
        for v in event.summary.value:
            if v.HasField("histo"):
                h = v.histo
                if len(h.bucket) != len(h.bucket_limit) or list(h.bucket_limit) != sorted(h.bucket_limit):
                    raise ValueError(f"{path}: step {event.step} {v.tag}: bucket limits not ascending or not one per bucket")
                if abs(sum(h.bucket) - h.num) > 1e-9 * max(1.0, h.num):
                    raise ValueError(f"{path}: step {event.step} {v.tag}: bucket counts sum to {sum(h.bucket)}, num is {h.num}")
                print(f"step {event.step} {v.tag}: histogram num={h.num:g} min={h.min:g} max={h.max:g} buckets={len(h.bucket)}")
            else:
                print(f"step {event.step} {v.tag}: {v.simple_value:g}")
        if event.file_version:
            print(f"file_version {event.file_version} wall_time {event.wall_time:.3f}")
        pos += 16 + length
        count += 1
    print(f"{path}: {count} records OK")
    return count


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for p in sys.argv[1:]:
        check(p)
