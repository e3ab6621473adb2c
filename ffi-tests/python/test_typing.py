"""The package's own source passes ``mypy --strict`` (the package is typed: py.typed), and the
check is live: a typing error put into a copy of the source fails it, naming the line.

mypy is the command in VIRTPKI_MYPY (`make python-test` sets it: mypy --strict from its own
venv, for Python 3.10, see the Makefile's python-typecheck), else ``python -m mypy --strict
--python-version 3.10`` when this python has mypy; without either the tests skip, unless
VIRTPKI_TEST_INSTALLED=1 (make python-test), where they fail.
"""

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import unittest

from support import REPO

SOURCE = os.path.join(REPO, "python", "virtpki")
MUST_RUN = os.environ.get("VIRTPKI_TEST_INSTALLED") == "1"


def mypy_command():
    """The command that runs mypy --strict, or None."""
    configured = os.environ.get("VIRTPKI_MYPY")
    if configured:
        return shlex.split(configured)
    try:
        import mypy  # noqa: F401
    except ImportError:
        return None
    return [sys.executable, "-m", "mypy", "--strict", "--python-version", "3.10"]


class TypingTests(unittest.TestCase):
    def setUp(self):
        self.mypy = mypy_command()
        if self.mypy is None:
            if MUST_RUN:
                self.fail("no mypy: make python-test sets VIRTPKI_MYPY")
            self.skipTest("mypy is not installed (make python-typecheck installs it)")

    def run_mypy(self, package):
        return subprocess.run(
            self.mypy + [package],
            cwd=os.path.dirname(package),
            capture_output=True,
            text=True,
            timeout=300,
        )

    def test_the_package_source_passes_mypy_strict(self):
        result = self.run_mypy(SOURCE)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_a_typing_error_fails_the_check(self):
        with tempfile.TemporaryDirectory(prefix="virtpki-py-typing-") as tmp:
            copy = os.path.join(tmp, "virtpki")
            shutil.copytree(SOURCE, copy, ignore=shutil.ignore_patterns("*.so*", "__pycache__"))
            # A private helper without annotations, and one returning the wrong type: what
            # --strict is there for.
            with open(os.path.join(copy, "session.py"), "a", encoding="utf-8") as f:
                f.write("\n\ndef _untyped(x):\n    return x\n")
                f.write("\n\ndef _wrong() -> int:\n    return str(_flags(True))\n")
                # The stdlib of a Python newer than the oldest one checked for (datetime.UTC
                # is 3.11's): checked as 3.10, not as the python running mypy.
                f.write("\n\ndef _too_new() -> object:\n    import datetime\n")
                f.write("\n    return datetime.UTC\n")
            result = self.run_mypy(copy)
            output = result.stdout + result.stderr
            self.assertEqual(result.returncode, 1, output)
            self.assertIn("session.py", output)
            self.assertIn("[no-untyped-def]", output)
            self.assertIn("[return-value]", output)
            self.assertIn('has no attribute "UTC"', output)


if __name__ == "__main__":
    unittest.main()
