"""The package as pip installs it: from the environment, not the tree; its own libvirtpki.so;
the crate's version; py.typed; a docstring on every public name; type hints on the functions."""

import ast
import importlib
import inspect
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import virtpki
from support import REPO

PACKAGE_DIR = os.path.dirname(os.path.abspath(virtpki.__file__))
TREE_PACKAGE = os.path.join(REPO, "python", "virtpki")
# `make python-test` runs the suite on the installed package; a run on the tree is for quick
# local checks and skips what only an installed package has. The Makefile sets
# VIRTPKI_TEST_INSTALLED=1: then the tree's package is a failure, not a skip (a suite that
# slipped back onto the tree would otherwise pass with these tests skipped).
INSTALLED = os.path.realpath(PACKAGE_DIR) != os.path.realpath(TREE_PACKAGE)
MUST_BE_INSTALLED = os.environ.get("VIRTPKI_TEST_INSTALLED") == "1"


def crate_version():
    with open(os.path.join(REPO, "Cargo.toml"), encoding="utf-8") as f:
        return re.search(r'^version = "([^"]+)"', f.read(), re.MULTILINE).group(1)


def public_modules():
    """virtpki and its modules whose names do not start with an underscore."""
    yield virtpki
    for info in pkgutil.iter_modules(virtpki.__path__):
        # Python modules only: libvirtpki.so beside them is not one.
        python_file = os.path.join(PACKAGE_DIR, info.name + ".py")
        if not info.name.startswith("_") and os.path.isfile(python_file):
            yield importlib.import_module(f"virtpki.{info.name}")


def public_names():
    """(qualified name, object) of every public function, class, method and property the
    package defines (what other modules import, such as typing's, is not ours to check)."""
    seen = set()
    for module in public_modules():
        yield module.__name__, module
        for name, obj in vars(module).items():
            if name.startswith("_") or id(obj) in seen:
                continue
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if not getattr(obj, "__module__", "").startswith("virtpki"):
                continue
            seen.add(id(obj))
            yield f"{module.__name__}.{name}", obj
            if inspect.isclass(obj):
                for member, value in vars(obj).items():
                    if member.startswith("_"):
                        continue
                    if isinstance(value, (staticmethod, classmethod)):
                        value = value.__func__
                    if inspect.isfunction(value) or isinstance(value, property):
                        yield f"{module.__name__}.{name}.{member}", value


class InstalledPackageTests(unittest.TestCase):
    def setUp(self):
        if not INSTALLED:
            if MUST_BE_INSTALLED:
                self.fail(f"VIRTPKI_TEST_INSTALLED=1 but virtpki was imported from {PACKAGE_DIR}")
            self.skipTest("the package of the tree (make python-test installs it)")

    def test_imported_from_the_environment_not_the_tree(self):
        self.assertFalse(PACKAGE_DIR.startswith(os.path.join(REPO, "python") + os.sep))

    def test_the_wheel_carries_the_library_and_uses_it(self):
        packaged = os.path.join(PACKAGE_DIR, "libvirtpki.so")
        self.assertTrue(os.path.isfile(packaged))
        self.assertEqual(virtpki.library_path, packaged)

    def test_virtpki_library_is_ignored_and_said_to_be(self):
        # From another directory, as a user imports it.
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, VIRTPKI_LIBRARY="/nonexistent/libvirtpki.so")
            run = subprocess.run(
                [sys.executable, "-c", "import virtpki; print(virtpki.library_path)"],
                cwd=tmp,
                env=env,
                capture_output=True,
                text=True,
            )
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(run.stdout.strip(), os.path.join(PACKAGE_DIR, "libvirtpki.so"))
        self.assertIn("VIRTPKI_LIBRARY=/nonexistent/libvirtpki.so is ignored", run.stderr)

    def test_the_package_version_is_the_crates(self):
        from importlib import metadata

        self.assertEqual(metadata.version("virtpki"), crate_version())
        self.assertEqual(virtpki.__version__, crate_version())
        self.assertEqual(virtpki.version(), crate_version())

    def test_py_typed_is_installed(self):
        self.assertTrue(os.path.isfile(os.path.join(PACKAGE_DIR, "py.typed")))


def build_py(target_dir, library):
    """Runs setup.py's build_py (what a wheel build runs) packaging ``library``, with its
    scratch directories under ``target_dir``; returns the library copied into the build."""
    env = dict(os.environ, CARGO_TARGET_DIR=target_dir, VIRTPKI_WHEEL_LIBRARY=library)
    subprocess.run(
        [sys.executable, "setup.py", "-q", "build_py"],
        cwd=REPO,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    build = os.path.join(target_dir, "python-build")
    (lib_dir,) = [d for d in os.listdir(build) if d.startswith("lib")]
    return os.path.join(build, lib_dir, "virtpki", "libvirtpki.so")


class WheelBuildTests(unittest.TestCase):
    def setUp(self):
        try:
            import setuptools.command.bdist_wheel  # noqa: F401 - only whether it is there
        except ImportError:
            self.skipTest("setuptools >= 70.1 (make python-test installs it in the venv)")

    def test_a_second_build_packages_the_library_it_is_given(self):
        # The build directory is reused between builds: a copy left there by an earlier one
        # (newer than the library given now, as a stripped copy always is) must not stay.
        with tempfile.TemporaryDirectory() as tmp:
            first, second = os.path.join(tmp, "first.so"), os.path.join(tmp, "second.so")
            for path, text in ((first, "first"), (second, "second")):
                with open(path, "w") as f:
                    f.write(text)
            os.utime(second, (1_000_000_000, 1_000_000_000))
            target = os.path.join(tmp, "target")
            for library, expected in ((first, "first"), (second, "second")):
                with open(build_py(target, library)) as f:
                    self.assertEqual(f.read(), expected)

    def test_the_wheel_is_for_any_python_3(self):
        # ctypes loads the library: the wheel does not depend on the building interpreter.
        with tempfile.TemporaryDirectory() as tmp:
            library = os.path.join(tmp, "libvirtpki.so")
            with open(library, "w") as f:
                f.write("not a library")
            env = dict(
                os.environ, CARGO_TARGET_DIR=os.path.join(tmp, "target"),
                VIRTPKI_WHEEL_LIBRARY=library,
            )
            subprocess.run(
                [sys.executable, "setup.py", "-q", "bdist_wheel", "--dist-dir", tmp],
                cwd=REPO,
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            (wheel,) = [n for n in os.listdir(tmp) if n.endswith(".whl")]
        self.assertRegex(wheel, r"^virtpki-[^-]+-py3-none-linux_[a-z0-9_]+\.whl$")

    def test_a_tree_without_the_cargo_workspace_fails_saying_so(self):
        # What an sdist holds (python -m build makes the wheel from it): the Python side only.
        with tempfile.TemporaryDirectory() as tmp:
            for name in ("setup.py", "pyproject.toml", "README.md"):
                shutil.copy(os.path.join(REPO, name), tmp)
            shutil.copytree(os.path.join(REPO, "python"), os.path.join(tmp, "python"))
            env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(tmp, "target"))
            run = subprocess.run(
                [sys.executable, "setup.py", "--version"],
                cwd=tmp,
                env=env,
                capture_output=True,
                text=True,
            )
            self.assertNotEqual(run.returncode, 0)
            self.assertIn("Cargo.toml: missing", run.stderr)
            self.assertIn("builds only in a clone of its repository", run.stderr)


class PublicNamesTests(unittest.TestCase):
    def test_every_public_name_has_a_docstring(self):
        names = list(public_names())
        self.assertGreater(len(names), 60)
        # __doc__ itself: inspect.getdoc would take a base class's for an undocumented subclass.
        missing = [name for name, obj in names if not (obj.__doc__ or "").strip()]
        self.assertEqual(missing, [], "public names without a docstring")

    def test_every_public_function_has_type_hints(self):
        missing = []
        for name, obj in public_names():
            function = obj.fget if isinstance(obj, property) else obj
            if not inspect.isfunction(function):
                continue
            signature = inspect.signature(function)
            params = [
                p
                for p in signature.parameters.values()
                if p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            ]
            if signature.return_annotation is inspect.Signature.empty or any(
                p.annotation is inspect.Parameter.empty for p in params
            ):
                missing.append(name)
        self.assertEqual(missing, [], "public functions without complete type hints")

    def test_all_is_every_public_name_once(self):
        public = {name for name in dir(virtpki) if not name.startswith("_")}
        self.assertEqual(sorted(set(virtpki.__all__)), sorted(public))
        self.assertEqual(len(virtpki.__all__), len(set(virtpki.__all__)))

    def test_type_checkers_see_every_class_in_a_literal_all(self):
        # mypy and pyright read __all__ only from string literals (a computed list exports
        # nothing to them): with py.typed, `virtpki.CertDataType` was "no attribute" to mypy.
        for module in (virtpki.constants, virtpki.errors):
            with self.subTest(module=module.__name__):
                with open(module.__file__, encoding="utf-8") as f:
                    tree = ast.parse(f.read())
                literal = set()
                for node in ast.walk(tree):
                    if isinstance(node, (ast.Assign, ast.AugAssign)) and isinstance(
                        node.value, ast.List
                    ):
                        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                        if any(getattr(t, "id", None) == "__all__" for t in targets):
                            literal |= {
                                e.value for e in node.value.elts if isinstance(e, ast.Constant)
                            }
                classes = {
                    name
                    for name, obj in vars(module).items()
                    if inspect.isclass(obj)
                    and obj.__module__ == module.__name__
                    and not name.startswith("_")
                    # The C names (virConnectCertDataType, ...) are aliases made at run time.
                    and name not in getattr(module, "C_NAMES", {})
                }
                self.assertGreater(len(classes), 8)
                self.assertEqual(sorted(classes - literal), [])
                self.assertTrue(literal <= set(module.__all__))

    def test_the_walker_sees_what_it_should(self):
        names = dict(public_names())
        for name in ("virtpki.Context", "virtpki.Session.client", "virtpki.get_dn", "virtpki.cert"):
            self.assertIn(name, names)


if __name__ == "__main__":
    unittest.main()
