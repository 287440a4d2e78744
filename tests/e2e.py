#!/usr/bin/python3
"""What the end-to-end tests in Python share (deid_test.py, reencode_test.py, orthanc_test.py):
the tools under test (argv[1] is their directory), a scratch directory removed at exit, ok/FAIL
lines and their count, running the tools, and comparing two objects element by element at every
depth and pixel by pixel with pydicom, software we did not write.
"""
import atexit, hashlib, os, shutil, signal, socket, subprocess, sys, tempfile, warnings

import numpy as np
import pydicom

warnings.filterwarnings("ignore")
try:  # judge values as stored: an odd value in a sample is not the test's business
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    pydicom.config.settings.writing_validation_mode = pydicom.config.IGNORE
except AttributeError:
    pass

BIN = sys.argv[1] if len(sys.argv) > 1 else "build/bin"
ENC, DEC = os.path.join(BIN, "dcmencrypt"), os.path.join(BIN, "dcmdecrypt")
T = tempfile.mkdtemp(prefix="dcmc-e2e-")
atexit.register(shutil.rmtree, T, True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # ctest's timeout: still clean up
COUNT = {"passed": 0, "failed": 0}


def ok(msg):
    COUNT["passed"] += 1
    print(f"ok   {msg}", flush=True)


def bad(msg):
    COUNT["failed"] += 1
    print(f"FAIL {msg}", flush=True)


def skip(msg):
    print(f"SKIP {msg}", flush=True)


def check(cond, msg, detail=""):
    if cond:
        ok(msg)
    else:
        bad(f"{msg}: {detail}" if detail else msg)
    return cond


def p(*names):
    return os.path.join(T, *names)


def run(cmd, env=None, timeout=300):
    e = dict(os.environ)
    e.update(env or {})
    r = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=e, timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def expect(want, name, cmd, env=None):
    """Run cmd; ok when it exits `want`. Returns (rc, stderr)."""
    rc, out, err = run(cmd, env)
    check(rc == want, f"{name} (exit {rc})", f"wanted exit {want}: {(out + err).strip()[-400:]}")
    return rc, err


def free_ports(n):
    """n TCP ports free on 127.0.0.1 now, for a server a test starts (Orthanc, Slurm)."""
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def new_key(name):
    """A key file named `name`: fixed per name (CI is deterministic), mode 0600."""
    path = p(name)
    with open(path, "w") as f:
        f.write(hashlib.sha256(b"dcmcrypt test key " + name.encode()).hexdigest() + "\n")
    os.chmod(path, 0o600)
    return path


def encrypt(src, dst, *extra, key=None):
    return run([ENC, "--key-file", key, *extra, src, dst])


def decrypt(src, dst, key=None, *extra):
    return run([DEC, "--key-file", key, *extra, src, dst])


def read(path):
    return pydicom.dcmread(path, force=True)


def save(ds, path):
    ds.save_as(path, write_like_original=True)
    return path


# --- comparing ---------------------------------------------------------------------------------

def elements(ds, path=()):
    """Every element but Pixel Data and group lengths, at every depth, keyed by its path:
    (VR, value) for a value, ("SQ", number of items) for a sequence."""
    res = {}
    for tag in list(ds.keys()):
        if tag.element == 0 or tag == 0x7FE00010:
            continue
        try:
            el = ds[tag]
        except Exception:  # noqa: BLE001 - a value pydicom will not convert: its raw form
            raw = ds.get_item(tag)
            res[path + (tag,)] = (str(getattr(raw, "VR", "?")), repr(getattr(raw, "value", None)))
            continue
        if el.VR == "SQ":
            res[path + (tag,)] = ("SQ", len(el.value))
            for i, item in enumerate(el.value):
                res.update(elements(item, path + (tag, i)))
        else:
            res[path + (tag,)] = (str(el.VR), repr(el.value))
    return res


def show_path(path):
    return ">".join(str(x) if isinstance(x, int) and not isinstance(x, pydicom.tag.BaseTag)
                    else f"({x.group:04x},{x.element:04x})" for x in path)


# Transfer syntaxes whose Pixel Data bytes are the pixels themselves (deflate inflates on reading).
NATIVE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"}


def pixel_values(path):
    """Pixel values as pydicom decodes them, or after GDCM made the object native where pydicom has
    no decoder (JPEG, JPEG-LS, JPEG 2000 without plugins); None when neither can."""
    try:
        return read(path).pixel_array
    except Exception:  # noqa: BLE001
        raw = p(os.path.basename(path) + ".raw.dcm")  # the scratch directory, never beside the input
        if run(["gdcmconv", "--raw", "-i", path, "-o", raw])[0] != 0:
            return None
        try:
            return read(raw).pixel_array
        except Exception:  # noqa: BLE001
            return None


def differences(orig_path, got_path, meta=True):
    """What differs between two objects: meta (transfer syntax, SOP class and instance), every
    element at every depth (private ones too), pixel values and Pixel Data bytes."""
    a, b = read(orig_path), read(got_path)
    out = []
    if meta:
        for kw, own in (("TransferSyntaxUID", None), ("MediaStorageSOPClassUID", "SOPClassUID"),
                        ("MediaStorageSOPInstanceUID", "SOPInstanceUID")):
            va, vb = str(a.file_meta.get(kw)), str(b.file_meta.get(kw))
            # A meta header that disagreed with its own dataset (pydicom's rtdose sample) may come
            # back agreeing with it: group 0002 describes the file, it is no attribute of the object.
            if va != vb and not (own and va != str(a.get(own)) and vb == str(a.get(own))):
                out.append(f"meta {kw}: {va} -> {vb}")
    ea, eb = elements(a), elements(b)
    for k in sorted(set(ea) | set(eb), key=lambda k: str(k)):
        if ea.get(k) != eb.get(k):
            out.append(f"{show_path(k)}: {str(ea.get(k, 'absent'))[:80]} -> {str(eb.get(k, 'absent'))[:80]}")
    if ("PixelData" in a) != ("PixelData" in b):
        out.append("Pixel Data present in only one")
    elif "PixelData" in a:
        pa, pb = pixel_values(orig_path), pixel_values(got_path)
        if pa is None or pb is None:
            out.append("pixels do not decode (pydicom, or GDCM's gdcmconv --raw)")
        elif pa.shape != pb.shape or not np.array_equal(pa, pb):
            n = int(np.count_nonzero(pa != pb)) if pa.shape == pb.shape else -1
            out.append(f"pixel values differ ({n} values)")
        ts = str(a.file_meta.get("TransferSyntaxUID"))
        if ts == str(b.file_meta.get("TransferSyntaxUID")) and ts in NATIVE and a.PixelData != b.PixelData:
            out.append("Pixel Data bytes differ")
    return out


def check_same(name, orig_path, got_path, meta=True):
    try:
        d = differences(orig_path, got_path, meta)
    except Exception as ex:  # noqa: BLE001
        d = [f"cannot compare: {ex!r:.200}"]
    check(not d, name, f"{len(d)} differences, e.g. " + "; ".join(d[:4]))


def section(title):
    print(f"# {title}", flush=True)


def run_steps(steps, headings=True):
    """Run each (title, function), under its title as a heading unless the steps print their own;
    an exception fails that step only (one broken section must not hide the others). Returns the
    exit status."""
    for f in (ENC, DEC):
        if not os.access(f, os.X_OK):
            bad(f"{f} not found")
            return 1
    for title, step in steps:
        if headings:
            section(title)
        try:
            step()
        except subprocess.TimeoutExpired as ex:
            bad(f"{title}: timed out: {ex.cmd}")
        except Exception as ex:  # noqa: BLE001
            import traceback
            bad(f"{title}: test error {ex!r:.300}")
            traceback.print_exc(limit=3)
    return summary()


def summary():
    """The closing line; the exit status of a test script."""
    print(f"{COUNT['passed']} passed, {COUNT['failed']} failed")
    return 1 if COUNT["failed"] else 0
