"""Small PostgreSQL helpers run by the cached virtualenv's Python (psycopg2).

``python pgtools.py probe '<json connection parameters>'``
    prints {"user": ..., "createdb": bool} or {"error": ...}
``python pgtools.py drop <database>``
    drops the database if it exists
``python pgtools.py module-state <database> <module>``
    prints the module's state, "absent", "empty", or nothing (no database)

Connection parameters for ``drop`` and ``module-state`` come from PG* variables.
"""

import json
import sys

import psycopg2
from psycopg2 import sql


def probe(params):
    try:
        conn = psycopg2.connect(dbname="postgres", connect_timeout=5, **params)
    except psycopg2.Error as error:
        return {"error": str(error).strip()}
    with conn, conn.cursor() as cr:
        cr.execute(
            "SELECT current_user, rolcreatedb OR rolsuper FROM pg_roles"
            " WHERE rolname = current_user"
        )
        user, can_create = cr.fetchone()
    conn.close()
    return {"user": user, "createdb": can_create}


def drop(database):
    conn = psycopg2.connect(dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cr:
        cr.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(database)
            )
        )
    conn.close()


def module_state(database, module):
    try:
        conn = psycopg2.connect(dbname=database)
    except psycopg2.OperationalError:
        return ""
    with conn, conn.cursor() as cr:
        cr.execute("SELECT to_regclass('ir_module_module') IS NOT NULL")
        if not cr.fetchone()[0]:
            return "empty"
        cr.execute("SELECT state FROM ir_module_module WHERE name = %s", [module])
        row = cr.fetchone()
    conn.close()
    return row[0] if row else "absent"


def main(argv):
    command, *args = argv
    if command == "probe":
        sys.stdout.write(json.dumps(probe(json.loads(args[0]))) + "\n")
    elif command == "drop":
        drop(args[0])
    elif command == "module-state":
        sys.stdout.write(module_state(*args) + "\n")
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv[1:])
