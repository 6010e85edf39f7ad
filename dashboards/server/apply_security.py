"""Apply dashboards/security.yaml to Superset's metadata; create or update users.

Runs inside the Superset virtual environment, started by ``pipelines.lib.superset``:

    python apply_security.py roles <security.yaml>
    python apply_security.py add-users <security.yaml>
        (stdin: a JSON list of {"username", "email", "roles", "manager_id", "password"};
        passwords come through stdin, so they never show in ``ps``)
    python apply_security.py users <security.yaml>          (JSON: one object per user)
    python apply_security.py remove <security.yaml> <username>

``roles`` is idempotent and authoritative: every role of the file is reset to exactly its
permissions (permission sets, dataset access, schema access), the deny-by-default base
Row Level Security filter is rebuilt on the listed datasets, and each dashboard's role
list is set (DASHBOARD_RBAC); ``databases`` grants a role a whole database (the
Analyst's masked warehouse). ``add-users`` creates each listed user or updates its roles
and password, all in one process (loading Superset takes seconds; a user takes
milliseconds); every entry is checked before the first is applied. With a ``manager_id``
it also gives the user a personal role ``manager:<id>`` whose regular RLS filter lets
them see that manager's rows. ``users`` lists users with their
roles and manager id; ``remove`` deletes a user (never the last active Admin); the
personal role stays while another user holds it and is dropped with its filter otherwise.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import yaml

BASE_FILTER_NAME = "manager scope: deny by default"


def _die(msg: str) -> None:
    print(msg, file=sys.stderr)
    raise SystemExit(1)


def _datasets_by_name(spec: dict[str, Any]) -> dict[str, Any]:
    from superset import db
    from superset.connectors.sqla.models import SqlaTable
    from superset.models.core import Database

    database = db.session.query(Database).filter_by(database_name=spec["database"]).one_or_none()
    if database is None:
        _die(f"database {spec['database']!r} not found: import the bundle first")
    tables = db.session.query(SqlaTable).filter_by(database_id=database.id).all()
    return {t.table_name: t for t in tables}


def _permission(sm: Any, perm: str, view: str) -> Any:
    pv = sm.find_permission_view_menu(perm, view)
    if pv is None:
        _die(f"security.yaml: permission {perm!r} on {view!r} does not exist in this Superset")
    return pv


def _expand(sm: Any, spec: dict[str, Any], set_names: list[str]) -> list[Any]:
    out: list[Any] = []
    for set_name in set_names:
        if set_name not in spec["permission_sets"]:
            _die(f"security.yaml: unknown permission set {set_name!r}")
        for item in spec["permission_sets"][set_name]:
            if item.startswith("role:"):
                role = sm.find_role(item[5:])
                if role is None:
                    _die(f"security.yaml: built-in role {item[5:]!r} not found")
                out.extend(role.permissions)
            else:
                perm, _, view = item.partition(" on ")
                out.append(_permission(sm, perm.strip(), view.strip()))
    return out


def apply_roles(spec: dict[str, Any]) -> None:
    from superset import db
    from superset import security_manager as sm
    from superset.connectors.sqla.models import RowLevelSecurityFilter
    from superset.models.core import Database
    from superset.models.dashboard import Dashboard
    from superset.utils.core import RowLevelSecurityFilterType

    datasets = _datasets_by_name(spec)
    contacts = set(spec.get("contacts_datasets") or [])
    for name in contacts | set(spec["manager_scope"]["datasets"]):
        if name not in datasets:
            _die(f"security.yaml: dataset {name!r} not in Superset: import the bundle first")

    dashboards = {d.slug: d for d in db.session.query(Dashboard).all() if d.slug}
    dashboard_roles: dict[str, list[Any]] = {slug: [] for slug in dashboards}
    for role_name, rdef in spec["roles"].items():
        if role_name == "Admin":
            _die("security.yaml: Admin is Superset's own role; do not redefine it")
        role = sm.find_role(role_name) or sm.add_role(role_name)
        pvms = _expand(sm, spec, list(rdef.get("permissions") or []))
        names = (
            sorted(datasets) if rdef.get("datasets") == "all" else list(rdef.get("datasets") or [])
        )
        for name in names:
            if name not in datasets:
                _die(f"security.yaml: role {role_name}: unknown dataset {name!r}")
            if name in contacts and not rdef.get("contacts"):
                if rdef.get("datasets") == "all":
                    continue
                _die(f"security.yaml: role {role_name} may not see contacts dataset {name!r}")
            table = datasets[name]
            pvms.append(sm.add_permission_view_menu("datasource_access", table.perm))
        for schema in rdef.get("schemas") or []:
            perm = sm.get_schema_perm(spec["database"], None, schema)
            pvms.append(sm.add_permission_view_menu("schema_access", perm))
        for db_name in rdef.get("databases") or []:
            granted = db.session.query(Database).filter_by(database_name=db_name).one_or_none()
            if granted is None:
                _die(f"security.yaml: role {role_name}: database {db_name!r} not in Superset")
            pvms.append(sm.add_permission_view_menu("database_access", granted.perm))
        unique = {pv.id: pv for pv in pvms if pv is not None}
        role.permissions = list(unique.values())
        wanted = list(dashboards) if rdef.get("dashboards") == "all" else rdef.get("dashboards")
        for slug in wanted or []:
            if slug not in dashboards:
                _die(f"security.yaml: role {role_name}: unknown dashboard slug {slug!r}")
            dashboard_roles[slug].append(role)
    for slug, roles in dashboard_roles.items():
        dashboards[slug].roles = roles

    scope = spec["manager_scope"]
    tables = [datasets[name] for name in scope["datasets"]]
    exempt = []
    for name in scope["exempt_roles"]:
        role = sm.find_role(name)
        if role is None:
            _die(f"security.yaml: exempt role {name!r} does not exist")
        exempt.append(role)
    fields = {
        "filter_type": RowLevelSecurityFilterType.BASE,
        "description": "Deny by default: no rows unless a regular filter of the group allows.",
        "group_key": scope["group_key"],
        "clause": "1 = 0",
    }
    _upsert_rls_filter(BASE_FILTER_NAME, fields, tables, exempt)
    # personal manager filters follow the dataset list too
    for flt in db.session.query(RowLevelSecurityFilter).all():
        if flt.group_key == scope["group_key"] and flt.name != BASE_FILTER_NAME:
            flt.tables = tables
    db.session.commit()
    print(f"applied {len(spec['roles'])} roles, base filter on {len(tables)} datasets")


def _upsert_rls_filter(name: str, fields: dict[str, Any], tables: list, roles: list) -> None:
    """The Row Level Security filter ``name`` created, or updated in place, with ``fields``,
    on ``tables`` for ``roles``."""
    from superset import db
    from superset.connectors.sqla.models import RowLevelSecurityFilter

    flt = db.session.query(RowLevelSecurityFilter).filter_by(name=name).one_or_none()
    if flt is None:
        flt = RowLevelSecurityFilter(name=name, **fields)
        db.session.add(flt)
    for key, value in fields.items():
        setattr(flt, key, value)
    flt.tables = tables
    flt.roles = roles


def _user_entries(raw: str) -> list[dict[str, Any]]:
    """The JSON list of ``add-users`` on stdin, every entry checked before any is applied."""
    from superset import security_manager as sm

    try:
        entries = json.loads(raw)
    except ValueError as exc:
        _die(f"add-users: stdin is not JSON: {exc}")
    if not isinstance(entries, list):
        _die("add-users: stdin must hold a JSON list of users")
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            _die(f"add-users: entry {i} is not an object")
        username = entry.get("username")
        if not isinstance(username, str) or not username:
            _die(f"add-users: entry {i} has no username")
        if username in seen:
            _die(f"add-users: user {username} is listed twice")
        seen.add(username)
        password = entry.get("password")
        if not isinstance(password, str) or len(password) < 8:
            _die(f"add-users: password of {username}: at least 8 characters")
        roles = entry.get("roles")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            _die(f"add-users: roles of {username} must be a list of names")
        for name in roles:
            if sm.find_role(name) is None:
                _die(f"no such role: {name} (user {username})")
        manager_id = entry.get("manager_id")
        if manager_id is not None and not isinstance(manager_id, str):
            _die(f"add-users: manager_id of {username} must be a string")
    return entries


def apply_user(
    spec: dict[str, Any],
    username: str,
    email: str,
    role_names: list[str],
    manager_id: str | None,
    password: str,
    datasets: dict[str, Any] | None = None,
) -> None:
    """Create or update one user; ``datasets`` (by name) saves a query per manager user."""
    from superset import db
    from superset import security_manager as sm
    from superset.utils.core import RowLevelSecurityFilterType

    roles = []
    for name in role_names:
        role = sm.find_role(name)
        if role is None:
            _die(f"no such role: {name}")
        roles.append(role)
    if manager_id:
        scope = spec["manager_scope"]
        personal = sm.find_role(f"manager:{manager_id}") or sm.add_role(f"manager:{manager_id}")
        name = f"manager scope: {manager_id}"
        if datasets is None:
            datasets = _datasets_by_name(spec)
        quoted = manager_id.replace("'", "''")
        fields = {
            "filter_type": RowLevelSecurityFilterType.REGULAR,
            "description": f"Rows of manager {manager_id}",
            "group_key": scope["group_key"],
            "clause": f"{scope['column']} = '{quoted}'",
        }
        _upsert_rls_filter(name, fields, [datasets[n] for n in scope["datasets"]], [personal])
        roles.append(personal)
    user = sm.find_user(username=username)
    if user is None:
        user = sm.add_user(username, username, "user", email, roles, password=password)
        if not user:
            _die(f"could not create user {username}")
    else:
        user.roles = roles
        user.email = email
        user.active = True
        sm.reset_password(user.id, password)
    db.session.commit()
    print(f"user {username}: roles {', '.join(r.name for r in roles)}")


MANAGER_ROLE_PREFIX = "manager:"


def list_users() -> list[dict[str, Any]]:
    from superset import security_manager as sm

    out = []
    for user in sorted(sm.get_all_users(), key=lambda u: u.username):
        names = sorted(r.name for r in user.roles)
        managers = [
            n[len(MANAGER_ROLE_PREFIX) :] for n in names if n.startswith(MANAGER_ROLE_PREFIX)
        ]
        out.append(
            {
                "username": user.username,
                "email": user.email,
                "active": bool(user.active),
                "roles": [n for n in names if not n.startswith(MANAGER_ROLE_PREFIX)],
                "manager_id": managers[0] if managers else None,
                "last_login": user.last_login.isoformat(timespec="seconds")
                if user.last_login
                else None,
            }
        )
    return out


def remove_user(username: str) -> None:
    from superset import db
    from superset import security_manager as sm
    from superset.connectors.sqla.models import RowLevelSecurityFilter

    user = sm.find_user(username=username)
    if user is None:
        _die(f"no such user: {username}")
    if any(r.name == "Admin" for r in user.roles):
        admins = [
            u
            for u in sm.get_all_users()
            if u.active and u.id != user.id and any(r.name == "Admin" for r in u.roles)
        ]
        if not admins:
            _die(f"{username} is the last active Admin: add another Admin first")
    from sqlalchemy.exc import IntegrityError

    personal = [r for r in user.roles if r.name.startswith(MANAGER_ROLE_PREFIX)]
    user.roles = []
    try:
        db.session.delete(user)
        db.session.flush()
    except IntegrityError:  # owns charts, dashboards or saved queries: keep it, inactive
        db.session.rollback()
        user = sm.find_user(username=username)
        user.active = False
        user.roles = []
        db.session.commit()
        print(f"user {username}: deactivated (owns objects in Superset), roles removed")
        return
    for role in personal:
        if any(role in u.roles for u in sm.get_all_users()):
            continue
        for flt in db.session.query(RowLevelSecurityFilter).all():
            if role in flt.roles:
                db.session.delete(flt)
        db.session.delete(role)
    db.session.commit()
    print(f"user {username}: removed")


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] not in {"roles", "add-users", "users", "remove"}:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[2], encoding="utf-8") as fh:
        spec = yaml.safe_load(fh)

    from superset.app import create_app

    app = create_app()
    with app.app_context():
        if argv[1] == "roles":
            apply_roles(spec)
        elif argv[1] == "users":
            print(json.dumps(list_users()))
        elif argv[1] == "remove":
            if len(argv) != 4:
                print(__doc__, file=sys.stderr)
                return 2
            remove_user(argv[3])
        else:
            entries = _user_entries(sys.stdin.read())
            datasets = (
                _datasets_by_name(spec) if any(e.get("manager_id") for e in entries) else None
            )
            for entry in entries:
                apply_user(
                    spec,
                    entry["username"],
                    entry.get("email") or f"{entry['username']}@localhost",
                    entry["roles"],
                    entry.get("manager_id") or None,
                    entry["password"],
                    datasets,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
