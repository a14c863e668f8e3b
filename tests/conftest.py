"""Fixtures for the repository-level tests, run by pytest-odoo from ``make test``.

``scripts/odoo_test.py`` passes the prepared environment (``PYTHON``,
``ODOO_BIN``, ``ODOO_RC``, ``ODOO_DEMO``/``ODOO_NO_DEMO``: the options of
odoo-bin for a new database with or without demo data on the series) and the
database where the module was installed.
"""

import datetime
import json
import os
import socket
import subprocess
import time
import urllib.request
import xmlrpc.client
from contextlib import closing

import pytest

import odoo
from odoo.modules.registry import Registry
from odoo.tools import SQL

MAJOR = odoo.release.version_info[0]
# res.users' groups (crm_lifecycle/series.py says so for the addon)
USER_GROUPS = "group_ids" if MAJOR >= 19 else "groups_id"
# the upgrade from 18.0.1.0.0, a release of 18.0 only: not on another series
collect_ignore = ["test_migration.py"] if MAJOR >= 19 else []


def demo_options(demo):
    """odoo-bin's options for a new database with or without demo data."""
    default = "" if demo else "--without-demo all"
    return os.environ.get("ODOO_DEMO" if demo else "ODOO_NO_DEMO", default).split()


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def database():
    name = odoo.tools.config["db_name"]
    # 19.0 keeps a list of database names
    return name[0] if isinstance(name, list | tuple) else name


@pytest.fixture
def scratch_database(database):
    name = f"{database}_lifecycle"
    yield name
    odoo.sql_db.close_db(name)
    with closing(odoo.sql_db.db_connect("postgres").cursor()) as cr:
        cr._cnx.autocommit = True  # DROP DATABASE runs outside a transaction
        cr.execute(SQL("DROP DATABASE IF EXISTS %s", SQL.identifier(name)))


def start_odoo(database, *options):
    """Start an Odoo server on a free port serving ``database`` with odoo-bin's
    ``options``; (process, URL) once it answers."""
    port = _free_port()
    command = [
        os.environ["PYTHON"],
        os.environ["ODOO_BIN"],
        "--config",
        os.environ["ODOO_RC"],
        "--database",
        database,
        "--db-filter",
        f"^{database}$",
        "--http-port",
        str(port),
        *options,
    ]
    process = subprocess.Popen(command)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/web/login", timeout=5) as response:
                if response.status == 200:
                    return process, url
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"Odoo did not start on {url}")
            time.sleep(0.5)


@pytest.fixture(scope="session")
def odoo_server(database):
    """An Odoo server on a free port serving the test database, or the running
    server named by ``CRM_LIFECYCLE_URL`` (e.g. the one of ``make run``)."""
    if os.environ.get("CRM_LIFECYCLE_URL"):
        yield os.environ["CRM_LIFECYCLE_URL"].rstrip("/")
        return
    process, url = start_odoo(
        database, "--max-cron-threads", "0", "--log-level", "warn"
    )
    yield url
    process.terminate()
    process.wait(timeout=30)


class XmlRpcClient:
    """What an external integration does: log in, then call models."""

    def __init__(self, url, database, login="admin", password="admin"):
        self.database = database
        self.password = password
        common = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/common")
        self.uid = common.authenticate(database, login, password, {})
        self.models = xmlrpc.client.ServerProxy(
            f"{url}/xmlrpc/2/object", allow_none=True
        )

    def call(self, model, method, *args, **kwargs):
        return self.models.execute_kw(
            self.database, self.uid, self.password, model, method, list(args), kwargs
        )

    # what the JSON-2 client below offers too
    def create(self, model, values, context=None):
        return self.call(model, "create", values, context=context or {})

    def records(self, model, method, ids, **kwargs):
        return self.call(model, method, ids, **kwargs)


class Json2Client:
    """The external API of 19.0 (XML-RPC is deprecated there): ``POST
    /json/2/<model>/<method>`` with a bearer API key and named arguments."""

    def __init__(self, url, database, key):
        self.url = url
        self.database = database
        self.key = key

    def call(self, model, method, **kwargs):
        request = urllib.request.Request(
            f"{self.url}/json/2/{model}/{method}",
            data=json.dumps(kwargs).encode(),
            headers={
                "Authorization": f"bearer {self.key}",
                "Content-Type": "application/json",
                "X-Odoo-Database": self.database,
            },
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.load(response)

    def create(self, model, values, context=None):
        [record_id] = self.call(
            model, "create", vals_list=[values], context=context or {}
        )
        return record_id

    def records(self, model, method, ids, **kwargs):
        return self.call(model, method, ids=ids, **kwargs)


@pytest.fixture(scope="session")
def xmlrpc_admin(odoo_server, database):
    return XmlRpcClient(odoo_server, database)


@pytest.fixture(scope="session")
def json2_admin(odoo_server, database):
    """A JSON-2 client (19.0) with an API key of admin, valid for a day."""
    with Registry(database).cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        admin = env.ref("base.user_admin")
        key = (
            env["res.users.apikeys"]
            .with_user(admin)
            .sudo()
            ._generate(
                None,
                "crm_lifecycle tests",
                datetime.datetime.now() + datetime.timedelta(days=1),
            )
        )
    return Json2Client(odoo_server, database, key)


@pytest.fixture(scope="session")
def xmlrpc_login(odoo_server, database):
    """An XML-RPC client logged in as another user: ``xmlrpc_login(login,
    password)``."""

    def login(user_login, password):
        return XmlRpcClient(odoo_server, database, user_login, password)

    return login
