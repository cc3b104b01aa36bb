"""What produced a benchmark's figures, recorded beside them: the commit, the
date, the machine, kimcnn's version, and each baseline's version (and, for a
baseline script, its path and digests). The bench scripts import it; each sets
sys.dont_write_bytecode first, so that nothing is written beside this file.
"""
import datetime
import hashlib
import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def first_line(cmd, cwd=None):
    """The first non-empty line `cmd` prints (stdout, else stderr), or why there is none."""
    try:
        r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd, timeout=120)
    except (OSError, subprocess.SubprocessError) as e:
        return f"unavailable ({e.__class__.__name__}: {e})"
    for text in (r.stdout, r.stderr):
        for line in text.splitlines():
            if line.strip():
                return line.strip() if r.returncode == 0 else f"unavailable (exit {r.returncode}: {line.strip()})"
    return f"unavailable (exit {r.returncode}, no output)"


def kimcnn(binary):
    return first_line([binary, "--version"])


def python_module(python, module, dists=()):
    """`module.__version__` as `python` imports it (for torch: what the reference's own
    results JSON records as env.torch), else the version of the first installed
    distribution of `dists` (default: the module's name)."""
    code = ("import importlib, importlib.metadata as m\n"
            f"try:\n  print(importlib.import_module({module!r}).__version__)\n"
            "except Exception:\n"
            f"  for d in {list(dists or [module])!r}:\n"
            "    try:\n      print(d, m.version(d)); break\n"
            "    except m.PackageNotFoundError: pass\n"
            "  else: raise SystemExit('not installed')\n")
    return first_line([python, "-c", code])


def python_version(python):
    return first_line([python, "-c", "import platform; print(platform.python_version())"])


def script(path, kimcnn_binary=None):
    """A baseline script: its resolved path, sha256, and BLAKE3 (by `kimcnn hash`, b3sum's format)."""
    p = Path(path).resolve()
    data = p.read_bytes()
    out = {"path": str(p), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    if kimcnn_binary:
        line = first_line([kimcnn_binary, "hash", p])
        out["blake3"] = line.split()[0] if not line.startswith("unavailable") else line
    return out


def commit():
    head = first_line(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    try:
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=60).stdout.strip() != ""
    except (OSError, subprocess.SubprocessError):
        dirty = None
    return {"commit": head, "uncommitted_changes": dirty}


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine():
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "platform": platform.platform()}


def collect(**tools):
    """The run's record: commit, date, machine, and the given tools' versions."""
    return {"date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            **commit(), "machine": machine(), "tools": tools}


def describe(v):
    if isinstance(v, dict) and "sha256" in v:
        s = f"`{v['path']}` (sha256 {v['sha256'][:16]}"
        if "blake3" in v:
            s += f", BLAKE3 {v['blake3'][:16]}"
        return s + ")"
    if isinstance(v, dict):
        return ", ".join(f"{k} {describe(x)}" for k, x in v.items())
    return str(v)


def markdown(rec):
    """One paragraph for a results .md: where and with what the figures were measured."""
    c = rec["commit"] + (" with uncommitted changes" if rec.get("uncommitted_changes") else "")
    m = rec["machine"]
    tools = "; ".join(f"{k}: {describe(v)}" for k, v in rec["tools"].items())
    return f"Measured {rec['date_utc']} at commit {c} on {m['cpu']} ({m['cores']} cores). Versions: {tools}."
