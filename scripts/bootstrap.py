#!/usr/bin/env python3
"""Prepare everything crm_lifecycle needs to run: Odoo source, virtualenv,
PostgreSQL and an Odoo configuration file.

Idempotent and cached in ``${XDG_CACHE_HOME:-~/.cache}/crm-lifecycle/<series>``:
a second call only checks that what is cached is still valid. Each series
(``SERIES=18.0``, the default, or ``SERIES=19.0``) has its own cache: Odoo
source, virtualenv, configuration file and database names.

Used as a library by ``scripts/odoo_run.py`` and ``scripts/odoo_test.py``, and
as a command (``python3 scripts/bootstrap.py``) that prints the environment
it prepared, as shell assignments.

Environment variables:

* ``SERIES``: the Odoo series, ``18.0`` (default) or ``19.0``.
* ``ODOO_SRC_18`` / ``ODOO_SRC_19`` (for that series), else ``ODOO_SRC``: an
  Odoo source tree of the series, or a git directory (bare or not) whose
  branch named after the series (else ``HEAD``) is exported into the cache.
  ``ODOO_SRC`` of another series is ignored (with a message); without one, the
  cached copy is used, else the official branch of the series is cloned.
* ``PGHOST``/``PGPORT``/``PGUSER``/``PGPASSWORD``: a PostgreSQL server to use.
* ``CRM_LIFECYCLE_PRIVATE_PG=1``: skip the reachable server and use the
  private cluster.
"""

import getpass
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

SUPPORTED_SERIES = ("18.0", "19.0")
SERIES = os.environ.get("SERIES") or SUPPORTED_SERIES[0]
OFFICIAL_REPOSITORY = "https://github.com/odoo/odoo.git"
REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    / "crm-lifecycle"
    / SERIES
)
# Folders of some Odoo forks that are not Odoo's own and must not be loaded.
FOREIGN_PATHS = ("custom_addons", "addons/attendance_location_log")
DEV_REQUIREMENTS = REPO_ROOT / "scripts" / "requirements-dev.txt"
# python-ldap needs the OpenLDAP headers to build and is only used by auth_ldap,
# which crm_lifecycle does not depend on.
SKIPPED_REQUIREMENTS = ("python-ldap",)
EMBEDDED_PG_PORT = 55432
PIP_VERSION = "pip==25.1.1"


def database_name(name):
    """The name of a database of the series: ``name`` on 18.0, ``name`` with
    the major version on another series (``crm_lifecycle_19``), so that a
    database of one series is never opened by the other."""
    if SERIES == SUPPORTED_SERIES[0]:
        return name
    major = SERIES.split(".")[0]
    head, sep, tail = name.partition("_test_")
    return f"{head}_{major}{sep}{tail}"


def demo_options(demo):
    """Options of odoo-bin to install a new database with or without demo
    data: 18.0 loads it unless ``--without-demo all``, 19.0 only with
    ``--with-demo`` (which 18.0 refuses; ``--without-demo all`` warns)."""
    if SERIES == "18.0":
        return [] if demo else ["--without-demo", "all"]
    return ["--with-demo"] if demo else []


class BootstrapError(Exception):
    """A problem the user has to fix; its message says how."""


def log(message):
    print(f"[bootstrap] {message}", file=sys.stderr, flush=True)


def run(cmd, **kwargs):
    kwargs.setdefault("check", True)
    return subprocess.run(cmd, **kwargs)  # noqa: PLW1510


# ---------------------------------------------------------------------------
# Odoo source
# ---------------------------------------------------------------------------
def _is_source_tree(path):
    return (path / "odoo-bin").is_file() and (path / "odoo" / "release.py").is_file()


def _git_dir(path):
    """Return the git directory of ``path`` (bare or work tree), or None."""
    if (path / ".git").exists():
        return path / ".git"
    if (path / "HEAD").is_file() and (path / "objects").is_dir():
        return path
    return None


def _series_of(tree):
    namespace = {}
    release = (tree / "odoo" / "release.py").read_text()
    exec(compile(release, "release.py", "exec"), namespace)  # noqa: S102
    return namespace["series"]


def _git(git_dir, *args):
    return run(
        ["git", "--git-dir", str(git_dir), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def _series_revision(git_dir):
    """The commit of ``git_dir`` to export: its branch named after the series
    (local, else of a remote), else ``HEAD``; and the series that commit is."""
    candidates = [f"refs/heads/{SERIES}"]
    candidates += [
        ref
        for ref in _git(git_dir, "for-each-ref", "--format=%(refname)").stdout.split()
        if ref.startswith("refs/remotes/") and ref.endswith(f"/{SERIES}")
    ]
    candidates.append("HEAD")
    for ref in candidates:
        rev = _git(git_dir, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        if rev.returncode:
            continue
        rev = rev.stdout.strip()
        release = _git(git_dir, "show", f"{rev}:odoo/release.py")
        if release.returncode:
            continue
        namespace = {}
        exec(compile(release.stdout, "release.py", "exec"), namespace)  # noqa: S102
        return rev, namespace["series"]
    return None, None


def _export_git_head(git_dir, target, rev):
    """Export the commit ``rev`` of ``git_dir`` into ``target`` unless already
    there."""
    stamp = target / ".crm-lifecycle-source"
    if stamp.is_file() and stamp.read_text().strip() == rev:
        return
    log(f"exporting Odoo {rev[:12]} from {git_dir} (once)")
    tmp = Path(tempfile.mkdtemp(prefix="odoo-export-", dir=target.parent))
    archive = tmp / "odoo.tar"
    run(
        ["git", "--git-dir", str(git_dir), "archive", "--format=tar", "-o"]
        + [str(archive), rev]
    )
    tree = tmp / "odoo"
    with tarfile.open(archive) as tar:
        members = [
            member
            for member in tar.getmembers()
            if not any(
                member.name == foreign or member.name.startswith(foreign + "/")
                for foreign in FOREIGN_PATHS
            )
        ]
        tar.extractall(tree, members=members, filter="data")
    archive.unlink()
    (tree / stamp.name).write_text(rev + "\n")
    if target.exists():
        shutil.rmtree(target)
    tree.rename(target)
    shutil.rmtree(tmp)


def _given_source(target):
    """The Odoo source tree ``ODOO_SRC_<major>`` or ``ODOO_SRC`` names (a git
    directory is exported into ``target``), or None."""
    variable = f"ODOO_SRC_{SERIES.split('.')[0]}"
    given = os.environ.get(variable)
    if not given:
        variable, given = "ODOO_SRC", os.environ.get("ODOO_SRC")
    if not given:
        return None
    path = Path(given).expanduser().resolve()
    if _is_source_tree(path) and not (path / "custom_addons").exists():
        tree, series = path, _series_of(path)
    elif _git_dir(path):
        rev, series = _series_revision(_git_dir(path))
        if series == SERIES:
            _export_git_head(_git_dir(path), target, rev)
        tree = target
    elif _is_source_tree(path):
        tree, series = path, _series_of(path)
    else:
        raise BootstrapError(
            f"{variable}={given} is neither an Odoo source tree (with odoo-bin)"
            " nor a git directory of one."
        )
    if series == SERIES:
        return tree
    if variable == "ODOO_SRC":
        # ODOO_SRC set for one series while testing another: use the cache
        log(f"ODOO_SRC={given} is Odoo {series}, not {SERIES}: ignored")
        return None
    raise BootstrapError(f"{variable}={given} is Odoo {series}, not {SERIES}.")


def ensure_odoo_source():
    if SERIES not in SUPPORTED_SERIES:
        raise BootstrapError(
            f"SERIES={SERIES} is not supported: {', '.join(SUPPORTED_SERIES)}."
        )
    CACHE.mkdir(parents=True, exist_ok=True)
    target = CACHE / "odoo"
    tree = _given_source(target) or (target if _is_source_tree(target) else None)
    if not tree:
        log(f"cloning Odoo {SERIES} from {OFFICIAL_REPOSITORY} (once)")
        tmp = CACHE / "odoo.clone"
        shutil.rmtree(tmp, ignore_errors=True)
        result = run(
            ["git", "clone", "--quiet", "--depth", "1", "--branch", SERIES]
            + [OFFICIAL_REPOSITORY, str(tmp)],
            check=False,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        )
        if result.returncode:
            shutil.rmtree(tmp, ignore_errors=True)
            raise BootstrapError(
                f"No Odoo {SERIES} source: no ODOO_SRC of {SERIES}, nothing is cached"
                f" in {target} and {OFFICIAL_REPOSITORY} cannot be cloned.\n"
                f"Set ODOO_SRC to an Odoo {SERIES} source tree or git directory,"
                f" e.g. SERIES={SERIES} ODOO_SRC=~/src/odoo make test"
            )
        tmp.rename(target)
        tree = target
    if not _is_source_tree(tree):
        raise BootstrapError(f"{tree} is not an Odoo source tree (no odoo-bin).")
    series = _series_of(tree)
    if series != SERIES:
        raise BootstrapError(f"{tree} is Odoo {series}; crm_lifecycle needs {SERIES}.")
    return tree


# ---------------------------------------------------------------------------
# virtualenv
# ---------------------------------------------------------------------------
def _requirements(odoo_src):
    lines = (odoo_src / "requirements.txt").read_text().splitlines()
    kept = [
        line
        for line in lines
        if not line.strip().lower().startswith(SKIPPED_REQUIREMENTS)
    ]
    return "\n".join(kept) + "\n"


def ensure_venv(odoo_src):
    venv = CACHE / "venv"
    python = venv / "bin" / "python"
    odoo_requirements = _requirements(odoo_src)
    dev_requirements = DEV_REQUIREMENTS.read_text()
    digest = hashlib.sha256(
        (sys.version + odoo_requirements + dev_requirements).encode()
    ).hexdigest()
    stamp = venv / ".crm-lifecycle-requirements"
    if not (python.exists() and stamp.is_file() and stamp.read_text() == digest):
        log(f"installing the virtualenv in {venv} (a few minutes, once)")
        if not python.exists():
            run([sys.executable, "-m", "venv", str(venv)])
        requirements = venv / "odoo-requirements.txt"
        requirements.write_text(odoo_requirements)
        constraints = venv / "build-constraints.txt"
        # cbor2, gevent and passlib still import pkg_resources while building.
        constraints.write_text("setuptools<81\n")
        # pip applies PIP_CONSTRAINT to build environments up to 25.2 and
        # PIP_BUILD_CONSTRAINT from 25.3 on: set both, and pin pip.
        env = {
            **os.environ,
            "PIP_CONSTRAINT": str(constraints),
            "PIP_BUILD_CONSTRAINT": str(constraints),
        }
        pip = [str(python), "-m", "pip", "install", "--quiet"]
        run(pip + [PIP_VERSION, "wheel", "setuptools<81"], env=env)
        run(pip + ["-r", str(requirements), "-r", str(DEV_REQUIREMENTS)], env=env)
        stamp.write_text(digest)
    # Make ``import odoo`` work in the virtualenv (pytest-odoo, scripts).
    site_packages = run(
        [
            str(python),
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ],
        capture_output=True,
        text=True,
    ).stdout.strip()
    pth = Path(site_packages) / "odoo-source.pth"
    if not pth.is_file() or pth.read_text().strip() != str(odoo_src):
        pth.write_text(f"{odoo_src}\n")
    return venv


# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------
PGTOOLS = REPO_ROOT / "scripts" / "pgtools.py"


def pg_env(server):
    """Environment for libpq clients (psql, psycopg2) to reach ``server``."""
    env = {**os.environ}
    for key, name in (("host", "PGHOST"), ("port", "PGPORT"), ("user", "PGUSER")):
        if server.get(key):
            env[name] = str(server[key])
    return env


def prepared_pg_env(prepared):
    """``pg_env`` for what ``bootstrap()`` returned."""
    return pg_env(
        {
            "host": prepared["PGHOST"],
            "port": prepared["PGPORT"],
            "user": prepared["PGUSER"],
        }
    )


def pgtools(venv, *args, env=None):
    """Run ``scripts/pgtools.py`` with the virtualenv's psycopg2."""
    return run(
        [str(venv / "bin" / "python"), str(PGTOOLS), *args],
        capture_output=True,
        text=True,
        env=env,
    ).stdout.strip()


def _probe(venv, params):
    try:
        return json.loads(pgtools(venv, "probe", json.dumps(params)))
    except (ValueError, subprocess.CalledProcessError) as error:
        return {"error": str(error)}


def _free_port(preferred=None):
    candidates = [preferred] if preferred else []
    for port in candidates:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _find_pg_binary(name):
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


def _db_user():
    user = os.environ.get("PGUSER") or getpass.getuser()
    return None if user == "postgres" else user


def _system_server(venv):
    """Connection parameters of a reachable server, or None."""
    if os.environ.get("CRM_LIFECYCLE_PRIVATE_PG"):
        return None
    user = _db_user()
    if not user:
        log("PGUSER=postgres is refused by Odoo; using a private cluster")
        return None
    attempts = []
    if os.environ.get("PGHOST"):
        attempts.append({"host": os.environ["PGHOST"]})
    else:
        attempts += [{"host": "127.0.0.1"}, {}]  # TCP, then the local socket
    for params in attempts:
        params = {**params, "user": user, "port": int(os.environ.get("PGPORT", 5432))}
        if os.environ.get("PGPASSWORD"):
            params["password"] = os.environ["PGPASSWORD"]
        answer = _probe(venv, params)
        if answer.get("createdb"):
            return params
        if "error" not in answer:
            log(f"role {user} may not create databases; using a private cluster")
            return None
    return None


def _private_cluster_dir():
    # A PostgreSQL server refuses to run as root: it then runs as the
    # ``postgres`` system user, which cannot enter root's home folder.
    if os.geteuid() == 0:
        return Path(tempfile.gettempdir()) / f"crm-lifecycle-{SERIES}-pg"
    return CACHE / "pg"


def _as_cluster_owner(cmd):
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + cmd
    return cmd


def _private_server():
    initdb = _find_pg_binary("initdb")
    pg_ctl = _find_pg_binary("pg_ctl")
    if not (initdb and pg_ctl):
        raise BootstrapError(
            "No PostgreSQL server reachable and no PostgreSQL binaries to start one.\n"
            "Install PostgreSQL (Debian/Ubuntu: sudo apt-get install postgresql;"
            " macOS: brew install postgresql), or point PGHOST/PGPORT/PGUSER at a"
            " server where that role may create databases (not the postgres role)."
        )
    if (
        os.geteuid() == 0
        and run(["id", "postgres"], capture_output=True, check=False).returncode
    ):
        raise BootstrapError(
            "Running as root needs the postgres system user for the private cluster."
        )
    root = _private_cluster_dir()
    data, sockets = root / "data", root / "run"
    user = "odoo"
    if not (data / "PG_VERSION").is_file():
        log(f"creating a private PostgreSQL cluster in {data} (once)")
        shutil.rmtree(root, ignore_errors=True)
        sockets.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
            shutil.chown(sockets, "postgres")
        run(
            _as_cluster_owner(
                [initdb, "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8"]
                + ["--locale=C.UTF-8", "--no-sync"]
            ),
            stdout=subprocess.DEVNULL,
        )
    port_file = root / "port"
    port = int(port_file.read_text()) if port_file.is_file() else EMBEDDED_PG_PORT
    status = run(
        _as_cluster_owner([pg_ctl, "-D", str(data), "status"]),
        capture_output=True,
        check=False,
    )
    if status.returncode != 0:
        port = _free_port(port)
        log(f"starting the private PostgreSQL cluster on 127.0.0.1:{port}")
        options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(
            _as_cluster_owner(
                [pg_ctl, "-D", str(data), "-l", str(root / "postgresql.log")]
                + ["-o", options, "-w", "start"]
            ),
            stdout=subprocess.DEVNULL,
        )
        (root / "port").write_text(str(port))
    return {"host": "127.0.0.1", "port": port, "user": user}


def ensure_postgres(venv):
    server = _system_server(venv)
    if server:
        return server
    server = _private_server()
    answer = _probe(venv, server)
    if not answer.get("createdb"):
        raise BootstrapError(
            f"The private PostgreSQL cluster does not answer: {answer}"
        )
    return server


# ---------------------------------------------------------------------------
# Odoo configuration
# ---------------------------------------------------------------------------
def write_config(odoo_src, server):
    # One file per checkout: two clones of this repository share the cache.
    tag = hashlib.sha256(str(REPO_ROOT).encode()).hexdigest()[:8]
    config = CACHE / "conf" / f"odoo-{tag}.conf"
    config.parent.mkdir(parents=True, exist_ok=True)
    addons = [odoo_src / "odoo" / "addons", odoo_src / "addons", REPO_ROOT]
    lines = [
        "[options]",
        f"addons_path = {','.join(str(path) for path in addons)}",
        f"data_dir = {CACHE / 'data'}",
        # no "False" for what is not set: 19.0 warns on non-boolean options
        *([f"db_host = {server['host']}"] if server.get("host") else []),
        f"db_port = {server['port']}",
        f"db_user = {server['user']}",
        *([f"db_password = {server['password']}"] if server.get("password") else []),
        "http_interface = 127.0.0.1",
        "list_db = True",
    ]
    config.write_text("\n".join(lines) + "\n")
    return config


def bootstrap():
    """Prepare everything and return a dict describing it."""
    started = time.monotonic()
    odoo_src = ensure_odoo_source()
    venv = ensure_venv(odoo_src)
    server = ensure_postgres(venv)
    config = write_config(odoo_src, server)
    log(f"ready in {time.monotonic() - started:.0f}s (cache {CACHE})")
    return {
        "ODOO_SRC": str(odoo_src),
        "ODOO_BIN": str(odoo_src / "odoo-bin"),
        "VENV": str(venv),
        "PYTHON": str(venv / "bin" / "python"),
        "ODOO_RC": str(config),
        "PGHOST": server.get("host", ""),
        "PGPORT": str(server["port"]),
        "PGUSER": server["user"],
        "SERIES": SERIES,
        # odoo-bin's options for a new database with / without demo data
        "ODOO_DEMO": " ".join(demo_options(True)),
        "ODOO_NO_DEMO": " ".join(demo_options(False)),
    }


def main():
    try:
        prepared = bootstrap()
    except BootstrapError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as error:
        print(
            f"error: command failed ({error.returncode}): {error.cmd}", file=sys.stderr
        )
        return 2
    for key, value in prepared.items():
        print(f"{key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
