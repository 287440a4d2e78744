#!/usr/bin/python3
"""dcmcrypt against a real PACS: Debian's Orthanc with its DICOMweb plugin, end to end.

  1. encrypt sample-data/study-tree with `dcmencrypt --recurse` (a fixed test key, mode 0600)
     and a few single images of sample-data/dicom (native, JPEG-LS, J2K, RLE, RGB, multi-frame);
  2. control: each encrypted object, decrypted straight from disk, is its original (as in 6);
  3. start a private Orthanc (the test owns it): config, storage and index in a temporary
     directory, HTTP and DICOM ports picked free at run time, no authentication, the DICOMweb
     plugin loaded, our AE (DCMCTEST at 127.0.0.1) the only modality it serves; stopped at the
     end whatever happens (its process group: SIGTERM, then SIGKILL);
  4. store the encrypted objects in Orthanc by C-STORE (DCMTK's storescu) and some by STOW-RS;
  5. fetch every one back three ways: C-GET (getscu; by study for the tree, by SOP Instance UID
     for the single images), REST (GET /instances/{id}/file) and WADO-RS (multipart/related,
     transfer-syntax=*, parsed here); `info` lines say what came back changed;
  6. dcmdecrypt every fetched object: it must give back the original: every attribute outside
     group 0002 (group lengths aside) with its VR at every depth, private ones and trailing
     padding included, and every pixel value (pydicom, or DCMTK's decoders or GDCM's `gdcmconv
     --raw` first where pydicom has no decoder; an object written in another transfer syntax than
     the original is compared with the original made native, as the other tests do);
  7. Orthanc's /anonymize (its default drops private tags, ours among them): dcmdecrypt exits 3,
     writes nothing, and says that our private block was removed;
  8. have Orthanc transcode every stored object that has pixel data, keeping its UIDs (the MAC
     binds them; /modify with Keep and Force): explicit VR little endian, JPEG lossless SV1, RLE,
     JPEG 2000 lossless, JPEG-LS lossless; each must decrypt to the original as in 6. A transfer
     syntax Orthanc refuses is reported as SKIP. A copy that is not lossless (Orthanc's output
     does not decode, or to other stored words than it was given, or has attributes changed that
     no encoder touches) is reported as SKIP, and dcmdecrypt must then refuse it (exit 3, nothing
     written) or give back the original, every pixel value and every attribute but the damaged
     ones (damage to an attribute the MAC does not cover passes through). Orthanc 1.10.1's JPEG-LS encoder overruns
     its buffer on noise-like 16-bit data: it damages the codestream or other attribute values
     at random, or crashes (SIGSEGV); JPEG-LS comes last, and after a crash the test starts
     Orthanc again on the same storage and asks once more.

Orthanc 1.10 (Debian bookworm) has no option to bind its listeners to one address: both ports
listen on every interface. RemoteAccessAllowed false makes the HTTP server answer loopback
clients only; the DICOM server serves only DCMCTEST from 127.0.0.1 (DicomCheckModalityHost,
DicomAlwaysAllow* false, DicomCheckCalledAet).

Usage: orthanc_test.py BINDIR SAMPLEDIR (SAMPLEDIR is sample-data, holding dicom/ and study-tree/)
Prints `ok   ...` / `FAIL ...` / `SKIP ...` lines (and `info ...` lines about what Orthanc changed),
exits 1 if anything failed; exits 0 with one SKIP line when Orthanc or its DICOMweb plugin is
not installed (Debian packages orthanc, orthanc-dicomweb).
"""
import atexit, collections, concurrent.futures as cf, glob, io, itertools, json, os, re, shutil, signal
import subprocess, sys, tempfile, threading, time, urllib.error, urllib.request, uuid, warnings

ORTHANC = os.environ.get("DCMC_ORTHANC", "/usr/sbin/Orthanc")
PLUGIN_PLACES = ("/usr/share/orthanc/plugins/libOrthancDicomWeb.so",  # the package's link
                 "/usr/lib/orthanc/libOrthancDicomWeb.so*")           # the library it points to


def find_plugin():
    if os.environ.get("DCMC_ORTHANC_DICOMWEB"):
        return os.environ["DCMC_ORTHANC_DICOMWEB"] if os.path.isfile(os.environ["DCMC_ORTHANC_DICOMWEB"]) else None
    for pattern in PLUGIN_PLACES:
        for f in sorted(glob.glob(pattern)):
            if os.path.isfile(f):
                return f
    return None


if len(sys.argv) != 3:
    sys.exit(__doc__)
PLUGIN = find_plugin()
if not os.access(ORTHANC, os.X_OK):
    print(f"SKIP: {ORTHANC} not found (Debian package orthanc): the PACS test did not run")
    sys.exit(0)
if PLUGIN is None:
    print("SKIP: Orthanc's DICOMweb plugin not found (Debian package orthanc-dicomweb): the PACS test did not run")
    sys.exit(0)

import numpy as np
import pydicom

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e  # noqa: E402 - the shared harness (pydicom settings, key files, element comparison)
from e2e import elements, show_path  # noqa: E402

BIN, SAMPLES = sys.argv[1], sys.argv[2]
ENC, DEC = os.path.join(BIN, "dcmencrypt"), os.path.join(BIN, "dcmdecrypt")
TREE = os.path.join(SAMPLES, "study-tree")
SINGLES = ["pydicom_CT_small_128x128.dcm", "dcm_qa_ts_7_JPEG-LS.dcm", "dcm_qa_ts_9_J2K-lossless.dcm",
           "dcm_qa_ts_4_RLE.dcm", "pydicom_SC_rgb_small_odd_3x3.dcm",
           "pydicom-data_emri_small_enhancedMR_10frames.dcm"]
STOW_SINGLES = {"dcm_qa_ts_7_JPEG-LS.dcm", "pydicom_SC_rgb_small_odd_3x3.dcm",
                "pydicom-data_emri_small_enhancedMR_10frames.dcm"}
# JPEG-LS last: Orthanc 1.10.1 sometimes crashes while encoding noise-like data in it (see one()).
TRANSCODES = [("1.2.840.10008.1.2.1", "explicit VR LE"), ("1.2.840.10008.1.2.4.70", "JPEG lossless SV1"),
              ("1.2.840.10008.1.2.5", "RLE lossless"), ("1.2.840.10008.1.2.4.90", "JPEG 2000 lossless"),
              ("1.2.840.10008.1.2.4.80", "JPEG-LS lossless")]
# Uncompressed pixel data (deflate compresses the data set, not the pixels: pydicom reads it).
NATIVE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"}
OUR_AET, ORTHANC_AET = "DCMCTEST", "ORTHANCTEST"
JOBS = 2
# DCMTK as Debian builds it leaves Nagle's algorithm on unless TCP_NODELAY=1: every DIMSE message
# then waits for a delayed ACK (about 90 ms per stored object instead of 5). Orthanc is DCMTK too.
DCMTK_ENV = {"TCP_NODELAY": "1"}

T = tempfile.mkdtemp(prefix="dcmc-orthanc-")
atexit.register(shutil.rmtree, T, True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # ctest's timeout: still stop Orthanc, clean up
FAILS = PASSES = SKIPS = 0
TALLY = collections.OrderedDict()  # step -> [ok, fail, skip]
LOCK = threading.Lock()
START = time.monotonic()


def _count(kind, step):
    global PASSES, FAILS, SKIPS
    with LOCK:
        t = TALLY.setdefault(step, [0, 0, 0])
        if kind == "ok":
            PASSES += 1
            t[0] += 1
        elif kind == "FAIL":
            FAILS += 1
            t[1] += 1
        else:
            SKIPS += 1
            t[2] += 1


def emit(kind, msg, step="other"):
    _count(kind, step)
    print(f"{kind:<4} {msg}", flush=True)


def check(cond, msg, detail="", step="setup"):
    emit("ok" if cond else "FAIL", msg if cond or not detail else f"{msg}: {detail}", step)
    return cond


def info(msg):
    print(f"info {msg}", flush=True)


def section(title):
    print(f"# {title} ({time.monotonic() - START:.1f} s)", flush=True)


def p(*names):
    return os.path.join(T, *names)


def run(cmd, env=None, timeout=180):
    e = dict(os.environ)
    e.update(env or {})
    r = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e,
                       timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def tail(text, n=300):
    return " ".join(text.split())[-n:]


def read(path, pixels=True):
    return pydicom.dcmread(path, force=True, stop_before_pixels=not pixels)


_uniq = itertools.count()


def scratch(stem):
    return p("scratch", f"{next(_uniq)}-{stem}")


# --- comparing -----------------------------------------------------------------------------------

def ts_of(ds):
    return str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") or "")


def decoders(ts):
    """DCMTK's decoder for the transfer syntax first, then GDCM's."""
    gdcm = ["gdcmconv", "--raw", "-i"]
    if ts.startswith("1.2.840.10008.1.2.4.8"):
        return [["dcmdjpls"], gdcm]
    if ts.startswith("1.2.840.10008.1.2.4.5") or ts.startswith("1.2.840.10008.1.2.4.70"):
        return [["dcmdjpeg"], gdcm]
    if ts == "1.2.840.10008.1.2.5":
        return [["dcmdrle"], gdcm]
    return [gdcm]


def native_copy(path):
    """A native copy of a compressed object, decoded as the other tests do (DCMTK's decoders, then
    GDCM's gdcmconv --raw); None when none decodes it."""
    for dec in decoders(ts_of(read(path, pixels=False))):
        out = scratch("native.dcm")
        cmd = dec + [path, "-o", out] if dec[0] == "gdcmconv" else dec + [path, out]
        if run(cmd)[0] == 0 and os.path.exists(out):
            try:
                ds = read(out)
                if ts_of(ds) in NATIVE:
                    ds.pixel_array  # noqa: B018 - must decode
                    return out
            except Exception:  # noqa: BLE001
                pass
    return None


def pixel_values(ds, path):
    """Pixel values: pydicom (here: native and RLE), else those of a native copy."""
    try:
        return ds.pixel_array
    except Exception:  # noqa: BLE001
        raw = native_copy(path)
        if raw is None:
            raise RuntimeError("neither pydicom nor DCMTK's or GDCM's decoders decode it")
        return read(raw).pixel_array


def decoders_agree(ds, path, enc_path):
    """True when every decoder here (pydicom reads native and RLE; else DCMTK's and GDCM's, each)
    gives exactly the stored words of the encrypted object at enc_path (native), bits above Bits
    Stored included: pydicom's pixel_array sign-extends or ignores those, the MAC does not.
    Orthanc 1.10's JPEG-LS encoder (DCMTK 3.6.7's CharLS) does not keep every word of some
    noise-like 16-bit data: only a re-encoding every decoder reads back word for word is judged."""
    want = bytes(read(enc_path).PixelData)
    outs = [path] if ts_of(ds) in NATIVE else []
    if not outs:
        for dec in decoders(ts_of(ds)):
            out = scratch("agree.dcm")
            cmd = dec + [path, "-o", out] if dec[0] == "gdcmconv" else dec + [path, out]
            if run(cmd)[0] != 0 or not os.path.exists(out):
                return False
            outs.append(out)
    for out in outs:
        got = read(out)
        if ts_of(got) not in NATIVE or bytes(got.PixelData)[:len(want)] != want[:len(bytes(got.PixelData))]:
            return False
    return True


class Original:
    """What an object must come back as: its attributes and pixel values, computed once."""

    def __init__(self, path):
        self.path = path
        ds = read(path)
        self.ts = ts_of(ds)
        self.elements = elements(ds)
        self.has_pixels = "PixelData" in ds
        self.pixels = pixel_values(ds, path) if self.has_pixels else None
        self.pixel_bytes = bytes(ds.PixelData) if self.has_pixels and self.ts in NATIVE else None
        self._native, self._lock = None, threading.Lock()

    def native_elements(self):
        """The attributes of the original made native (the original's own when it is native)."""
        with self._lock:
            if self._native is None:
                raw = native_copy(self.path) if self.has_pixels and self.ts not in NATIVE else None
                self._native = elements(read(raw)) if raw else self.elements
            return self._native


def differences(orig, got_path):
    """How the object at got_path differs from the Original: attributes (outside group 0002, with
    their VR, at every depth), pixel values, and Pixel Data bytes where both are the same native
    transfer syntax. An object written in another transfer syntax than the original is compared,
    as the other tests do, with both made native (a decoder may rewrite Bits Stored or the
    Photometric Interpretation: the J2K sample's codestream says 16 bits where the object says 12)."""
    ds = read(got_path)
    out = []
    want, got = orig.elements, elements(ds)
    if ts_of(ds) != orig.ts and orig.has_pixels:
        want = orig.native_elements()
        if ts_of(ds) not in NATIVE:
            raw = native_copy(got_path)
            got = elements(read(raw)) if raw else got
    for k in sorted(set(want) | set(got), key=str):
        a, b = want.get(k, "absent"), got.get(k, "absent")
        if a != b:
            out.append(f"{show_path(k)}: {str(a)[:70]} -> {str(b)[:70]}")
    if orig.has_pixels != ("PixelData" in ds):
        out.append("Pixel Data present in only one")
    elif orig.has_pixels:
        try:
            px = pixel_values(ds, got_path)
            if px.shape != orig.pixels.shape:
                out.append(f"pixel array shape {orig.pixels.shape} -> {px.shape}")
            elif not np.array_equal(px, orig.pixels):
                out.append(f"pixel values differ ({int(np.count_nonzero(px != orig.pixels))} values)")
        except Exception as ex:  # noqa: BLE001
            out.append(f"pixels do not decode: {ex}"[:200])
        if orig.pixel_bytes is not None and ts_of(ds) == orig.ts and bytes(ds.PixelData) != orig.pixel_bytes:
            out.append("Pixel Data bytes differ")
    return out


def refuses_or_decrypts(obj, path, tag, damaged_paths):
    """For a copy that is known to be damaged: dcmdecrypt exits 3 and writes nothing, or gives back
    the original (every pixel value, every attribute) but for the damaged attributes, which can
    only pass through as they are when they are ones the MAC does not cover; anything else fails."""
    out = scratch(f"{tag}.dec.dcm")
    rc, _, err = run([DEC, "--threads", "1", "--key-file", KEY, path, out])
    if rc == 3 and not os.path.exists(out):
        return "ok", "... and dcmdecrypt refuses that copy (exit 3, nothing written)"
    if rc == 0 and os.path.exists(out):
        d = differences(obj.orig, out)
        passed = [x for x in d if any(x.startswith(dp + ":") for dp in damaged_paths)]
        d = [x for x in d if x not in passed]
        if not d:
            return "ok", ("... and dcmdecrypt still gives back the original exactly" if not passed else
                          "... and dcmdecrypt gives back the original but for what Orthanc damaged outside "
                          f"the MAC, passed through: {'; '.join(passed[:2])}"[:300])
        return "FAIL", f"... dcmdecrypt accepted that copy and wrote a different object: {'; '.join(d[:3])}"
    left = " and wrote an output anyway" if os.path.exists(out) else ""
    return "FAIL", f"... dcmdecrypt of that copy: exit {rc}{left}: {tail(err, 200)}"


def decrypts_to_original(obj, path, tag):
    """dcmdecrypt path; ('ok'|'FAIL', message). --threads 1: the test runs two at once on 2 cores."""
    out = scratch(f"{tag}.dec.dcm")
    rc, _, err = run([DEC, "--threads", "1", "--key-file", KEY, path, out])
    if rc != 0:
        left = " (and wrote an output anyway)" if os.path.exists(out) else ""
        return "FAIL", f"dcmdecrypt exit {rc}{left}: {tail(err, 240)}"
    if not os.path.exists(out):
        return "FAIL", "dcmdecrypt exit 0 but no output"
    try:
        d = differences(obj.orig, out)
    except Exception as ex:  # noqa: BLE001
        d = [f"cannot compare: {ex!r}"[:240]]
    if d:
        return "FAIL", (f"decrypted object differs from the original ({len(d)} difference{'s' if len(d) > 1 else ''}): "
                       + "; ".join(d[:4]))
    return "ok", "decrypts to the original exactly"


# --- Orthanc -------------------------------------------------------------------------------------

class Orthanc:
    def __init__(self):
        self.proc, self.http_port, self.dicom_port = None, None, None
        self.name = f"dcmcrypt-test-{os.getpid()}"
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy for 127.0.0.1
        self.log = p("orthanc", "orthanc.log")
        self.crashes, self._revive_lock = [], threading.Lock()

    def config(self):
        db = p("orthanc", "db")
        os.makedirs(db, exist_ok=True)
        return {
            "Name": self.name,
            "StorageDirectory": db, "IndexDirectory": db, "StorageCompression": False,
            "Plugins": [PLUGIN],
            "HttpServerEnabled": True, "HttpPort": self.http_port,
            "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
            "HttpCompressionEnabled": False, "OrthancExplorerEnabled": False,
            "DicomServerEnabled": True, "DicomAet": ORTHANC_AET, "DicomPort": self.dicom_port,
            "DicomCheckCalledAet": True, "DicomCheckModalityHost": True,
            "DicomAlwaysAllowEcho": False, "DicomAlwaysAllowStore": False, "DicomAlwaysAllowFind": False,
            "DicomAlwaysAllowGet": False, "DicomAlwaysAllowMove": False,
            # Port is only used for C-MOVE targets and C-ECHO/C-STORE by Orthanc: not here.
            "DicomModalities": {"dcmctest": {"AET": OUR_AET, "Host": "127.0.0.1", "Port": 104,
                                             "AllowGet": True, "AllowStore": True, "AllowFind": True}},
            "SaveJobs": False, "ConcurrentJobs": 2, "HttpThreadsCount": 8, "LuaScripts": [],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False,
                         "Host": "127.0.0.1", "Ssl": False},
        }

    def start(self):
        os.makedirs(p("orthanc"), exist_ok=True)
        last = ""
        for attempt in range(3):  # a port taken between picking and binding: pick again
            self.http_port, self.dicom_port = e2e.free_ports(2)
            cfg = p("orthanc", "config.json")
            with open(cfg, "w") as f:
                json.dump(self.config(), f, indent=1)
            logf = open(self.log, "ab")
            env = dict(os.environ)
            env.update(DCMTK_ENV)
            self.proc = subprocess.Popen([ORTHANC, cfg], stdout=logf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env, start_new_session=True)
            logf.close()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.proc.poll() is None:
                st, _, body = self.http("GET", "/system", timeout=2)
                if st == 200:
                    sysinfo = json.loads(body)
                    if sysinfo.get("Name") == self.name and sysinfo.get("DicomPort") == self.dicom_port:
                        return sysinfo
                    last = f"another server answers on port {self.http_port}: {sysinfo.get('Name')!r}"
                    break
                time.sleep(0.2)
            last = last or self.log_tail()
            self.stop()
        raise RuntimeError(f"Orthanc did not start: {last}")

    def log_tail(self, n=600):
        """The end of Orthanc's log, without its warning for each /modify that keeps the UIDs."""
        try:
            with open(self.log, "rb") as f:
                lines = f.read().decode(errors="replace").replace("\0", "").splitlines()
        except OSError:
            return "(no log)"
        return tail("\n".join(l for l in lines if "keeping its original SOPInstanceUID" not in l), n)

    def revive(self):
        """When Orthanc has died: say how, start it again on new ports, same storage. Thread-safe;
        None when it is alive."""
        with self._revive_lock:
            if self.proc is not None and self.proc.poll() is None:
                return None if not self.crashes else self.crashes[-1]
            rc = self.proc.returncode if self.proc is not None else None
            how = f"killed by signal {-rc}" if rc is not None and rc < 0 else f"exit {rc}"
            self.crashes.append(f"Orthanc died ({how}), started again")
            info(f"Orthanc died ({how}); log: ...{self.log_tail(300)}")
            self.stop()
            self.start()
            return self.crashes[-1]

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=20)
            except ProcessLookupError:
                pass
        self.proc = None

    def http(self, method, path, body=None, headers=None, timeout=60):
        """(status, headers, body); status 0 when nothing answered."""
        req = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", data=body,
                                     headers=headers or {}, method=method)
        try:
            with self.opener.open(req, timeout=timeout) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()
        except (urllib.error.URLError, OSError) as e:
            return 0, {}, str(e).encode()

    def json(self, method, path, obj=None):
        st, _, body = self.http(method, path, None if obj is None else json.dumps(obj).encode(),
                                {"Content-Type": "application/json"} if obj is not None else None)
        if st != 200:
            raise RuntimeError(f"{method} {path}: HTTP {st}: {tail(body.decode(errors='replace'), 200)}")
        return json.loads(body)


def http_error(st, body):
    try:
        j = json.loads(body)
        return f"HTTP {st}: {j.get('Details') or j.get('Message')}"
    except Exception:  # noqa: BLE001
        return f"HTTP {st}: {tail(body.decode(errors='replace'), 160)}"


def multipart_parts(body, content_type):
    """The parts of a multipart body: [(headers dict, bytes)], split at the boundary by hand."""
    m = re.search(r'boundary="?([^";]+)"?', content_type or "")
    if not m:
        raise ValueError(f"no boundary in Content-Type {content_type!r}")
    delim = b"--" + m.group(1).strip().encode()
    pos = body.find(delim)
    if pos < 0:
        raise ValueError("boundary not found in the body")
    parts = []
    while True:
        pos += len(delim)
        if body[pos:pos + 2] == b"--":  # the closing delimiter
            return parts
        eol = body.find(b"\r\n", pos)
        if eol < 0:
            raise ValueError("truncated multipart body")
        hstart = eol + 2
        hend = body.find(b"\r\n\r\n", hstart - 2)
        if hend < 0:
            raise ValueError("part without a header end")
        headers = {}
        for line in body[hstart:hend].split(b"\r\n"):
            if b":" in line:
                k, v = line.split(b":", 1)
                headers[k.strip().lower().decode()] = v.strip().decode()
        start = hend + 4
        if "content-length" in headers:
            end = start + int(headers["content-length"])
            if body[end:end + 2 + len(delim)] != b"\r\n" + delim:
                raise ValueError("Content-Length does not end at a boundary")
        else:
            end = body.find(b"\r\n" + delim, start)
            if end < 0:
                raise ValueError("part without a closing boundary")
        parts.append((headers, body[start:end]))
        pos = end + 2


# --- the objects -------------------------------------------------------------------------------

class Obj:
    def __init__(self, name, orig_path, enc_path, route):
        self.name, self.enc, self.route = name, enc_path, route
        self.orig = Original(orig_path)
        ds = read(enc_path, pixels=False)
        self.sop, self.series, self.study = str(ds.SOPInstanceUID), str(ds.SeriesInstanceUID), str(ds.StudyInstanceUID)
        self.sop_class = str(ds.SOPClassUID)
        self.single = name.startswith("dicom/")
        self.id = None            # Orthanc's instance ID
        self.fetched = {}         # route -> path
        self.enc_pixels = None    # the encrypted object's pixel values (lossless check of a transcode)


KEY = e2e.new_key("key")  # fixed per name: CI is deterministic
os.makedirs(p("scratch"))


def encrypt_all():
    section("1. encrypt the study tree (--recurse) and single images")
    objs = []
    out = p("enc-tree")
    rc, o, err = run([ENC, "--key-file", KEY, "--recurse", "-j", str(JOBS), TREE, out], timeout=300)
    check(rc == 0, f"dcmencrypt --recurse sample-data/study-tree (exit {rc})", tail(o + err))
    for root, _, names in os.walk(out):
        for n in sorted(names):
            f = os.path.join(root, n)
            rel = os.path.relpath(f, out)
            try:
                ds = read(f, pixels=False)
            except Exception:  # noqa: BLE001 - not DICOM: nothing for a PACS
                continue
            if "SOPClassUID" not in ds or str(ds.SOPClassUID) == "1.2.840.10008.1.3.10":
                continue  # DICOMDIRs: a file-set's index, not an object a PACS stores
            # Every 4th object of the tree goes by STOW-RS, the others by C-STORE.
            route = "STOW-RS" if len(objs) % 4 == 3 else "C-STORE"
            objs.append(Obj("study-tree/" + rel, os.path.join(TREE, rel), f, route))
    n_px = sum(o.orig.has_pixels for o in objs)
    check(len(objs) >= 40, f"the encrypted tree holds {len(objs)} objects to store ({n_px} with pixel data, "
                           f"{len(objs) - n_px} header-protected without)")
    for name in SINGLES:
        src, dst = os.path.join(SAMPLES, "dicom", name), p("enc-" + name)
        rc, o, err = run([ENC, "--key-file", KEY, src, dst])
        if check(rc == 0, f"dcmencrypt dicom/{name} (exit {rc})", tail(o + err)):
            objs.append(Obj("dicom/" + name, src, dst, "STOW-RS" if name in STOW_SINGLES else "C-STORE"))
    sops = collections.Counter(o.sop for o in objs)
    dup = [s for s, c in sops.items() if c > 1]
    check(not dup, f"{len(objs)} objects, as many SOP Instance UIDs", f"shared: {dup[:3]}")
    for o in objs:
        if o.orig.has_pixels:
            o.enc_pixels = pixel_values(read(o.enc), o.enc)
    return objs


def control(objs):
    section("2. control: the encrypted objects decrypt straight from disk")
    with cf.ThreadPoolExecutor(JOBS) as pool:
        for o, (kind, msg) in zip(objs, pool.map(lambda o: decrypts_to_original(o, o.enc, "control"), objs)):
            emit(kind, f"control  {o.name}: {msg}", "control (no Orthanc)")


def store(orthanc, objs):
    section("4. store: C-STORE (storescu) and STOW-RS")
    cstore = [o for o in objs if o.route == "C-STORE"]
    stow = [o for o in objs if o.route == "STOW-RS"]
    rc, out, err = run(["storescu", "--no-halt", "--required", "-aet", OUR_AET, "-aec", ORTHANC_AET,
                        "127.0.0.1", orthanc.dicom_port] + [o.enc for o in cstore], DCMTK_ENV, timeout=300)
    check(rc == 0, f"storescu: {len(cstore)} objects by C-STORE (exit {rc})", tail(out + err), "store")

    boundary = "dcmcrypt-" + uuid.uuid4().hex
    body = io.BytesIO()
    for o in stow:
        with open(o.enc, "rb") as f:
            body.write(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + f.read() + b"\r\n")
    body.write(f"--{boundary}--\r\n".encode())
    st, _, resp = orthanc.http("POST", "/dicom-web/studies", body.getvalue(), {
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        "Accept": "application/dicom+json"}, timeout=120)
    if check(st == 200, f"STOW-RS: {len(stow)} objects in one POST /dicom-web/studies (HTTP {st})",
             http_error(st, resp), "store"):
        r = json.loads(resp)
        ref = {str(i.get("00081155", {}).get("Value", [""])[0]) for i in r.get("00081199", {}).get("Value", [])}
        failed = r.get("00081198", {}).get("Value", [])
        check(not failed and ref == {o.sop for o in stow},
              "STOW-RS response: every object in Referenced SOP Sequence, Failed SOP Sequence empty",
              f"{len(failed)} failed, {len({o.sop for o in stow} - ref)} not referenced", "store")

    # What Orthanc holds now: SOP Instance UID -> instance ID, and its study/series UIDs.
    instances = orthanc.json("GET", "/instances?expand")
    series = {s["ID"]: s for s in orthanc.json("GET", "/series?expand")}
    studies = {s["ID"]: s for s in orthanc.json("GET", "/studies?expand")}
    held = {}
    for i in instances:
        se = series.get(i["ParentSeries"], {})
        stu = studies.get(se.get("ParentStudy"), {})
        held[i["MainDicomTags"].get("SOPInstanceUID")] = (i["ID"], se.get("MainDicomTags", {}).get("SeriesInstanceUID"),
                                                           stu.get("MainDicomTags", {}).get("StudyInstanceUID"))
    missing, moved = [], []
    for o in objs:
        h = held.get(o.sop)
        if h is None:
            missing.append(o.name)
            continue
        o.id = h[0]
        if (h[1], h[2]) != (o.series, o.study):
            moved.append(o.name)
    check(not missing and not moved and len(held) == len(objs),
          f"Orthanc holds all {len(objs)} objects, under their own study and series UIDs",
          f"{len(held)} held; missing {missing[:3]}; other UIDs {moved[:3]}", "store")
    syntaxes = collections.Counter()
    for o in objs:
        if o.id:
            st, _, b = orthanc.http("GET", f"/instances/{o.id}/metadata/TransferSyntax")
            syntaxes[b.decode() if st == 200 else "?"] += 1
    info(f"transfer syntax as stored by Orthanc: {dict(syntaxes)}")


def fetch(orthanc, objs):
    section("5. fetch back: C-GET (getscu), REST, WADO-RS")
    stored = [o for o in objs if o.id]
    # C-GET: the tree by study, the single images by SOP Instance UID.
    by_study = collections.defaultdict(list)
    for o in stored:
        by_study[o.study].append(o)
    got = {}
    for k, study in enumerate(sorted(by_study)):
        d = p("cget", f"study{k}")
        os.makedirs(d)
        rc, out, err = run(["getscu", "-S", "+B", "-aet", OUR_AET, "-aec", ORTHANC_AET, "-od", d,
                            "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}",
                            "127.0.0.1", orthanc.dicom_port], DCMTK_ENV)
        files = {str(read(f, pixels=False).SOPInstanceUID): f for f in glob.glob(os.path.join(d, "*"))}
        want = {o.sop for o in by_study[study]}
        check(rc == 0 and set(files) == want,
              f"C-GET study {k + 1}/{len(by_study)}: {len(files)} of its {len(want)} objects (exit {rc})",
              tail(out + err), "C-GET")
        got.update(files)
    for o in stored:
        if not o.single and o.sop in got:
            o.fetched["C-GET"] = got[o.sop]
    for o in (o for o in stored if o.single):
        d = p("cget", "sop-" + o.sop)
        os.makedirs(d)
        rc, out, err = run(["getscu", "-S", "+B", "-aet", OUR_AET, "-aec", ORTHANC_AET, "-od", d,
                            "-k", "QueryRetrieveLevel=IMAGE", "-k", f"StudyInstanceUID={o.study}",
                            "-k", f"SeriesInstanceUID={o.series}", "-k", f"SOPInstanceUID={o.sop}",
                            "127.0.0.1", orthanc.dicom_port], DCMTK_ENV)
        files = glob.glob(os.path.join(d, "*"))
        if check(rc == 0 and len(files) == 1, f"C-GET by SOP Instance UID: {o.name} (exit {rc})",
                 f"{len(files)} files: {tail(out + err)}", "C-GET"):
            o.fetched["C-GET"] = files[0]

    def rest(o):
        st, _, b = orthanc.http("GET", f"/instances/{o.id}/file")
        if st != 200:
            return f"REST GET /instances/{{id}}/file: {http_error(st, b)}"
        path = p("rest", o.sop + ".dcm")
        with open(path, "wb") as f:
            f.write(b)
        o.fetched["REST"] = path
        return None

    def wado(o):
        st, h, b = orthanc.http("GET", f"/dicom-web/studies/{o.study}/series/{o.series}/instances/{o.sop}",
                                headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'})
        if st != 200:
            return f"WADO-RS: {http_error(st, b)}"
        try:
            parts = multipart_parts(b, h.get("Content-Type"))
        except ValueError as ex:
            return f"WADO-RS: unreadable multipart body: {ex}"
        if len(parts) != 1 or not parts[0][0].get("content-type", "").startswith("application/dicom"):
            return f"WADO-RS: {len(parts)} parts, types {[x[0].get('content-type') for x in parts]}"
        path = p("wado", o.sop + ".dcm")
        with open(path, "wb") as f:
            f.write(parts[0][1])
        o.fetched["WADO-RS"] = path
        return None

    os.makedirs(p("rest"))
    os.makedirs(p("wado"))
    for route, fn in (("REST", rest), ("WADO-RS", wado)):
        with cf.ThreadPoolExecutor(JOBS) as pool:
            errors = [(o, e) for o, e in zip(stored, pool.map(fn, stored)) if e]
        check(not errors, f"{route}: fetched all {len(stored)} objects",
              f"{len(errors)} failed, e.g. {errors[0][0].name}: {errors[0][1]}" if errors else "", route)
    describe_changes(objs)


def changed_attributes(a, b):
    """['(gggg,eeee) VR: absent|value changed|VR->VR', ...] between two elements() maps."""
    out = []
    for k in sorted(set(a) | set(b), key=str):
        if a.get(k) != b.get(k):
            va, vb = a.get(k, ("absent",))[0], b.get(k, ("absent",))[0]
            out.append(f"{show_path(k)} {va}: value changed" if va == vb else f"{show_path(k)} {va}->{vb}")
    return out


def describe_changes(objs):
    """info lines: what came back differs from what was stored how (not judged: dcmdecrypt is)."""
    for route in ("C-GET", "REST", "WADO-RS"):
        for sent in ("C-STORE", "STOW-RS"):
            kinds, n, same_bytes = collections.Counter(), 0, 0
            for o in objs:
                f = o.fetched.get(route)
                if o.route != sent or not f:
                    continue
                n += 1
                with open(o.enc, "rb") as a, open(f, "rb") as b:
                    same_bytes += a.read() == b.read()
                a, b = read(o.enc), read(f)
                ea, eb = elements(a), elements(b)
                kinds.update(changed_attributes(ea, eb))
                ma = {e.tag: (e.VR, str(e.value)) for e in a.file_meta}
                mb = {e.tag: (e.VR, str(e.value)) for e in b.file_meta}
                for t in sorted(set(ma) | set(mb)):
                    if ma.get(t) != mb.get(t) and t not in (0x00020000,):
                        kinds[f"meta ({t.group:04x},{t.element:04x}) {ma.get(t, ('absent', ''))[1][:24]!r}->"
                              f"{mb.get(t, ('absent', ''))[1][:24]!r}" if t in (0x00020010, 0x00020016, 0x00020013)
                              else f"meta ({t.group:04x},{t.element:04x}) changed"] += 1
                if ("PixelData" in a) and ("PixelData" in b) and a.PixelData != b.PixelData:
                    kinds["Pixel Data bytes"] += 1
                if a.preamble != b.preamble:
                    kinds["preamble"] += 1
            if n:
                what = "; ".join(f"{k} ({c})" for k, c in sorted(kinds.items())) or "nothing"
                info(f"stored by {sent}, fetched by {route}: {same_bytes} of {n} byte for byte as sent; "
                     f"changes: {what}")


# What a lossless transcoder legitimately rewrites besides group 0002 and Pixel Data: DCMTK's
# encoders (Orthanc's) append to Derivation Description. Any other change means the copy was
# damaged: Orthanc 1.10.1's JPEG-LS encoder (DCMTK 3.6.7's CharLS) overruns its output buffer
# on noise-like 16-bit data whose codestream is larger than the raw frame, and the bytes it
# overwrites belong to other attribute values (seen: our private block, Image Comments,
# De-identification Method) or to the codestream, or Orthanc crashes.
TRANSCODER_EDITS = ("(0008,2111)",)


def transcode_all(orthanc, objs):
    section("8. Orthanc transcodes the stored encrypted objects (UIDs kept); dcmdecrypt them")
    targets = [o for o in objs if o.id and o.orig.has_pixels]

    def one(o, ts, ts_name):
        body = json.dumps({"Transcode": ts, "Force": True,
                           "Keep": ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"]}).encode()
        for attempt in (1, 2):
            st, _, b = orthanc.http("POST", f"/instances/{o.id}/modify", body,
                                    {"Content-Type": "application/json"}, timeout=120)
            if st != 0:
                break
            # Nothing answered: Orthanc 1.10.1 crashes (SIGSEGV) now and then while it encodes
            # noise-like 16-bit data as JPEG-LS. Start it again (same storage) and ask once more.
            crash = orthanc.revive()
            if attempt == 2 or crash is None:
                return "crashed", f"Orthanc did not answer ({b.decode(errors='replace')[:80]}); {crash or 'it still runs'}"
        if st != 200:
            return "refused", http_error(st, b)
        path = scratch(f"tc-{ts}.dcm")
        with open(path, "wb") as f:
            f.write(b)
        res = []
        ds = read(path)
        stored_el, got_el = elements(read(o.enc)), elements(ds)
        changes = changed_attributes(stored_el, got_el)
        damaged_paths = [show_path(k) for k in set(stored_el) | set(got_el)
                         if stored_el.get(k) != got_el.get(k) and not show_path(k).startswith(TRANSCODER_EDITS)]
        uids = (str(ds.get("SOPInstanceUID")), str(ds.get("SeriesInstanceUID")), str(ds.get("StudyInstanceUID")))
        ok_uids = uids == (o.sop, o.series, o.study)
        res.append(("ok" if ok_uids and ts_of(ds) == ts else "FAIL",
                    f"Orthanc's output is {ts_name} with the stored UIDs" if ok_uids and ts_of(ds) == ts else
                    f"Orthanc's output: transfer syntax {ts_of(ds)}, UIDs kept: {ok_uids}"))
        if not ok_uids:
            return "done", res, changes
        damaged = [c for c in changes if not c.startswith(TRANSCODER_EDITS)]
        try:
            lossless = decoders_agree(ds, path, o.enc)
            why = "" if lossless else "changed the stored words (as DCMTK's or GDCM's decoder reads them)"
        except Exception as ex:  # noqa: BLE001
            why = f"does not decode here ({ex})"[:160]
        if damaged:
            why = (why + "; " if why else "") + f"changed attributes no encoder touches: {', '.join(damaged[:3])}"
        if why:
            # Not a lossless copy of what was stored: dcmdecrypt must refuse it (exit 3, nothing
            # written) or, if what changed is not what it decrypts, still give back the original.
            return "done", res + [("SKIP", f"Orthanc's {ts_name} output {why}: not a lossless copy"),
                                  refuses_or_decrypts(o, path, f"tc-{ts}", damaged_paths)], changes
        return "done", res + [decrypts_to_original(o, path, f"tc-{ts}")], changes

    for ts, ts_name in TRANSCODES:
        step = f"transcode {ts_name}"
        # One request at a time: Orthanc transcodes each in its own HTTP thread, and the CharLS in
        # DCMTK 3.6.7 that it encodes JPEG-LS with is not safe to run in two threads at once
        # (concurrent requests gave outputs that decode differently from one run to the next,
        # and crashes).
        with cf.ThreadPoolExecutor(1) as pool:
            results = list(pool.map(lambda o: one(o, ts, ts_name), targets))
        refused = [(o, r[1]) for o, r in zip(targets, results) if r[0] == "refused"]
        if len(refused) == len(targets):
            emit("SKIP", f"{ts_name} ({ts}): Orthanc refuses it for all {len(targets)} objects "
                         f"({refused[0][1]}): not tested", step)
            continue
        changed = collections.Counter()
        for o, r in zip(targets, results):
            if r[0] == "refused":
                emit("SKIP", f"{ts_name:<18} {o.name}: Orthanc refuses it ({r[1]}): not tested", step)
                continue
            if r[0] == "crashed":
                emit("SKIP", f"{ts_name:<18} {o.name}: {r[1]}: not judged", step)
                continue
            changed.update(r[2])
            for kind, msg in r[1]:
                emit(kind, f"{ts_name:<18} {o.name}: {msg}", step)
        info(f"{ts_name}: attributes Orthanc's output changed from the stored object (besides group 0002 "
             f"and Pixel Data): {'; '.join(f'{k} ({c})' for k, c in sorted(changed.items())) or 'none'}")


def decrypt_fetched(objs):
    section("6. dcmdecrypt what came back from Orthanc")
    for route in ("C-GET", "REST", "WADO-RS"):
        todo = [o for o in objs if route in o.fetched]
        with cf.ThreadPoolExecutor(JOBS) as pool:
            results = list(pool.map(lambda o: decrypts_to_original(o, o.fetched[route], route), todo))
        for o, (kind, msg) in zip(todo, results):
            emit(kind, f"{route:<8} {o.name}: {msg}", f"decrypt after {route}")
        missing = [o.name for o in objs if route not in o.fetched]
        if missing:
            emit("FAIL", f"{route}: {len(missing)} objects not fetched, so not decrypted, e.g. {missing[0]}",
                 f"decrypt after {route}")


def anonymize(orthanc, objs):
    section("7. Orthanc's /anonymize (default: private tags dropped)")
    for o in [o for o in objs if o.single and o.id]:
        st, _, b = orthanc.http("POST", f"/instances/{o.id}/anonymize", b"{}", {"Content-Type": "application/json"})
        if not check(st == 200, f"anonymize {o.name}", http_error(st, b), "anonymize"):
            continue
        path, out = scratch("anon.dcm"), scratch("anon.dec.dcm")
        with open(path, "wb") as f:
            f.write(b)
        ds = read(path, pixels=False)
        ours = [e for e in ds if e.tag.group == 0x0011 and e.tag.element <= 0xFF and "DCMCRYPT" in str(e.value)]
        check(not ours, f"... Orthanc removed our private block (group 0011) from {o.name}",
              "it is still there", "anonymize")
        rc, _, err = run([DEC, "--threads", "1", "--key-file", KEY, path, out])
        check(rc == 3 and not os.path.exists(out),
              f"... dcmdecrypt of the anonymized {o.name}: exit 3, nothing written",
              f"exit {rc}, output {'written' if os.path.exists(out) else 'absent'}: {tail(err, 200)}", "anonymize")
        check("removed" in err.lower(), f"... and its message for {o.name} says our private block was removed",
              f"stderr: {tail(err, 200)!r}", "anonymize")


def main():
    for f in (ENC, DEC):
        if not os.access(f, os.X_OK):
            emit("FAIL", f"{f} not found")
            return 1
    for tool in ("storescu", "getscu", "gdcmconv"):
        if not shutil.which(tool):
            emit("FAIL", f"{tool} not found (Debian packages dcmtk, libgdcm-tools)")
            return 1
    try:
        objs = encrypt_all()
        control(objs)
    except Exception as ex:  # noqa: BLE001
        import traceback
        traceback.print_exc(limit=3)
        emit("FAIL", f"encrypting the inputs: test error {ex!r:.300}")
        return 1
    orthanc = Orthanc()
    try:
        section("3. start Orthanc")
        try:
            sysinfo = orthanc.start()
        except Exception as ex:  # noqa: BLE001
            emit("FAIL", f"start {ORTHANC}: {ex}")
            return 1
        plugins = orthanc.json("GET", "/plugins")
        check("dicom-web" in plugins, f"Orthanc {sysinfo.get('Version')} answers on 127.0.0.1:{orthanc.http_port} "
              f"(DICOM port {orthanc.dicom_port}), DICOMweb plugin loaded from {PLUGIN}", f"plugins: {plugins}")
        for step in (store, fetch, decrypt_fetched, anonymize, transcode_all):
            try:
                step(orthanc, objs) if step is not decrypt_fetched else step(objs)
            except subprocess.TimeoutExpired as ex:
                emit("FAIL", f"{step.__name__}: timed out: {ex.cmd[:3]}")
            except Exception as ex:  # noqa: BLE001 - one broken step must not hide the others
                import traceback
                emit("FAIL", f"{step.__name__}: test error {ex!r:.300}")
                traceback.print_exc(limit=3)
    finally:
        orthanc.stop()
    section("summary")
    for step, (a, b, c) in TALLY.items():
        print(f"     {step:<34} {a:4} ok {b:4} failed {c:4} skipped")
    print(f"{PASSES} passed, {FAILS} failed, {SKIPS} skipped in {time.monotonic() - START:.0f} s")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
