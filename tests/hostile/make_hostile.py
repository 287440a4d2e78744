#!/usr/bin/python3
"""Deeply nested objects: DCMTK 3.6.7 reads sequences and items recursively with no limit, so
these overflow the stack of a tool that loads them (SIGSEGV) unless the nesting is measured first
(dicom/prescan.cc). Written byte by byte with the standard library only: no DICOM toolkit would
write them.

    make_hostile.py OUTDIR

writes into OUTDIR:
    nested-10000.dcm           preamble + meta group, explicit VR little endian: a small CT image
                               (8 x 8, 16 bits allocated, 12 stored) whose data set holds 10,000
                               nested undefined-length sequences before its 128 bytes of Pixel Data
    nested-10000-implicit.dcm  the same in implicit VR little endian
    nested-deflated.dcm        deflated explicit VR little endian, 100,000 levels: a few KB on
                               disk, 3.6 MB inflated
"""
import os
import struct
import sys
import zlib

EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
INSTANCE = "1.2.826.0.1.3680043.10.1234.99"
IMPLEMENTATION = "1.2.826.0.1.3680043.10.1234.100"
UNDEFINED = 0xFFFFFFFF
LONG_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}


def pad(vr, value):
    """Values have even length: UIDs pad with NUL, other strings with a space."""
    if len(value) % 2:
        value += b"\0" if vr in ("UI", "OB") else b" "
    return value


def element(group, elem, vr, value, explicit=True):
    if explicit:
        if vr in LONG_VRS:
            head = struct.pack("<HH2s2xI", group, elem, vr.encode(), len(value))
        else:
            head = struct.pack("<HH2sH", group, elem, vr.encode(), len(value))
    else:
        head = struct.pack("<HHI", group, elem, len(value))
    return head + value


def ui(group, elem, uid, explicit=True):
    return element(group, elem, "UI", pad("UI", uid.encode()), explicit)


def us(group, elem, v, explicit=True):
    return element(group, elem, "US", struct.pack("<H", v), explicit)


def cs(group, elem, text, explicit=True):
    return element(group, elem, "CS", pad("CS", text.encode()), explicit)


def meta(transfer_syntax):
    """Preamble, "DICM" and the meta group (always explicit VR little endian)."""
    body = (element(0x0002, 0x0001, "OB", b"\0\1") + ui(0x0002, 0x0002, CT_IMAGE_STORAGE) +
            ui(0x0002, 0x0003, INSTANCE) + ui(0x0002, 0x0010, transfer_syntax) +
            ui(0x0002, 0x0012, IMPLEMENTATION))
    return b"\0" * 128 + b"DICM" + element(0x0002, 0x0000, "UL", struct.pack("<I", len(body))) + body


def dataset(levels, explicit):
    """The image attributes, `levels` nested undefined-length sequences (Content Sequence in
    each item), then 128 bytes of Pixel Data."""
    attrs = (ui(0x0008, 0x0016, CT_IMAGE_STORAGE, explicit) + ui(0x0008, 0x0018, INSTANCE, explicit) +
             us(0x0028, 0x0002, 1, explicit) + cs(0x0028, 0x0004, "MONOCHROME2", explicit) +
             us(0x0028, 0x0010, 8, explicit) + us(0x0028, 0x0011, 8, explicit) +
             us(0x0028, 0x0100, 16, explicit) + us(0x0028, 0x0101, 12, explicit) +
             us(0x0028, 0x0102, 11, explicit) + us(0x0028, 0x0103, 0, explicit))
    if explicit:
        open_sq = struct.pack("<HH2s2xI", 0x0040, 0xA730, b"SQ", UNDEFINED)
    else:
        open_sq = struct.pack("<HHI", 0x0040, 0xA730, UNDEFINED)
    open_item = struct.pack("<HHI", 0xFFFE, 0xE000, UNDEFINED)
    close = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    nest = (open_sq + open_item) * levels + close * levels
    pixels = bytes((i * 37) & 0xFF if i % 2 == 0 else (i // 2) & 0x0F for i in range(128))
    return attrs + nest + element(0x7FE0, 0x0010, "OW", pixels, explicit)


def raw_deflate(data):
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    return z.compress(data) + z.flush()


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_hostile.py OUTDIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    files = {
        "nested-10000.dcm": meta(EXPLICIT_LE) + dataset(10000, True),
        "nested-10000-implicit.dcm": meta(IMPLICIT_LE) + dataset(10000, False),
        "nested-deflated.dcm": meta(DEFLATED) + raw_deflate(dataset(100000, True)),
    }
    for name, data in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
