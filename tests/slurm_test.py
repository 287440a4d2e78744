#!/usr/bin/python3
"""docs/scaling.md's Slurm job array, run on a real (single-node) Slurm that the test starts.

  1. start a private cluster in a temporary directory: a fresh munge key and munged on its own
     socket; a generated slurm.conf (one node, `localhost`, with this machine's CPUs; partition
     `test`; auth/munge through that socket; ports picked free at run time; both daemons bound to
     127.0.0.1 (CommunicationParameters=NoCtldInAddrAny,NoInAddrAny, checked in /proc/net/tcp);
     no accounting, no cgroups: proctrack/linuxproc, task/affinity); slurmctld -D and slurmd -D;
     wait until sinfo shows the node idle. Everything is stopped at the end whatever happens
     (jobs cancelled, daemons SIGTERM then SIGKILL, then any process still carrying this run's
     tag in its environment, such as a slurmstepd or a job, killed by its PID);
  2. a copy of sample-data/study-tree (with its 8 DICOMDIRs) plus one text file, so that every
     kind of file is there: encrypt.sbatch as in docs/scaling.md (`--array=1-4`, each task `exec
     dcmencrypt --key-file K --recurse -q --report enc-$SLURM_ARRAY_TASK_ID.jsonl --shard
     "$SLURM_ARRAY_TASK_ID/4" SRC DST`), submitted with `sbatch --parsable`, then the DICOMDIR run
     as the docs submit it (`sbatch --dependency=afterany:JID --wrap "dcmencrypt ..."`, here with
     `--wait`, bounded);
  3. checks: every array task COMPLETED with exit code 0 (`scontrol show job`: no accounting
     here, so no sacct), its output file empty (-q prints only errors); each report is non-empty
     and names only the files of its own shard (SHA-256 of the path, docs/batch.md "Shards"); the
     reports are disjoint and together list every file of the source tree once; the shards defer
     exactly the DICOMDIRs; the DICOMDIR job started after the last task had ended, exits 0,
     verifies and skips every other file and writes the 8 DICOMDIRs, and under --cpus-per-task=1
     it ran 1 job x 1 thread (dcmencrypt -v); the encrypted tree has one output per file;
  4. `dcmdecrypt --recurse` of the encrypted tree: exit 0, every file back. A file that is not
     DICOM must be byte-identical; a DICOM object is not (dcmdecrypt(1): the meta header is the
     file's, not the object's), so it must be equal as DICOM: every attribute at every depth and
     every pixel value (e2e.differences, pydicom). A JPEG 2000 original comes back in explicit VR
     little endian (dcmdecrypt(1): DCMTK cannot encode it), as GDCM decodes it (docs/dicom.md):
     it is compared with `gdcmconv --raw` of the original, meta header included. Then
     tests/batch_compare.py (the judge tests/batch_test.sh uses: GDCM, dcmdump, the rebuilt
     DICOMDIRs' references) must find nothing.

GNU parallel: tests/batch_test.sh (ctest `batch`, default suite) already runs the docs' GNU
parallel example (three shards, disjoint and complete, 8 DICOMDIRs deferred, the final run,
decryption judged by batch_compare.py), so it is not repeated here.

Usage: slurm_test.py BINDIR SAMPLEDIR (BINDIR holds dcmencrypt and dcmdecrypt; SAMPLEDIR is
sample-data). Prints `ok   ...` / `FAIL ...` lines and a summary, exits 1 if anything failed; exits
0 with one SKIP line when Slurm or munge is not installed (Debian packages slurm-wlm, munge).
Must run as root (the daemons run as SlurmUser=root); otherwise it SKIPs too.
"""
import atexit, hashlib, json, os, shutil, signal, socket, subprocess, sys, time

if len(sys.argv) != 3:
    sys.exit(__doc__)
SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
TOOLS = {t: shutil.which(t, path=SBIN) for t in
         ("munged", "munge", "unmunge", "slurmctld", "slurmd", "sbatch", "sinfo", "scontrol", "scancel")}
if [t for t, path in TOOLS.items() if path is None]:
    print(f"SKIP: {', '.join(t for t, path in TOOLS.items() if path is None)} not found (Debian packages "
          "slurm-wlm, munge; scripts/install-deps.sh installs them): the Slurm test did not run")
    sys.exit(0)
if os.geteuid() != 0:
    print("SKIP: not root: the private Slurm runs its daemons as SlurmUser=root; the Slurm test did not run")
    sys.exit(0)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e  # noqa: E402 - the shared harness: scratch directory, ok/FAIL lines, key files, comparison
from e2e import check, ok, bad, p  # noqa: E402

SAMPLES = sys.argv[2]
HERE = os.path.dirname(os.path.abspath(__file__))
SHARDS = 4
START = time.monotonic()
# Every process of this run carries the tag (slurmd passes its environment to slurmstepd, sbatch
# the submitter's to the jobs): whatever survives the daemons is found by it and killed by PID.
TAG = "DCMC_SLURM_TEST_RUN"
os.environ[TAG] = e2e.T


def section(title):
    print(f"# {title} ({time.monotonic() - START:.1f} s)", flush=True)


def tail(text, n=400):
    return " ".join(text.split())[-n:]


def read_text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def tagged_pids():
    """PIDs of live processes (not this one) whose environment holds this run's tag."""
    want = f"{TAG}={e2e.T}".encode()
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/environ", "rb") as f:
                if want in f.read().split(b"\0"):
                    out.append(int(d))
        except OSError:
            pass
    return out


def tcp_listeners(pids):
    """{(pid, 'addr:port')} of the TCP sockets the processes listen on (/proc/net/tcp, tcp6)."""
    inodes = {}
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes[target[8:-1]] = pid
        except OSError:
            pass
    out = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in read_text(table).splitlines()[1:]:
            f = line.split()
            if len(f) < 10 or f[3] != "0A" or f[9] not in inodes:  # 0A: LISTEN
                continue
            hexaddr, hexport = f[1].split(":")
            raw = bytes.fromhex(hexaddr)
            if width == 8:
                addr = socket.inet_ntop(socket.AF_INET, raw[::-1])
            else:  # four little-endian 32-bit words
                addr = socket.inet_ntop(socket.AF_INET6, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
            out.add((inodes[f[9]], f"{addr}:{int(hexport, 16)}"))
    return out


class Cluster:
    """munged + slurmctld + slurmd, private to this run, all under DIR."""

    def __init__(self):
        self.dir = p("slurm")
        self.procs = {}
        self.jobs = []
        self.conf = os.path.join(self.dir, "slurm.conf")
        self.sock = os.path.join(self.dir, "munge", "munge.socket")
        self.env = dict(os.environ, SLURM_CONF=self.conf)
        for k in list(self.env):  # a surrounding Slurm job's variables are not ours
            if k.startswith(("SLURM_", "SBATCH_", "SQUEUE_", "SINFO_")) and k != "SLURM_CONF":
                del self.env[k]

    def f(self, *names):
        return os.path.join(self.dir, *names)

    def run(self, cmd, timeout=30, cwd=None):
        try:
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env,
                               timeout=timeout, cwd=cwd)
        except subprocess.TimeoutExpired as ex:
            return 124, "", f"timed out after {timeout} s: {ex.cmd}"
        return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")

    def spawn(self, name, cmd):
        log = open(self.f(f"{name}.out"), "ab")
        self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=self.env, start_new_session=True)
        log.close()

    def logs(self, n=600):
        """The ends of the daemons' logs, for a FAIL line."""
        parts = []
        for name in ("munged.log", "slurmctld.log", "slurmd.log", "munged.out", "slurmctld.out", "slurmd.out"):
            text = read_text(self.f(name))
            if text.strip():
                parts.append(f"[{name}] {tail(text, n)}")
        return " ".join(parts) or "(no logs)"

    def wait_for(self, what, probe, timeout):
        """Poll probe() (true when ready) every 0.2 s; a daemon that died ends the wait at once."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if probe():
                return True
            dead = [n for n, pr in self.procs.items() if pr.poll() is not None]
            if dead:
                raise RuntimeError(f"{what}: {', '.join(f'{n} exited {self.procs[n].returncode}' for n in dead)}; "
                                   f"{self.logs()}")
            time.sleep(0.2)
        raise RuntimeError(f"{what}: not within {timeout} s; {self.logs()}")

    def start_munge(self):
        os.makedirs(self.f("munge"), mode=0o700)
        key = self.f("munge", "munge.key")
        with open(os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400), "wb") as f:
            f.write(os.urandom(1024))
        # -F: stay in the foreground (our child, stopped by us); -f: run although the directories
        # above the temporary one (/tmp) are writable by others.
        self.spawn("munged", [TOOLS["munged"], "-F", "-f", f"--socket={self.sock}", f"--key-file={key}",
                              f"--pid-file={self.f('munge', 'munged.pid')}", f"--log-file={self.f('munged.log')}",
                              f"--seed-file={self.f('munge', 'munged.seed')}", "--num-threads=2"])

        def answers():  # a credential made and decoded through our socket
            try:
                enc = subprocess.run([TOOLS["munge"], "-n", "-S", self.sock], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, timeout=10)
                return enc.returncode == 0 and subprocess.run(
                    [TOOLS["unmunge"], "-S", self.sock], input=enc.stdout, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL, timeout=10).returncode == 0
            except subprocess.TimeoutExpired:
                return False
        self.wait_for("munged answering on its socket", answers, 20)

    def write_conf(self, ctld_port, slurmd_port):
        for d in ("state", "spool"):
            os.makedirs(self.f(d), mode=0o700, exist_ok=True)
        cpus = len(os.sched_getaffinity(0))
        conf = f"""# Written by tests/slurm_test.py: a one-node cluster on 127.0.0.1, private to one test run.
ClusterName=dcmctest
SlurmctldHost=localhost
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.sock}
StateSaveLocation={self.f('state')}
SlurmdSpoolDir={self.f('spool')}
SlurmctldPidFile={self.f('slurmctld.pid')}
SlurmdPidFile={self.f('slurmd.pid')}
SlurmctldLogFile={self.f('slurmctld.log')}
SlurmdLogFile={self.f('slurmd.log')}
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
MpiDefault=none
MailProg=/bin/true
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=600
KillWait=5
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=1024 State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""
        with open(self.conf, "w") as f:
            f.write(conf)
        return cpus

    def node_state(self):
        rc, out, _ = self.run([TOOLS["sinfo"], "-h", "-N", "-o", "%N %t"], timeout=10)
        return out.strip() if rc == 0 else ""

    def start(self):
        os.makedirs(self.dir, mode=0o700)
        self.start_munge()
        last = ""
        for attempt in range(2):  # a port taken between picking and binding: pick again
            ctld_port, slurmd_port = e2e.free_ports(2)
            cpus = self.write_conf(ctld_port, slurmd_port)
            self.spawn("slurmctld", [TOOLS["slurmctld"], "-D", "-i", "-f", self.conf])
            self.spawn("slurmd", [TOOLS["slurmd"], "-D", "-N", "localhost", "-f", self.conf])
            try:
                self.wait_for("node localhost idle in sinfo", lambda: self.node_state() == "localhost idle", 45)
                return ctld_port, slurmd_port, cpus
            except RuntimeError as ex:
                last = str(ex)
                self.stop_slurm()
        raise RuntimeError(last)

    def stop_slurm(self):
        for name in ("slurmd", "slurmctld"):
            pr = self.procs.pop(name, None)
            if pr is None:
                continue
            if pr.poll() is None:
                try:
                    os.killpg(pr.pid, signal.SIGTERM)
                    pr.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(pr.pid, signal.SIGKILL)
                    pr.wait(timeout=15)
                except ProcessLookupError:
                    pass

    def stop(self):
        """Cancel our jobs, stop the daemons, kill whatever of this run is left."""
        if self.jobs and "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            self.run([TOOLS["scancel"], *self.jobs], timeout=10)
        self.stop_slurm()
        pr = self.procs.pop("munged", None)
        if pr is not None and pr.poll() is None:
            pr.terminate()
            try:
                pr.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pr.kill()
                pr.wait(timeout=10)
        left = tagged_pids()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in left:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 5
            while left and time.monotonic() < deadline:
                time.sleep(0.1)
                left = tagged_pids()
            if not left:
                break
        return left


CLUSTER = Cluster()


def stop_cluster():
    left = CLUSTER.stop()
    if left:
        print(f"FAIL processes of this run still alive after SIGKILL: {left}", flush=True)


atexit.register(stop_cluster)  # after e2e's: runs first, before the scratch directory goes


# --- the tree ------------------------------------------------------------------------------------

def tree_files(top):
    """Relative paths of every file below top, links followed (as dcmencrypt walks)."""
    out = set()
    for root, dirs, names in os.walk(top, followlinks=True):
        for n in names:
            out.add(os.path.relpath(os.path.join(root, n), top).replace(os.sep, "/"))
    return out


def is_dicomdir(path):
    try:
        return "DirectoryRecordSequence" in e2e.pydicom.dcmread(path, stop_before_pixels=True)
    except Exception:  # noqa: BLE001 - not DICOM
        return False


def shard_of(rel, n):
    """docs/batch.md, "Shards": the first 8 bytes of SHA-256(rel), big endian, mod N, plus 1."""
    return int.from_bytes(hashlib.sha256(rel.encode()).digest()[:8], "big") % n + 1


def read_report(path):
    """[(path, status, kind, reason)] of a JSON lines report; None when it is missing or broken."""
    rows = []
    try:
        with open(path) as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    rows.append((r["path"], r["status"], r["kind"], r["reason"]))
    except (OSError, ValueError, KeyError):
        return None
    return rows


# --- the test ------------------------------------------------------------------------------------

class State:
    src = dst = dec = key = jobdir = None
    files = set()
    dicomdirs = set()
    array = final = None
    kinds = {}  # path -> kind, as the shards' reports say


S = State()


def prepare():
    S.src, S.dst, S.dec, S.jobdir = p("export"), p("encrypted"), p("restored"), p("jobs")
    shutil.copytree(os.path.join(SAMPLES, "study-tree"), S.src)
    os.makedirs(os.path.join(S.src, "notes"))
    with open(os.path.join(S.src, "notes", "README.txt"), "w") as f:
        f.write("exported by the PACS on 2026-11-25\n")
    os.makedirs(S.jobdir)
    S.key = e2e.new_key("study.key")
    S.files = tree_files(S.src)
    S.dicomdirs = {r for r in S.files if is_dicomdir(os.path.join(S.src, r))}
    by_shard = [sum(1 for r in S.files if shard_of(r, SHARDS) == k) for k in range(1, SHARDS + 1)]
    check(len(S.files) > 50 and len(S.dicomdirs) == 8 and min(by_shard) > 0,
          f"the export: {len(S.files)} files, {len(S.dicomdirs)} DICOMDIRs; per shard (docs/batch.md's hash) {by_shard}",
          "expected more than 50 files, 8 DICOMDIRs and no empty shard")


def start_cluster():
    ctld_port, slurmd_port, cpus = CLUSTER.start()
    ok(f"munged on its own socket; slurmctld on 127.0.0.1:{ctld_port}, slurmd on 127.0.0.1:{slurmd_port}; "
       f"node localhost idle with {cpus} CPUs")
    pids = [CLUSTER.procs[n].pid for n in ("slurmctld", "slurmd")]
    listening = tcp_listeners(pids)
    ports = {a.rsplit(":", 1)[1] for _, a in listening}
    wide = sorted(a for _, a in listening if not a.startswith("127.") and a != "::1" and not a.startswith("::1:"))
    check(listening and not wide and {str(ctld_port), str(slurmd_port)} <= ports,
          f"the daemons listen on loopback only: {', '.join(sorted(a for _, a in listening))}",
          f"listening on {sorted(listening)}")


SBATCH = """#!/bin/sh
#SBATCH --job-name=dcmencrypt
#SBATCH --array=1-{n}
#SBATCH --cpus-per-task=1
#SBATCH --mem=100M
#SBATCH --time=00:05:00
#SBATCH --output={jobdir}/slurm-%A_%a.out
exec {enc} --key-file "{key}" --recurse -q \\
    --report "enc-$SLURM_ARRAY_TASK_ID.jsonl" \\
    --shard "$SLURM_ARRAY_TASK_ID/{n}" {src} {dst}
"""


def job_records(jid):
    """[{field: value}] of `scontrol show job -o JID` (one per array task once they are split)."""
    rc, out, err = CLUSTER.run([TOOLS["scontrol"], "show", "job", "-o", jid], timeout=10)
    if rc != 0:
        raise RuntimeError(f"scontrol show job {jid}: exit {rc}: {tail(err)}")
    recs = []
    for line in out.splitlines():
        if line.strip():
            recs.append(dict(kv.split("=", 1) for kv in line.split() if "=" in kv))
    return recs


def submit():
    script = os.path.join(S.jobdir, "encrypt.sbatch")
    with open(script, "w") as f:
        f.write(SBATCH.format(n=SHARDS, jobdir=S.jobdir, enc=e2e.ENC, key=S.key, src=S.src, dst=S.dst))
    rc, out, err = CLUSTER.run([TOOLS["sbatch"], "--parsable", script], cwd=S.jobdir)
    if not check(rc == 0 and out.strip().split(";")[0].isdigit(), f"sbatch --parsable encrypt.sbatch: job {out.strip()}",
                 f"exit {rc}: {tail(out + err)}"):
        raise RuntimeError("the array was not submitted")
    S.array = out.strip().split(";")[0]
    CLUSTER.jobs.append(S.array)
    # The DICOMDIR run, as the docs submit it; --wait: sbatch returns when it has ended (bounded).
    final = (f"{e2e.ENC} --key-file {S.key} --recurse -v --report final.jsonl {S.src} {S.dst}")
    t0 = time.monotonic()
    rc, out, err = CLUSTER.run([TOOLS["sbatch"], "--parsable", "--wait", f"--dependency=afterany:{S.array}",
                                "--cpus-per-task=1", f"--output={S.jobdir}/final-%j.out", "--wrap", final],
                               timeout=120, cwd=S.jobdir)
    S.final = out.strip().split(";")[0] if out.strip() else None
    if S.final:
        CLUSTER.jobs.append(S.final)
    check(rc == 0 and S.final, f"sbatch --wait --dependency=afterany:{S.array} --wrap 'dcmencrypt ...': "
          f"job {S.final} ended, exit 0 ({time.monotonic() - t0:.1f} s after submission)",
          f"exit {rc}: {tail(out + err)}; {CLUSTER.logs(300)}")


def check_jobs():
    recs = job_records(S.array)
    tasks = {r.get("ArrayTaskId"): r for r in recs}
    want = {str(k) for k in range(1, SHARDS + 1)}
    check(set(tasks) == want, f"scontrol knows array tasks {sorted(tasks)}", f"wanted {sorted(want)}")
    for k in sorted(want, key=int):
        r = tasks.get(k, {})
        out = os.path.join(S.jobdir, f"slurm-{S.array}_{k}.out")
        text = read_text(out)
        check(r.get("JobState") == "COMPLETED" and r.get("ExitCode") == "0:0" and os.path.exists(out) and not text.strip(),
              f"array task {k}: COMPLETED, exit code 0:0, nothing on stderr (dcmencrypt -q) on node {r.get('NodeList')}",
              f"state {r.get('JobState')}, exit code {r.get('ExitCode')}, reason {r.get('Reason')}, "
              f"output {tail(text, 300) if os.path.exists(out) else 'missing'}")
    fin = job_records(S.final)[0] if S.final else {}
    text = read_text(os.path.join(S.jobdir, f"final-{S.final}.out"))
    check(fin.get("JobState") == "COMPLETED" and fin.get("ExitCode") == "0:0",
          "the DICOMDIR job: COMPLETED, exit code 0:0", f"state {fin.get('JobState')}, exit code {fin.get('ExitCode')}: "
          f"{tail(text, 300)}")
    ends = [tasks[k].get("EndTime", "") for k in sorted(want & set(tasks))]
    check(ends and fin.get("StartTime", "") >= max(ends),
          f"the DICOMDIR job started ({fin.get('StartTime')}) once every array task had ended (afterany)",
          f"array tasks ended {ends}")
    # --cpus-per-task=1 under task/affinity: the batch sees one core (docs: "each on the cores Slurm gives it").
    check("1 jobs x 1 threads" in text, "the DICOMDIR job ran on the one CPU Slurm gave it (dcmencrypt -v: 1 jobs x 1 threads)",
          tail(text, 300))


def check_reports():
    seen = {}
    for k in range(1, SHARDS + 1):
        rows = read_report(os.path.join(S.jobdir, f"enc-{k}.jsonl"))
        if not check(rows, f"shard {k}: report enc-{k}.jsonl with {len(rows or [])} lines", "missing, empty or not JSON lines"):
            continue
        wrong = [r[0] for r in rows if shard_of(r[0], SHARDS) != k]
        check(not wrong, f"shard {k}: only paths of part {k}/{SHARDS} (SHA-256 of the path)",
              f"{len(wrong)} of another part, e.g. {wrong[:2]}")
        for r in rows:
            seen.setdefault(r[0], []).append((k, r[1], r[3]))
            S.kinds[r[0]] = r[2]
    twice = {r: v for r, v in seen.items() if len(v) > 1}
    check(not twice, f"the {SHARDS} reports are disjoint", f"{len(twice)} paths in more than one, e.g. {list(twice.items())[:2]}")
    missing, extra = S.files - set(seen), set(seen) - S.files
    check(not missing and not extra, f"together they list every file of the tree once ({len(S.files)})",
          f"missing {sorted(missing)[:3]} ({len(missing)}), not in the tree {sorted(extra)[:3]} ({len(extra)})")
    deferred = {r for r, v in seen.items() if any(s == "deferred" for _, s, _ in v)}
    check(deferred == S.dicomdirs, f"the shards deferred exactly the {len(S.dicomdirs)} DICOMDIRs",
          f"deferred {sorted(deferred)[:3]}, DICOMDIRs {sorted(S.dicomdirs)[:3]}")
    wrong = {r: v for r, v in seen.items() if r not in S.dicomdirs and
             not all(s in ("encrypted", "protected", "copied") for _, s, _ in v)}
    check(not wrong, "every other file encrypted, header-protected or copied by its shard",
          f"{len(wrong)} not, e.g. {list(wrong.items())[:2]}")
    rows = read_report(os.path.join(S.jobdir, "final.jsonl"))
    if not check(rows, f"the final run's report final.jsonl: {len(rows or [])} lines", "missing, empty or not JSON lines"):
        return
    paths = [r[0] for r in rows]
    check(sorted(paths) == sorted(S.files), "the final run's report lists every file once",
          f"{len(paths)} lines, {len(set(paths))} distinct, {len(S.files)} files")
    dirs = {r[0] for r in rows if r[1] == "dicomdir"}
    redone = [(r[0], r[1], r[3]) for r in rows if r[0] not in S.dicomdirs and r[1] != "skipped"]
    check(dirs == S.dicomdirs and not redone,
          f"the final run wrote the {len(dirs)} DICOMDIRs and skipped the {len(rows) - len(dirs)} other files (they verify)",
          f"DICOMDIRs written {sorted(dirs)[:3]}; not skipped {redone[:3]}")
    outs = tree_files(S.dst)
    check(outs == S.files, f"the encrypted tree holds one output per file ({len(outs)})",
          f"missing {sorted(S.files - outs)[:3]}, extra {sorted(outs - S.files)[:3]}")


EXPLICIT_LE = "1.2.840.10008.1.2.1"
# Transfer syntaxes DCMTK cannot encode (JPEG 2000, HTJ2K): dcmdecrypt writes explicit VR LE.
NOT_DCMTK = ("1.2.840.10008.1.2.4.9", "1.2.840.10008.1.2.4.20")


def check_decryption():
    rc, _, err = e2e.run([e2e.DEC, "--key-file", S.key, "--recurse", "-q", "--report", p("dec.jsonl"), S.dst, S.dec],
                         timeout=120)
    check(rc == 0, f"dcmdecrypt --recurse of the encrypted tree (exit {rc})", tail(err))
    got = tree_files(S.dec)
    check(got == S.files, f"the restored tree holds every file ({len(got)})",
          f"missing {sorted(S.files - got)[:3]}, extra {sorted(got - S.files)[:3]}")
    same_bytes, same_dicom, reencoded, rebuilt, problems = 0, 0, 0, 0, []
    for rel in sorted(S.files & got):
        a, b = os.path.join(S.src, rel), os.path.join(S.dec, rel)
        with open(a, "rb") as fa, open(b, "rb") as fb:
            if fa.read() == fb.read():
                same_bytes += 1
                continue
        if rel in S.dicomdirs:
            rebuilt += 1  # rebuilt from the restored objects: batch_compare.py judges their references
            continue
        if S.kinds.get(rel) not in ("image", "no-pixels"):
            problems.append(f"{rel}: {S.kinds.get(rel)}, not a DICOM object, yet not byte-identical")
            continue
        try:
            d = e2e.differences(a, b)
            ts_a, ts_b = (str(e2e.read(x).file_meta.get("TransferSyntaxUID")) for x in (a, b))
            if d and ts_a.startswith(NOT_DCMTK) and ts_b == EXPLICIT_LE:
                # dcmdecrypt(1): a syntax DCMTK cannot encode comes back in explicit VR little
                # endian, the object as GDCM decodes it (docs/dicom.md): compare with gdcmconv --raw's.
                native = p("scratch", rel.replace("/", "_") + ".native.dcm")
                os.makedirs(os.path.dirname(native), exist_ok=True)
                rc, _, err = e2e.run(["gdcmconv", "--raw", "-i", a, "-o", native], timeout=60)
                d = e2e.differences(native, b) if rc == 0 else [f"gdcmconv --raw of the original: exit {rc} {tail(err, 100)}"]
                reencoded += not d
        except Exception as ex:  # noqa: BLE001
            d = [f"cannot compare: {ex!r:.200}"]
        if d:
            problems.append(f"{rel}: {'; '.join(d[:3])}")
        else:
            same_dicom += 1
    check(not problems and same_bytes + same_dicom + rebuilt == len(S.files),
          f"restored: {same_bytes} files byte-identical, {same_dicom} DICOM objects equal as DICOM (every attribute "
          f"at every depth, every pixel value; {reencoded} JPEG 2000 ones in explicit VR little endian, as GDCM "
          f"decodes them), {rebuilt} DICOMDIRs rebuilt",
          f"{len(problems)} differ: {problems[:3]}; {len(S.files - got)} not there to compare")
    rc, out, _ = e2e.run(["/usr/bin/python3", os.path.join(HERE, "batch_compare.py"), S.src, S.dst, S.dec], timeout=120)
    check(rc == 0, f"tests/batch_compare.py: {out.strip().splitlines()[-1] if out.strip() else '(no output)'}",
          tail(out, 600))


def main():
    for f in (e2e.ENC, e2e.DEC):
        if not os.access(f, os.X_OK):
            bad(f"{f} not found")
            return 1
    steps = [("the export", prepare), ("start a private Slurm", start_cluster),
             ("encrypt.sbatch: a job array of shards, then the DICOMDIR job", submit),
             ("the jobs", check_jobs), ("the reports", check_reports), ("dcmdecrypt --recurse", check_decryption)]
    for title, step in steps:
        section(title)
        try:
            step()
        except Exception as ex:  # noqa: BLE001 - a broken step fails; later steps need it
            import traceback
            traceback.print_exc(limit=3)
            bad(f"{title}: {ex!s:.1500}")
            break
    section("stop")
    left = CLUSTER.stop()
    check(not left, "cluster stopped, no process of this run left", f"still alive: {left}")
    print(f"{e2e.COUNT['passed']} passed, {e2e.COUNT['failed']} failed in {time.monotonic() - START:.0f} s")
    return 1 if e2e.COUNT["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
