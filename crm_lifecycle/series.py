# Copyright 2026 crm_lifecycle contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""What differs between the Odoo series crm_lifecycle runs on (18.0 and
19.0): the one place that knows, so that the rest of the code base is the
same on both.

- SQL constraints: ``_sql_constraints`` on 18.0, ``models.Constraint``
  attributes on 19.0 (where ``_sql_constraints`` only warns and creates no
  constraint): ``sql_constraints`` declares them from one definition.
- Domains: ``odoo.osv.expression`` on 18.0, ``odoo.fields.Domain`` on 19.0.
- Cron progress: ``ir.cron._notify_progress`` and a commit on 18.0,
  ``ir.cron._commit_progress`` on 19.0.
- Groups: ``res.groups.category_id`` and ``users`` on 18.0,
  ``privilege_id`` (``res.groups.privilege``) and ``user_ids`` on 19.0;
  ``groups_id`` of users and window actions is ``group_ids`` on 19.0.
- Field access: ``check_field_access_rights`` on 18.0,
  ``_check_field_access`` on 19.0.
- RPC: ``odoo.api.call_kw`` and ``check_method_name`` on 18.0,
  ``odoo.service.model.call_kw`` and ``get_public_method`` on 19.0.
- Dashboards: ``get_readonly_dashboard`` on 18.0,
  ``_get_serialized_readonly_dashboard`` (JSON) on 19.0.
- Messages: ``_message_compute_author`` takes ``raise_on_email`` on 18.0
  only; ``_notify_get_reply_to`` takes the author on 19.0 only.
- Pricelists: on 19.0 a partner has no pricelist unless the Pricelists
  feature (``product.group_product_pricelist``) is on.
- Grouped reads of the web client: ``read_group`` (lazy=False) on 18.0,
  ``formatted_read_group`` on 19.0 (where ``read_group`` is deprecated).
"""

import json

from odoo import Command, api, models, release

MAJOR = release.version_info[0]

try:  # 19.0
    from odoo.fields import Domain
except ImportError:  # 18.0
    Domain = None
    from odoo.osv import expression

# the name of a field that differs between the series
USER_GROUPS = "group_ids" if MAJOR >= 19 else "groups_id"  # res.users
ACTION_GROUPS = "group_ids" if MAJOR >= 19 else "groups_id"  # ir.actions.*
GROUP_USERS = "user_ids" if MAJOR >= 19 else "users"  # res.groups
PRICELIST_FEATURE = "product.group_product_pricelist"


def sql_constraints(*constraints):
    """Class decorator declaring the SQL constraints of a model, given as
    ``(name, definition, message)``: as Odoo 18.0's ``_sql_constraints``, or
    as Odoo 19.0's ``models.Constraint`` attributes ``_<name>``. Both create
    the database constraint ``<table>_<name>``."""

    def declare(cls):
        if MAJOR < 19:
            cls._sql_constraints = list(constraints)
            return cls
        for name, definition, message in constraints:
            constraint = models.Constraint(definition, message)
            setattr(cls, f"_{name}", constraint)
            # what Python does for an attribute of the class body
            constraint.__set_name__(cls, f"_{name}")
        return cls

    return declare


def domain_and(domains):
    """The conjunction of ``domains``, as a list."""
    if Domain is not None:
        return list(Domain.AND(domains))
    return expression.AND(domains)


def domain_or(domains):
    """The disjunction of ``domains``, as a list."""
    if Domain is not None:
        return list(Domain.OR(domains))
    return expression.OR(domains)


def validate_domain(domain, model):
    """Raise when ``domain`` is not a valid domain over ``model``."""
    if Domain is not None:
        Domain(domain).validate(model)
    else:
        expression.expression(domain, model)


def commit_progress(env, processed, done, remaining):
    """Commit the batch a cron just processed (``processed`` items, ``done``
    in all, ``remaining`` left) and show the progress of the cron."""
    if MAJOR >= 19:
        env["ir.cron"]._commit_progress(processed, remaining=remaining)
        return
    env["ir.cron"]._notify_progress(done=done, remaining=remaining)
    env.cr.commit()  # pylint: disable=invalid-commit


def check_field_read(model, name):
    """Raise unless the current user may read the field ``name`` of
    ``model``."""
    if MAJOR >= 19:
        model._check_field_access(model._fields[name], "read")
    else:
        model.check_field_access_rights("read", [name])


def call_kw(records, method, args, kwargs):
    """Call ``method`` of ``records`` as the RPC dispatcher does (tests)."""
    if MAJOR >= 19:
        from odoo.service.model import call_kw as service_call_kw

        return service_call_kw(records, method, args, kwargs)
    return api.call_kw(records, method, args, kwargs)


def check_public_method(model, name):
    """Raise ``AccessError`` as the RPC dispatcher does when ``name`` is not a
    public method of ``model`` (tests)."""
    if MAJOR >= 19:
        from odoo.service.model import get_public_method

        get_public_method(model, name)
    else:
        from odoo.models import check_method_name

        check_method_name(name)


def readonly_dashboard(dashboard):
    """What the Dashboards app loads of ``dashboard`` (a
    ``spreadsheet.dashboard``), as a dict with its ``snapshot`` (tests)."""
    if MAJOR >= 19:
        return json.loads(dashboard._get_serialized_readonly_dashboard())
    return dashboard.get_readonly_dashboard()


def message_author(records):
    """``(author id, email from)`` of a note the current user logs on
    ``records``, never raising for a user without an email (18.0 raises unless
    told not to; 19.0 never does)."""
    if MAJOR >= 19:
        return records._message_compute_author(None, None)
    return records._message_compute_author(None, None, raise_on_email=False)


def note_reply_to(env, email_from, author_id):
    """The reply-to address of a note logged by ``author_id`` (its
    ``email_from``), as ``_message_log_batch`` computes it: the author's name
    goes into it on 19.0."""
    thread = env["mail.thread"]
    if MAJOR >= 19:
        return thread._notify_get_reply_to(default=email_from, author_id=author_id)[
            False
        ]
    return thread._notify_get_reply_to(default=email_from)[False]


def set_group_category(env, category, groups):
    """Show ``groups`` under ``category`` (an ``ir.module.category``) in the
    user form: the category of each group on 18.0, a privilege of that
    category (with the module's XML id ``res_groups_privilege_<category
    name>``) on 19.0."""
    if MAJOR < 19:
        groups.write({"category_id": category.id})
        return
    module, name = category.get_external_id()[category.id].split(".", 1)
    name = name.removeprefix("module_category_")
    [privilege] = env["res.groups.privilege"]._load_records(
        [
            {
                "xml_id": f"{module}.res_groups_privilege_{name}",
                "values": {
                    "name": category.name,
                    "category_id": category.parent_id.id or category.id,
                    "sequence": category.sequence,
                },
                "noupdate": False,
            }
        ]
    )
    groups.write({"privilege_id": privilege.id})


def add_group_users(groups, users):
    """Give ``groups`` to ``users``."""
    groups.write({GROUP_USERS: [Command.link(user.id) for user in users]})


def set_action_groups(actions, groups):
    """Show ``actions`` only to the users of ``groups``."""
    actions.write({ACTION_GROUPS: [Command.link(group.id) for group in groups]})


def ensure_pricelist_feature(env):
    """On 19.0, switch the Pricelists feature on (a partner has no pricelist
    without it), as its box in Settings does; on 18.0 a partner always has
    one."""
    if MAJOR < 19 or env["res.groups"]._is_feature_enabled(PRICELIST_FEATURE):
        return False
    env.ref("base.group_user").sudo()._apply_group(env.ref(PRICELIST_FEATURE).sudo())
    return True


def formatted_read_group(model, domain, groupby, aggregates):
    """The groups a pivot or graph view reads: ``aggregates`` (``name:agg``
    or ``__count``) of ``model`` over ``domain`` grouped by ``groupby``, all
    levels at once."""
    if MAJOR >= 19:
        return model.formatted_read_group(domain, groupby, aggregates)
    return model.read_group(domain, aggregates, groupby, lazy=False)
