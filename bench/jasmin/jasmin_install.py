"""Installs Jasmin for the benchmark, at run time, into bench/jasmin/.work/ (git-ignored).

Why a virtualenv of its own: Jasmin pins old Twisted, cryptography and friends that
conflict with batgate's dependencies. Why the sdist as well: the wheel carries the code
but not the sample configuration files nor the AMQP 0-9-1 spec that txAMQP needs at run
time; those live under misc/config/ in the sdist only.

Why 0.11.0 and not 0.11.1: 0.11.1's listeners.py uses the wrong PDU in submit_sm_resp
handling (upstream bug #1236), after which no level-2 DLR is ever delivered; 0.11.0 does
not have that bug and needs no patch.

Idempotent: a marker file written last says the install is complete; without it the
virtualenv is built anew. A lock keeps two concurrent callers from building it twice.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

JASMIN_VERSION = "0.11.0"
WORK = Path(__file__).resolve().parent / ".work"
MARKER = "installed.json"
# What the run needs from the sdist's misc/config/, copied to WORK/config-dist/.
DIST_CONFIGS = (
    "jasmin.cfg",
    "dlr.cfg",
    "dlrlookupd.cfg",
    "interceptor.cfg",
    "resource/amqp0-9-1.xml",
)


class InstallError(Exception):
    """A step of the Jasmin installation failed; the message says which."""


def venv_python(work: Path) -> Path:
    return work / "venv" / "bin" / "python"


def dist_config(work: Path, name: str) -> Path:
    """A pristine configuration file of the sdist, e.g. `jasmin.cfg`."""
    return work / "config-dist" / name


def install(log: Callable[[str], None] = print, work: Path | None = None) -> Path:
    """Installs Jasmin into `work` (default bench/jasmin/.work/) unless already done."""
    work = work or WORK
    work.mkdir(parents=True, exist_ok=True)
    with _locked(work / ".install.lock"):
        if _installed(work):
            return work
        started = time.monotonic()
        log(f"installing Jasmin {JASMIN_VERSION} into {work.name}/ (log: install.log)")
        with (work / "install.log").open("w") as out:
            _make_venv(work, out)
            sdist = _download_sdist(work, out)
            _pip(work, out, "install", str(sdist))
            _extract_configs(sdist, work)
        version = _check(work)
        (work / MARKER).write_text(json.dumps({"jasmin": version}) + "\n")
        log(f"Jasmin {version} installed in {time.monotonic() - started:.0f} s")
    return work


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _installed(work: Path) -> bool:
    marker = work / MARKER
    if not marker.exists() or not venv_python(work).exists():
        return False
    try:
        recorded = json.loads(marker.read_text()).get("jasmin")
    except ValueError:
        return False
    configs = all(dist_config(work, name).exists() for name in DIST_CONFIGS)
    return recorded == JASMIN_VERSION and configs


def _run(argv: list[str], out: IO[str], what: str) -> None:
    result = subprocess.run(
        argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False
    )
    if result.returncode != 0:
        raise InstallError(f"{what} failed (exit {result.returncode}); see .work/install.log")


def _make_venv(work: Path, out: IO[str]) -> None:
    """A fresh virtualenv on the interpreter that runs the bench (Python 3.11)."""
    shutil.rmtree(work / "venv", ignore_errors=True)
    (work / MARKER).unlink(missing_ok=True)
    _run([sys.executable, "-m", "venv", str(work / "venv")], out, "python -m venv")


def _pip(work: Path, out: IO[str], *args: str) -> None:
    argv = [str(venv_python(work)), "-m", "pip", *args, "--disable-pip-version-check"]
    _run(argv, out, f"pip {args[0]}")


def _download_sdist(work: Path, out: IO[str]) -> Path:
    sdist_dir = work / "sdist"
    sdist = sdist_dir / f"jasmin-{JASMIN_VERSION}.tar.gz"
    if not sdist.exists():
        spec = f"jasmin=={JASMIN_VERSION}"
        _pip(work, out, "download", "--no-deps", "--no-binary", ":all:", spec, "-d", str(sdist_dir))
    if not sdist.exists():
        raise InstallError(f"pip download did not produce {sdist.name}")
    return sdist


def _extract_configs(sdist: Path, work: Path) -> None:
    """Copies the sdist's misc/config/ files the run needs into config-dist/."""
    prefix = f"jasmin-{JASMIN_VERSION}/misc/config/"
    with tarfile.open(sdist) as tar:
        for name in DIST_CONFIGS:
            member = tar.extractfile(prefix + name)
            if member is None:
                raise InstallError(f"{prefix + name} missing from {sdist.name}")
            target = dist_config(work, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(member.read())


def _check(work: Path) -> str:
    """The version the virtualenv's Jasmin reports: proof that it imports."""
    probe = "import jasmin, jasmin.bin; print(jasmin.get_release())"
    result = subprocess.run(
        [str(venv_python(work)), "-c", probe], capture_output=True, text=True, check=False
    )
    version = result.stdout.strip()
    if result.returncode != 0 or version != JASMIN_VERSION:
        raise InstallError(f"Jasmin does not import as {JASMIN_VERSION}: {result.stderr[-500:]}")
    return version
