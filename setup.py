"""The build step pyproject.toml cannot say: libvirtpki.so into the wheel, the crate's version.

``build_py`` runs ``cargo build --release --lib`` (``$CARGO``, honouring ``CARGO_TARGET_DIR``)
and copies ``libvirtpki.so`` into the built package, where ``virtpki._library`` looks first;
``VIRTPKI_WHEEL_LIBRARY`` names a library already built instead (``make python-test`` passes
the debug one ``cargo test`` made). Only the build directory is written, never ``python/``:
the source tree's package keeps finding the build tree's library.
"""

import os
import re
import shutil
import subprocess

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

ROOT = os.path.dirname(os.path.abspath(__file__))
LIBRARY_FILE = "libvirtpki.so"


def crate_version():
    """The version of the [package] of Cargo.toml, the line the Makefile reads too."""
    manifest = os.path.join(ROOT, "Cargo.toml")
    if not os.path.isfile(manifest):
        # An sdist carries the Python files only: the library needs the Cargo workspace.
        raise RuntimeError(
            f"{manifest}: missing; the virtpki package builds only in a clone of its repository "
            "(the wheel carries libvirtpki.so, built from the Cargo workspace beside setup.py): "
            "run `pip install .` or `python -m build --wheel` there, not from an sdist"
        )
    with open(manifest, encoding="utf-8") as f:
        match = re.search(r'^version = "([^"]+)"', f.read(), re.MULTILINE)
    if not match:
        raise RuntimeError("Cargo.toml: no version line")
    return match.group(1)


def target_dir():
    return os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")


def built_library():
    """The path of the libvirtpki.so to package: given, or built now in release."""
    given = os.environ.get("VIRTPKI_WHEEL_LIBRARY")
    if given:
        if not os.path.isfile(given):
            raise RuntimeError(f"VIRTPKI_WHEEL_LIBRARY={given}: no such file")
        return given
    cargo = os.environ.get("CARGO", "cargo")
    if shutil.which(cargo) is None:
        raise RuntimeError(
            "building the virtpki wheel needs cargo (a Rust toolchain) to build libvirtpki.so, "
            "or VIRTPKI_WHEEL_LIBRARY naming one already built"
        )
    subprocess.run([cargo, "build", "--release", "--lib", "-p", "virtpki"], cwd=ROOT, check=True)
    return os.path.join(target_dir(), "release", LIBRARY_FILE)


class BuildWithLibrary(build_py):
    """build_py, plus the C library inside the package."""

    def run(self):
        super().run()
        if self.dry_run:
            return
        target = os.path.join(self.build_lib, "virtpki", LIBRARY_FILE)
        # Always copied: copy_file skips a target newer than its source, and the build
        # directory outlives a build (a stripped copy is newer than any library built before
        # it), so a second build would package the first one's library.
        shutil.copyfile(built_library(), target)
        os.chmod(target, 0o755)
        # The release profile keeps line tables (debug = 1, for profiles): a wheel does not need
        # them (30 MB instead of a few). A library given by VIRTPKI_WHEEL_LIBRARY is packaged as is.
        strip = shutil.which("strip")
        if not os.environ.get("VIRTPKI_WHEEL_LIBRARY") and strip:
            subprocess.run([strip, "--strip-debug", target], check=True)


class PlatformWheel(bdist_wheel):
    """A wheel for any Python 3 on this platform: the library is loaded by ctypes and does not
    link libpython, so the tag is py3-none-<platform>, not the building interpreter's cpXY."""

    def get_tag(self):
        _, _, platform = super().get_tag()
        return "py3", "none", platform


class BinaryDistribution(Distribution):
    """A wheel for this platform (it carries a shared library), not a pure-Python one."""

    def has_ext_modules(self):
        return True


# setuptools' scratch directories go under cargo's target directory, out of the source tree.
_SCRATCH = os.path.join(target_dir(), "python-build")
os.makedirs(_SCRATCH, exist_ok=True)

setup(
    version=crate_version(),
    cmdclass={"build_py": BuildWithLibrary, "bdist_wheel": PlatformWheel},
    distclass=BinaryDistribution,
    options={"build": {"build_base": _SCRATCH}, "egg_info": {"egg_base": _SCRATCH}},
)
