#!/usr/bin/env python3
"""README command 1 (``make run``): Odoo with crm_lifecycle, its dashboard
(crm_lifecycle_dashboard, with Odoo's Dashboards app) and demo data.

Creates the database ``crm_lifecycle`` (``crm_lifecycle_19`` with
``SERIES=19.0``) with the modules and demo data when it
does not exist, installs a module missing from it, updates the modules when
their files changed since the last run, then serves Odoo on
http://127.0.0.1:8069 (``PORT`` to change it, ``CRM_LIFECYCLE_DB`` for another
database name).
"""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bootstrap  # noqa: E402

MODULES = ["crm_lifecycle", "crm_lifecycle_dashboard"]


def module_digest():
    """A digest of the modules' files, to update the database only when needed."""
    digest = hashlib.sha256()
    for module in MODULES:
        root = bootstrap.REPO_ROOT / module
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(bootstrap.REPO_ROOT)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def module_state(prepared, database, module):
    """The module's state in ``database``, or None when there is no such
    database or module."""
    env = bootstrap.prepared_pg_env(prepared)
    state = bootstrap.pgtools(
        Path(prepared["VENV"]), "module-state", database, module, env=env
    )
    return state or None


def main():
    try:
        prepared = bootstrap.bootstrap()
    except bootstrap.BootstrapError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    database = os.environ.get("CRM_LIFECYCLE_DB") or bootstrap.database_name(
        "crm_lifecycle"
    )
    port = os.environ.get("PORT", "8069")
    odoo = [prepared["PYTHON"], prepared["ODOO_BIN"], "--config", prepared["ODOO_RC"]]
    odoo += ["--database", database]
    stamp = bootstrap.CACHE / "run" / f"{database}.module-digest"
    stamp.parent.mkdir(exist_ok=True)
    digest = module_digest()
    missing = [
        module
        for module in MODULES
        if module_state(prepared, database, module) != "installed"
    ]
    installed = [module for module in MODULES if module not in missing]
    step = []
    if missing:
        names = ",".join(missing)
        print(f"[run] installing {names} with demo data in database {database}")
        step += ["--init", names, *bootstrap.demo_options(True)]
    if installed and (not stamp.is_file() or stamp.read_text() != digest):
        names = ",".join(installed)
        print(f"[run] updating {names} in database {database}")
        step += ["--update", names]
    if step:
        http = ["--http-port", str(bootstrap._free_port()), "--max-cron-threads", "0"]
        subprocess.run(odoo + step + http + ["--stop-after-init"], check=True)
        stamp.write_text(digest)
    url = f"http://127.0.0.1:{port}"
    print(
        f"[run] Odoo with crm_lifecycle: {url}/web/login  login: admin  password: admin"
    )
    print("[run] stop it with Ctrl+C", flush=True)
    command = odoo + ["--db-filter", f"^{database}$", "--http-port", port]
    os.execv(command[0], command)


if __name__ == "__main__":
    sys.exit(main())
