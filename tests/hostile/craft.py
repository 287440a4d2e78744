#!/usr/bin/python3
"""Crafted objects for tests/hostile_test.sh: each is a small file (at most 64 KB) that once
crashed a tool, made it allocate gigabytes or spin, or lost data. Written with pydicom (Debian's
python3-pydicom) so that the structure is legal DICOM wherever only the content is hostile.

    craft.py plain OUTDIR            objects made from nothing
    craft.py encrypted ENC OUTDIR    tampered copies of ENC, an object encrypted by dcmencrypt
    craft.py bit1 OUT                a 1-bit multi-frame object with junk after its last frame
"""
import struct
import sys
import zlib
from io import BytesIO

import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (CTImageStorage, DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian,
                         JPEG2000Lossless, RLELossless, SecondaryCaptureImageStorage)

CREATOR = "DCMCRYPT 1"


def image(rows, cols, bits=16, stored=12, frames=None, ts=ExplicitVRLittleEndian,
          sop=CTImageStorage):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop
    meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.10.1234.1"
    meta.TransferSyntaxUID = ts
    ds = FileDataset(None, Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = sop
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.10.1234.2"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.10.1234.3"
    ds.Modality = "CT"
    ds.PatientName = "Hostile^Test"
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, stored, stored - 1
    ds.PixelRepresentation = 0
    if frames is not None:
        ds.NumberOfFrames = frames
    ds.is_little_endian = True
    ds.is_implicit_VR = False
    return ds


def save(ds, path, deflate=False):
    buf = BytesIO()
    ds.save_as(buf, write_like_original=False)
    data = buf.getvalue()
    assert len(data) <= 65536, (path, len(data))
    with open(path, "wb") as f:
        f.write(data)


def plain(out):
    # Declares 65535 x 65535 x 16 bits (8 GiB) and holds 32 KB: was a 8 GiB zero-filled buffer
    # before the length was looked at.
    ds = image(65535, 65535)
    ds.PixelData = bytes(32768)
    save(ds, out + "/declares-8gib-native.dcm")
    # 30000 frames of 512 x 512 in RLE with one tiny fragment: the RLE decoder allocates the
    # whole declared image (15 GiB) before it finds the data missing.
    ds = image(512, 512, frames=30000, ts=RLELossless)
    ds.PixelData = encapsulate([b"\x01\0\0\0@\0\0\0" + bytes(56) + b"\x81\0" * 8])
    ds["PixelData"].VR = "OB"
    save(ds, out + "/declares-15gib-rle.dcm")
    # The same with JPEG 2000 (OpenJPEG).
    ds = image(4096, 4096, frames=1000, ts=JPEG2000Lossless)
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(60)])
    ds["PixelData"].VR = "OB"
    save(ds, out + "/declares-32gib-j2k.dcm")
    # A deflated dataset whose pixel data inflates 1000-fold: 64 MB of zeros from 64 KB.
    ds = image(8192, 8000, bits=8, stored=8, ts=DeflatedExplicitVRLittleEndian)
    ds.PixelData = bytes(8192 * 8000)
    buf = BytesIO()
    ds.save_as(buf, write_like_original=False)
    data = buf.getvalue()
    assert len(data) <= 65536, len(data)
    with open(out + "/deflate-bomb.dcm", "wb") as f:
        f.write(data)
    # A deflated dataset of 2.6 million empty elements, 31 MB inflated from under 64 KB: DCMTK's
    # parser spent about 3 s of CPU over it (the duplicates ignored, the object then encrypted;
    # a fuzzing find, 2026-12, whose 93 KB file took 5-10 s). Now the pre-scan refuses it by
    # its inflated size, as the pixel decoders' limit (--max-expansion) says.
    ds = image(1, 1, bits=8, stored=8, ts=DeflatedExplicitVRLittleEndian)
    ds.PixelData = bytes(2)
    buf = BytesIO()
    ds.save_as(buf, write_like_original=False)
    data = buf.getvalue()
    meta_end = 132 + 12 + struct.unpack_from("<I", data, 132 + 8)[0]  # after (0002,0000)'s group
    body = zlib.decompress(data[meta_end:], -15)
    run = struct.pack("<HH2sHI", 0x0009, 0x1000, b"UN", 0, 0) * 2600000
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = z.compress(run + body) + z.flush()
    assert len(data[:meta_end]) + len(packed) <= 65536, len(packed)
    with open(out + "/deflate-elements.dcm", "wb") as f:
        f.write(data[:meta_end] + packed)
    # Number of Frames far beyond the pixel data.
    ds = image(64, 64, frames=2000000000)
    ds.PixelData = bytes(64 * 64 * 2)
    save(ds, out + "/frames-2e9.dcm")


def block_of(ds):
    for e in range(0x10, 0x100):
        tag = (0x0011 << 16) | e
        if tag in ds and ds[tag].value == CREATOR:
            return e
    raise SystemExit("no dcmcrypt block")


def tamper(enc, out, name, fn):
    ds = pydicom.dcmread(enc)
    b = block_of(ds)
    fn(ds, b)
    ds.save_as(out + "/" + name, write_like_original=True)


def set_header(ds, b, offset, fmt, *values):
    tag = (0x0011 << 16) | (b << 8) | 0x01
    h = bytearray(ds[tag].value)
    struct.pack_into(fmt, h, offset, *values)
    ds[tag].value = bytes(h)


def encrypted(enc, out):
    # Payload length 2^64-1 with an empty payload element: the size wrapped to 0 and back() on an
    # empty vector crashed dcmdecrypt before any key was asked for.
    def huge_empty(ds, b):
        set_header(ds, b, 86, "<Q", 2**64 - 1)
        ds[(0x0011 << 16) | (b << 8) | 0x02].value = b""
    tamper(enc, out, "payload-2e64-empty.dcm", huge_empty)

    def huge_missing(ds, b):
        set_header(ds, b, 86, "<Q", 2**64 - 1)
        del ds[(0x0011 << 16) | (b << 8) | 0x02]
    tamper(enc, out, "payload-2e64-missing.dcm", huge_missing)

    def payload_short(ds, b):
        tag = (0x0011 << 16) | (b << 8) | 0x02
        ds[tag].value = ds[tag].value[:-2]
    tamper(enc, out, "payload-short.dcm", payload_short)

    def no_header(ds, b):
        del ds[(0x0011 << 16) | (b << 8) | 0x01]
    tamper(enc, out, "header-missing.dcm", no_header)

    # The header's geometry (frames) and the dataset's agree, the pixel data is 2 bytes: the
    # frames used to be allocated (and zero-filled) before the pixel data length was checked.
    def frames_huge(ds, b):
        set_header(ds, b, 82, "<I", 30000)
        ds.NumberOfFrames = 30000
        ds.PixelData = ds.PixelData[:2]
    tamper(enc, out, "frames-30000-short.dcm", frames_huge)

    def pixels_short(ds, b):
        ds.PixelData = ds.PixelData[:len(ds.PixelData) // 2]
    tamper(enc, out, "pixels-truncated.dcm", pixels_short)

    def pixels_long(ds, b):
        ds.PixelData = ds.PixelData + b"\x01\x02"
    tamper(enc, out, "pixels-appended.dcm", pixels_long)

    # An expensive scrypt the format allows: N = 2^22, r = 7 (3.5 GiB, just under the old 4 GiB
    # memory cap, so release 0.1 ran it), p = 16 (minutes), all before the key check.
    def scrypt_max(ds, b):
        set_header(ds, b, 28, "<BBBB", 1, 22, 7, 16)
    tamper(enc, out, "scrypt-max.dcm", scrypt_max)


def bit1(out):
    # 3 frames of 3 x 5 one-bit pixels: 45 bits, so bits 5..7 of byte 5 follow the last frame.
    # They are junk here (as old writers leave them) and decryption must give them back.
    ds = image(3, 5, bits=1, stored=1, frames=3, sop=SecondaryCaptureImageStorage)
    ds.Modality = "OT"
    ds.PixelData = bytes([0xA5, 0x3C, 0x0F, 0xF0, 0x5A, 0xE0 | 0x15])
    save(ds, out)
    # ... and one whose (even) pixel data ends with a non-zero pad byte after the frames.
    ds = image(3, 5, bits=8, stored=8, frames=1, sop=SecondaryCaptureImageStorage)
    ds.Modality = "OT"
    ds.PixelData = bytes(range(15)) + b"\x7f"
    save(ds, out.replace(".dcm", "") + "-pad8.dcm")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "plain":
        plain(sys.argv[2])
    elif cmd == "encrypted":
        encrypted(sys.argv[2], sys.argv[3])
    elif cmd == "bit1":
        bit1(sys.argv[2])
    else:
        raise SystemExit(__doc__)
