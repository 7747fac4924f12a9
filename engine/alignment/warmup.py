"""Compile the kernels once per install, in parallel, and say so while it happens.

The kernels (:mod:`align3d.engine.alignment.jit`) compile when their modules are first imported and
are then loaded from numba's on-disk cache. On a fresh install that takes about ten seconds of
CPU, done here in two processes side by side (one per group of modules), behind a one-line
notice. A marker, keyed by the versions of align3d, numba and Python and the kernel sources,
says that it is done; it lives where numba keeps its cache (``$NUMBA_CACHE_DIR``, else the
package's ``__pycache__``, else the user's cache folder, else the temporary directory).

numba checks a cached kernel against its own source file only, not against the inline helpers
compiled into it from other files (:data:`HELPERS`). So the marker is keyed by those too, and
when it is missing the kernels cached from older sources are removed before they compile: a
checkout updated to a helper change (an editable install after ``git pull``) never runs kernels
built from the old helper.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from align3d.engine.alignment.folders import writable

GROUPS = (
    (
        "align3d.engine.alignment.spline.sample",
        "align3d.engine.alignment.spline.prefilter",
        "align3d.engine.alignment.spectra",
    ),
    (
        "align3d.engine.alignment.spline.affine",
        "align3d.engine.alignment.shells",
        "align3d.engine.alignment.difference",
        "align3d.engine.alignment.rotation_function",
    ),
)
"""Kernel modules, in two groups of about equal compile time."""

HELPERS = ("align3d.engine.alignment.spline.basis",)
"""Modules of inline helpers only (``jit.inline``): compiled into the kernels of the modules
that import them."""

HERE = Path(__file__).absolute().parent
"""This module's folder as Python imported it (links not followed: numba keeps a kernel's cache
beside the path its source was imported from, which in an editable install is a link)."""
PACKAGE = __name__.rpartition(".")[0]
"""This module's package (``align3d.engine.alignment``): every kernel module lies under it."""


def _source(module: str) -> Path:
    return HERE / (module.removeprefix(PACKAGE + ".").replace(".", "/") + ".py")


def _kernel_sources() -> list[Path]:
    """Every source file the compiled kernels are built from."""
    modules = [m for group in GROUPS for m in group] + list(HELPERS)
    return [_source(m) for m in modules] + [HERE / "jit.py"]


def _marker() -> Path:
    from importlib.metadata import PackageNotFoundError, version

    parts = [sys.version.split()[0]]
    for name in ("align3d", "numba"):
        try:
            parts.append(version(name))
        except PackageNotFoundError:
            parts.append("?")
    for source in _kernel_sources():
        parts.append(hashlib.sha256(source.read_bytes()).hexdigest()[:16])
    key = hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]
    candidates = [Path(os.environ["NUMBA_CACHE_DIR"])] if "NUMBA_CACHE_DIR" in os.environ else []
    candidates += [
        HERE / "__pycache__",
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "align3d",
        Path(tempfile.gettempdir()) / f"align3d-numba-{os.getuid()}",
    ]
    folder = next((c for c in candidates if writable(c)), candidates[-1])
    return folder / f"align3d-kernels-{key}"


def _cache_folder(source: Path) -> Path:
    """The folder where numba keeps, and looks for, the kernels compiled from ``source`` in this
    process (numba's own order): under ``$NUMBA_CACHE_DIR`` when set, else beside the source
    when that is writable, else under the user's cache folder."""
    beside = source.parent / "__pycache__"
    try:
        from numba.core.caching import _CacheLocator
        from numba.misc.appdirs import AppDirs

        subpath = _CacheLocator.get_suitable_cache_subpath(str(source))
        user = Path(AppDirs(appname="numba", appauthor=False).user_cache_dir) / subpath
    except (ImportError, AttributeError):  # another numba layout: the folder beside it
        return beside
    if "NUMBA_CACHE_DIR" in os.environ:
        return Path(os.environ["NUMBA_CACHE_DIR"]) / subpath
    return beside if writable(beside) else user


def remove_cached_kernels() -> int:
    """Remove the cached kernels of align3d's kernel modules from the folder this process's
    numba uses (it compiles them again from the sources); returns how many files went.

    That folder only: the kernels of another (another user's cache, another
    ``$NUMBA_CACHE_DIR``) stay with the marker there that vouches for them, and this process's
    numba never looks at them."""
    from align3d.engine.alignment import jit  # noqa: F401  (settles numba's cache folder first)

    removed = 0
    for module in (m for group in GROUPS for m in group):
        source = _source(module)
        folder = _cache_folder(source)
        for cached in (*folder.glob(f"{source.stem}.*.nbi"), *folder.glob(f"{source.stem}.*.nbc")):
            try:
                cached.unlink()
                removed += 1
            except OSError:  # read-only (a shared install) or gone already
                pass
    return removed


def ensure_compiled(notify: Callable[[str], None]) -> bool:
    """Compile the kernels if this install has not yet (``notify`` gets the notice first);
    returns whether it compiled. Safe to call often: a warm install costs a few ``stat`` calls."""
    if "align3d.engine.alignment.spline.affine" in sys.modules:
        return False  # loaded already, in this process
    marker = _marker()
    if marker.exists():
        return False
    notify("compiling kernels, once per install (a few seconds)...")
    remove_cached_kernels()  # any left were built from other sources (or another numba)
    environment = dict(os.environ)
    # the compiling processes import the package as this one does (its sys.path, in order)
    environment["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    try:
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", "import " + ", ".join(group)],
                env=environment,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for group in GROUPS
        ]
    except OSError:  # no helper processes here: the kernels compile in this one, in turn
        processes = []
    for process in processes:
        process.communicate()
    if not processes or any(process.returncode for process in processes):
        # compile here instead (an error then shows as it is)
        for module in (m for group in GROUPS for m in group):
            importlib.import_module(module)
    try:
        marker.write_text("compiled\n")
    except OSError:
        pass
    return True
