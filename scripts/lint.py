#!/usr/bin/env python3
"""``make lint``: pre-commit with local hooks from a cached lint virtualenv.

Hook repositories cannot be cloned on every machine, so ``.pre-commit-config.yaml``
only has ``repo: local`` hooks; this script installs their tools (PyPI into
``<cache>/lint-venv``, prettier from npm into ``<cache>/node``) and runs them.
"""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bootstrap  # noqa: E402

REQUIREMENTS = bootstrap.REPO_ROOT / "scripts" / "requirements-lint.txt"
# The versions of the OCA repository template.
NPM_PACKAGES = ["prettier@2.8.8", "@prettier/plugin-xml@2.2.0"]


def ensure_lint_venv():
    venv = bootstrap.CACHE / "lint-venv"
    python = venv / "bin" / "python"
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    stamp = venv / ".crm-lifecycle-requirements"
    if not (python.exists() and stamp.is_file() and stamp.read_text() == digest):
        bootstrap.log(f"installing lint tools in {venv} (once)")
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet"]
        subprocess.run(pip + ["-r", str(REQUIREMENTS)], check=True)
        stamp.write_text(digest)
    return venv


def ensure_prettier():
    node = bootstrap.CACHE / "node"
    digest = hashlib.sha256(" ".join(NPM_PACKAGES).encode()).hexdigest()
    stamp = node / ".crm-lifecycle-packages"
    if stamp.is_file() and stamp.read_text() == digest:
        return node / "node_modules" / ".bin"
    if not shutil.which("npm"):
        raise bootstrap.BootstrapError("make lint needs Node.js and npm for prettier.")
    bootstrap.log(f"installing prettier in {node} (once)")
    node.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(node)]
        + NPM_PACKAGES,
        check=True,
    )
    stamp.write_text(digest)
    return node / "node_modules" / ".bin"


def main():
    try:
        venv = ensure_lint_venv()
        node_bin = ensure_prettier()
    except (bootstrap.BootstrapError, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(venv / "bin"), str(node_bin), os.environ["PATH"]]),
        "PRE_COMMIT_HOME": str(bootstrap.CACHE / "pre-commit"),
        "NODE_PATH": str(node_bin.parent),
    }
    command = [
        str(venv / "bin" / "pre-commit"),
        "run",
        "--all-files",
        "--show-diff-on-failure",
    ]
    return subprocess.run(command, env=env, cwd=bootstrap.REPO_ROOT).returncode


if __name__ == "__main__":
    sys.exit(main())
