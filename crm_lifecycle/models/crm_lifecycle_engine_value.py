# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Loyalty levels, RFM scores and client value, in the lifecycle engine.

Same batches and the same queries as the stages: the paid revenue and
purchases over the windows of the levels and of the RFM period come with the
invoices' query (``_query_invoices``); once per run and company, one query
over the company's documents gives the quintile boundaries, the yearly
retention and the first-year value of a customer, and one over the snapshots
the conversion rates.
"""

import hashlib
import json
import math
from datetime import timedelta

from dateutil.relativedelta import relativedelta
from markupsafe import escape

from odoo import fields, models
from odoo.tools import SQL

PRE_CUSTOMER_CODES = ("target", "prospect", "opportunity")
QUINTILES = [0.2, 0.4, 0.6, 0.8]


def rising_rates(observations):
    """{key: rate} from ``observations``, (key, observed, converted) in funnel
    order, such that a later stage never converts less than an earlier one:
    where a stage converted less than the one before it, the two are pooled
    (converted / observed of both), again until the rates rise (the weighted
    isotonic regression of the rates). A stage observed on nobody takes the
    rate of the stage before it (0 for the first)."""
    blocks = []  # [keys, clients, converted]
    for key, clients, converted in observations:
        if not clients:
            continue
        blocks.append([[key], clients, converted])
        while (
            len(blocks) > 1
            and blocks[-2][2] * blocks[-1][1] > blocks[-1][2] * blocks[-2][1]
        ):
            keys, clients, converted = blocks.pop()
            blocks[-1][0] += keys
            blocks[-1][1] += clients
            blocks[-1][2] += converted
    pooled = {
        key: converted / clients for keys, clients, converted in blocks for key in keys
    }
    rates = {}
    rate = 0.0
    for key, _clients, _converted in observations:
        rate = pooled.get(key, rate)
        rates[key] = rate
    return rates


class CrmLifecycleEngine(models.AbstractModel):
    _inherit = "crm.lifecycle.engine"

    # ------------------------------------------------------------------
    # Once per run and company
    # ------------------------------------------------------------------
    def _company_context(self, company, today):
        context = super()._company_context(company, today)
        levels = self.env["crm.loyalty.level"].search(
            [("company_id", "=", company.id)], order="sequence, id"
        )
        rfm_months = company.lifecycle_rfm_months
        segments = self.env["crm.rfm.segment"].search([])
        context.update(
            currency=company.currency_id,
            levels=levels,
            segments=segments,
            windows=sorted({*levels.mapped("window_months"), rfm_months}),
            rfm_months=rfm_months,
            clv_horizon_years=company.lifecycle_clv_horizon_years,
            # read once, not per client
            level_rules=[
                (
                    level,
                    level.window_months,
                    level.min_paid_revenue,
                    level.min_purchase_count,
                    level.min_tenure_months,
                    level.max_overdue_ratio,
                )
                for level in levels
            ],
            segment_by_scores={
                (recency, frequency): segments._match(recency, frequency).id
                for recency in range(1, 6)
                for frequency in range(1, 6)
            },
            decimal_places=company.currency_id.decimal_places,
            # read once per run, not once per batch (``_after_results``)
            loyalty_pricelist=company.lifecycle_loyalty_pricelist,
        )
        context.update(self._company_figures(company, today, context["stages"]))
        # the days after the last purchase at which the recency score falls,
        # made once, not once per client (``_recheck_dates``)
        context["recency_steps"] = [
            timedelta(days=bound + 1) for bound in context["rfm_bounds"]["recency"]
        ]
        context["fingerprint"].update(
            levels=[(*rule, rule[0].grace_months) for rule in context["level_rules"]],
            segments=sorted(context["segment_by_scores"].items()),
            windows=context["windows"],
            rfm_months=rfm_months,
            clv_horizon_years=context["clv_horizon_years"],
            currency=(company.currency_id.id, context["decimal_places"]),
            figures=[
                context["rfm_bounds"],
                context["retention"],
                context["first_year_value"],
                sorted(context["conversion"].items()),
            ],
        )
        return context

    def _company_figures(self, company, today, stages):
        """The company's figures of ``today``: RFM quintile boundaries,
        retention and first-year value (``_document_figures``) and conversion
        rates (``_conversion_rates``). They take a few seconds on a large
        company and move slowly: the first run of the day computes them and
        keeps them on the company for the other runs of the day (queue
        batches, a client created), as long as the settings they read are the
        same. As of a past date they are computed each time."""
        months = company.lifecycle_rfm_months
        inputs = hashlib.md5(
            json.dumps(
                [
                    months,
                    company.lifecycle_conversion_min_clients,
                    [
                        (stage.id, stage.code, stage.is_customer_stage)
                        for stage in stages
                    ],
                ]
            ).encode(),
            usedforsecurity=False,
        ).hexdigest()
        is_today = today == fields.Date.context_today(self.with_company(company))
        kept = company.sudo().lifecycle_figures or {}
        if is_today and kept.get("date") == str(today) and kept.get("inputs") == inputs:
            figures = dict(kept["figures"])
            figures["conversion"] = {
                int(stage_id): rate for stage_id, rate in figures["conversion"].items()
            }
            return figures
        figures = {
            **self._document_figures(company, today, months),
            "conversion": self._conversion_rates(company, today, stages),
        }
        if is_today:
            self.env.cr.execute(
                SQL(
                    "UPDATE res_company SET lifecycle_figures = %s::jsonb"
                    " WHERE id = %s",
                    json.dumps(
                        {"date": str(today), "inputs": inputs, "figures": figures}
                    ),
                    company.id,
                ),
                # a worker that kept them first fails the batch, which is taken
                # again (``_process_queue``): expected, not an error to log
                log_exceptions=False,
            )
            company.invalidate_recordset(["lifecycle_figures"])
        return figures

    def _document_figures(self, company, today, months):
        """The figures the company's documents give, in one query per run
        (the documents of the company are read once):

        - ``rfm_bounds``: quintile boundaries of recency (days), frequency
          and monetary value over the company's customers of the last
          ``months`` months;
        - ``retention``: share of the clients who bought in the year before
          last that bought again in the last year;
        - ``first_year_value``: average paid revenue of a customer in its
          first twelve months (customers whose first year is over, else all).
        """
        year_ago = today - relativedelta(years=1)
        self.env.cr.execute(
            SQL(
                """
                WITH doc AS (%(documents)s),
                dated AS (
                    -- each document with its client's first purchase
                    SELECT partner_id, invoice_date, is_purchase, paid,
                           min(invoice_date) FILTER (WHERE is_purchase)
                               OVER (PARTITION BY partner_id) AS first_date
                      FROM doc
                ),
                client AS (
                    -- one pass over the documents, grouped by client: the
                    -- last ``months`` months (RFM), the first twelve months
                    -- after the first purchase, the two last years
                    SELECT %(today)s - max(invoice_date) FILTER (
                               WHERE is_purchase AND invoice_date > %(start)s)
                               AS recency,
                           count(*) FILTER (
                               WHERE is_purchase AND invoice_date > %(start)s)
                               AS frequency,
                           sum(paid) FILTER (WHERE invoice_date > %(start)s)
                               AS monetary,
                           bool_or(is_purchase AND invoice_date > %(start)s)
                               AS recent_customer,
                           min(first_date) AS first_date,
                           sum(paid) FILTER (
                               WHERE invoice_date < first_date + interval '12 months')
                               AS first_year_value,
                           bool_or(is_purchase
                                   AND invoice_date > %(two_years_ago)s
                                   AND invoice_date <= %(year_ago)s) AS in_base,
                           bool_or(is_purchase AND invoice_date > %(year_ago)s)
                               AS bought_last_year
                      FROM dated
                     GROUP BY partner_id
                )
                SELECT percentile_disc(%(quintiles)s::float[])
                           WITHIN GROUP (ORDER BY recency)
                           FILTER (WHERE recent_customer),
                       percentile_disc(%(quintiles)s::float[])
                           WITHIN GROUP (ORDER BY frequency)
                           FILTER (WHERE recent_customer),
                       percentile_disc(%(quintiles)s::float[])
                           WITHIN GROUP (ORDER BY monetary)
                           FILTER (WHERE recent_customer),
                       count(*) FILTER (WHERE in_base),
                       count(*) FILTER (WHERE in_base AND bought_last_year),
                       coalesce(
                           avg(first_year_value) FILTER (
                               WHERE first_date <= %(year_ago)s),
                           avg(first_year_value) FILTER (
                               WHERE first_date IS NOT NULL),
                           0)
                  FROM client
                """,
                documents=self._documents(company, as_of=today),
                today=today,
                start=today - relativedelta(months=months),
                quintiles=QUINTILES,
                year_ago=year_ago,
                two_years_ago=year_ago - relativedelta(years=1),
            )
        )
        (
            recency,
            frequency,
            monetary,
            base,
            retained,
            first_year_value,
        ) = self.env.cr.fetchone()
        return {
            "rfm_bounds": {
                "recency": recency or [],
                "frequency": frequency or [],
                "monetary": [float(value) for value in monetary or []],
            },
            "retention": retained / base if base else 0.0,
            "first_year_value": float(first_year_value),
        }

    def _conversion_rates(self, company, today, stages):
        """{stage id: rate} of the pre-customer stages as of ``today``: the
        share of the clients at the stage at a month end that were at a
        customer stage at one of the next twelve month ends, from the
        snapshots dated before ``today`` (a run reads what was there before
        it, as of a past date too):

        - the month ends of which the twelve months are over (more than a
          year before ``today``); while there are none, every month end
          before ``today`` (the months after it so far);
        - without any snapshot of the company yet, the lifecycle history: the
          clients that entered the stage and reached a customer stage within
          twelve months of it;
        - in funnel order (``PRE_CUSTOMER_CODES``) the rates never fall
          (``rising_rates``); a stage seen on fewer clients than the
          company's minimum has no rate of its own (the one before it).
        """
        pre_customer = stages.filtered(lambda s: s.code in PRE_CUSTOMER_CODES).sorted(
            lambda s: (PRE_CUSTOMER_CODES.index(s.code), s.sequence, s.id)
        )
        customer = stages.filtered("is_customer_stage")
        self.env["crm.lifecycle.snapshot"].flush_model()
        self.env.cr.execute(
            SQL(
                """
                WITH snapshot AS (
                    -- each month end at a pre-customer stage, and whether a
                    -- later one within twelve months is at a customer stage:
                    -- a lookup by the index of the client's month ends, not
                    -- a window over every snapshot of the company
                    SELECT s.partner_id, s.date, s.stage_id,
                           EXISTS (
                               SELECT 1 FROM crm_lifecycle_snapshot c
                                WHERE c.partner_id = s.partner_id
                                  AND c.company_id = s.company_id
                                  AND c.date > s.date
                                  AND c.date <= s.date + interval '12 months'
                                  AND c.date < %(today)s
                                  AND c.stage_id = ANY(%(customer)s)
                           ) AS converted
                      FROM crm_lifecycle_snapshot s
                     WHERE s.company_id = %(company)s
                       AND s.date < %(today)s
                       AND s.stage_id = ANY(%(pre_customer)s)
                )
                SELECT stage_id,
                       date + interval '12 months' < %(today)s AS over,
                       count(*),
                       count(*) FILTER (WHERE converted),
                       count(DISTINCT partner_id)
                  FROM snapshot
                 GROUP BY 1, 2
                UNION ALL
                SELECT NULL, NULL, count(*), 0, 0 FROM (
                    SELECT 1 FROM crm_lifecycle_snapshot
                     WHERE company_id = %(company)s AND date < %(today)s
                     LIMIT 1) any_snapshot
                """,
                company=company.id,
                today=today,
                customer=customer.ids,
                pre_customer=pre_customer.ids,
            )
        )
        rows = self.env.cr.fetchall()
        has_snapshots = any(row[0] is None and row[2] for row in rows)
        rows = [row for row in rows if row[0] is not None]
        if any(row[1] for row in rows):
            rows = [row for row in rows if row[1]]
        # {stage id: (rows, converted rows, different clients)}
        counts = {row[0]: row[2:] for row in rows}
        if not has_snapshots:
            counts = self._history_conversions(company, today, pre_customer, customer)
        # a stage seen on too few clients says too little on its own
        minimum = max(company.lifecycle_conversion_min_clients, 1)
        observations = []
        for stage in pre_customer:
            count, converted, clients = counts.get(stage.id, (0, 0, 0))
            if clients < minimum:
                count = converted = 0
            observations.append((stage.id, count, converted))
        return rising_rates(observations)

    def _history_conversions(self, company, today, pre_customer, customer):
        """{stage id: (clients, converted, clients)}, as ``_conversion_rates``
        counts (observed, converted, different clients): the clients that
        entered each stage of ``pre_customer`` (lifecycle history written
        before ``today``, each client once) and those of them that entered a
        stage of ``customer`` within twelve months."""
        self.env["crm.lifecycle.history"].flush_model()
        # as of a past date, the history written before that day (a run on
        # that day reads the rates before it writes its own history)
        end = self._past_end(company, today)
        if end:
            end = self._as_of_end(today - relativedelta(days=1))
        written = SQL("AND date < %s", end) if end else SQL()
        self.env.cr.execute(
            SQL(
                """
                WITH entered AS (
                    SELECT partner_id, stage_to_id AS stage_id, min(date) AS date
                      FROM crm_lifecycle_history
                     WHERE company_id = %(company)s
                       AND stage_to_id = ANY(%(pre_customer)s)
                       %(written)s
                     GROUP BY partner_id, stage_to_id
                ),
                converted AS MATERIALIZED (
                    SELECT partner_id, date
                      FROM crm_lifecycle_history
                     WHERE company_id = %(company)s
                       AND stage_to_id = ANY(%(customer)s)
                       %(written)s
                ),
                -- one hash join on the partner, not an index lookup per client
                -- (read once: MATERIALIZED)
                matched AS (
                    SELECT DISTINCT e.partner_id, e.stage_id
                      FROM entered e
                      JOIN converted c ON c.partner_id = e.partner_id
                       AND c.date >= e.date
                       AND c.date <= e.date + interval '12 months'
                )
                SELECT e.stage_id, count(*), count(m.partner_id)
                  FROM entered e
                  LEFT JOIN matched m ON m.partner_id = e.partner_id
                   AND m.stage_id = e.stage_id
                 GROUP BY e.stage_id
                """,
                company=company.id,
                pre_customer=pre_customer.ids,
                customer=customer.ids,
                written=written,
            )
        )
        return {
            stage_id: (count, converted, count)
            for stage_id, count, converted in self.env.cr.fetchall()
        }

    # ------------------------------------------------------------------
    # Per batch
    # ------------------------------------------------------------------
    def _value_results(self, partner, values, stage, context, today):
        result = super()._value_results(partner, values, stage, context, today)
        result.update(self._loyalty_result(partner, values, context, today))
        result.update(self._rfm_result(values, context, today))
        result.update(self._value_result(values, stage, context))
        return result

    def _recheck_dates(self, values, result, context, today):
        dates = super()._recheck_dates(values, result, context, today)
        for months, window in values["windows"].items():
            # the oldest document of a window leaves it
            dates.append(self._window_end(window["first_date"], months))
        window = values["windows"].get(context["rfm_months"])
        if window and window["last_date"]:
            # the recency score falls when the days since the last purchase
            # pass a quintile boundary
            last_date = window["last_date"]
            dates += [last_date + step for step in context["recency_steps"]]
        if result.get("loyalty_below_since") and result.get("loyalty_level_id"):
            # the grace months of the current level end
            level = context["levels"].browse(result["loyalty_level_id"])
            dates.append(
                result["loyalty_below_since"] + relativedelta(months=level.grace_months)
            )
        return dates

    def _qualified_level(self, values, level_rules, today):
        """The highest level of ``level_rules`` ((level, window, minimum paid
        revenue, minimum purchases, minimum tenure, maximum overdue ratio) by
        sequence) whose every threshold ``values`` meet."""
        tenure_months = self._tenure_months(values, today)
        purchases = values["purchase_count"]
        overdue = values["receivable_overdue"]
        qualified = self.env["crm.loyalty.level"]
        if not purchases:
            return qualified
        for (
            level,
            window_months,
            revenue_min,
            count_min,
            tenure_min,
            ratio_max,
        ) in level_rules:
            revenue = values["windows"].get(window_months, {}).get("revenue", 0.0)
            if revenue > 0:
                ratio = max(overdue, 0.0) / revenue
            else:
                ratio = math.inf if overdue > 0 else 0.0
            if (
                revenue >= revenue_min
                and purchases >= count_min
                and tenure_months >= tenure_min
                and ratio <= ratio_max
            ):
                qualified = level
        return qualified

    def _loyalty_result(self, partner, values, context, today):
        """Rise at once; fall only after the grace months of the current level,
        to the level the client meets then."""
        levels = context["levels"]
        state = values["state"]
        current = levels.browse(state["loyalty_level_id"])
        below_since = state["loyalty_below_since"]
        result = {
            "loyalty_level_id": current.id or None,
            "loyalty_level_since": state["loyalty_level_since"],
            "loyalty_below_since": below_since,
        }
        qualified = self._qualified_level(values, context["level_rules"], today)
        if qualified.id == current.id:
            result["loyalty_below_since"] = None
            return result
        rises = current not in levels or (
            qualified and qualified.sequence > current.sequence
        )
        if not rises:
            below_since = below_since or today
            result["loyalty_below_since"] = below_since
            if today < below_since + relativedelta(months=current.grace_months):
                return result
        result.update(
            loyalty_level_id=qualified.id or None,
            loyalty_level_since=today if qualified else None,
            loyalty_below_since=None,
            loyalty_change=(current, qualified),
        )
        return result

    def _rfm_result(self, values, context, today):
        window = values["windows"].get(context["rfm_months"], {})
        if not window.get("purchases"):
            return {
                "rfm_recency": 0,
                "rfm_frequency": 0,
                "rfm_monetary": 0,
                "rfm_score": None,
                "rfm_revenue": window.get("revenue", 0.0),
                "rfm_segment_id": None,
            }
        bounds = context["rfm_bounds"]
        recency_days = (today - window["last_date"]).days
        # recent is good: fewer days than more boundaries, higher score
        recency = 5 - sum(recency_days > bound for bound in bounds["recency"])
        frequency = 1 + sum(window["purchases"] > b for b in bounds["frequency"])
        monetary = 1 + sum(window["revenue"] > b for b in bounds["monetary"])
        segment_id = context["segment_by_scores"][recency, frequency]
        return {
            "rfm_recency": recency,
            "rfm_frequency": frequency,
            "rfm_monetary": monetary,
            "rfm_score": f"{recency}{frequency}{monetary}",
            "rfm_revenue": window["revenue"],
            "rfm_segment_id": segment_id or None,
        }

    def _value_result(self, values, stage, context):
        """CLV = average paid purchase × purchases per year × expected years
        left as a client, where a client of the company stays one more year with
        the probability ``retention``: Σ retention^t for t < horizon years.
        Lost clients are worth nothing more. Clients who have not bought yet
        have a potential value instead (conversion rate of their stage ×
        first-year value), unless they have a weighted pipeline: their open
        opportunities are their value then, counted once in the customer
        capital."""
        clv = potential = 0.0
        purchases = values["purchase_count"]
        code = self._stage_kind(context["stage_kinds"], stage)[0]
        if purchases and code != "lost":
            average = max(values["paid_revenue"], 0.0) / purchases
            per_year = 365.0 / values["reference_interval"]
            retention = context["retention"]
            years = sum(retention**year for year in range(context["clv_horizon_years"]))
            clv = average * per_year * years
        elif (
            not purchases
            and code in PRE_CUSTOMER_CODES
            and not values["pipeline_expected_revenue"]
        ):
            rate = context["conversion"].get(stage.id, 0.0)
            potential = rate * context["first_year_value"]
        digits = context["decimal_places"]
        return {
            "clv": round(clv, digits),
            "potential_value": round(potential, digits),
        }

    # ------------------------------------------------------------------
    # After the results are written
    # ------------------------------------------------------------------
    def _after_results(self, partners, company, results, changes, context):
        res = super()._after_results(partners, company, results, changes, context)
        if context["loyalty_pricelist"]:
            self._apply_loyalty_pricelists(
                self._loyalty_changes(partners, results), company
            )
        return res

    def _loyalty_changes(self, partners, results):
        return [
            (partner, *results[partner.id]["loyalty_change"])
            for partner in partners
            if "loyalty_change" in results[partner.id]
        ]

    def _change_logs(self, changes, company, results, context):
        history, notes = super()._change_logs(changes, company, results, context)
        partners = self.env["res.partner"].browse(list(results))
        now = fields.Datetime.now()
        # the note's HTML: the line translated and escaped, as the names,
        # once for the batch, filled in for each change
        line = str(escape(self.env._("Loyalty level (%(company)s): %(old)s → %(new)s")))
        company_id, company_name = company.id, str(escape(context["company_name"]))
        loyalty_changes = self._loyalty_changes(partners, results)
        names = self._note_names(
            "crm.loyalty.level",
            [level.id for change in loyalty_changes for level in change[1:]],
            context,
        )
        for partner, old, new in loyalty_changes:
            history.append(
                {
                    "partner_id": partner.id,
                    "company_id": company_id,
                    "reason": "loyalty",
                    "loyalty_from_id": old.id or None,
                    "loyalty_to_id": new.id or None,
                    "date": now,
                }
            )
            notes.setdefault(partner.id, []).append(
                line
                % {
                    "company": company_name,
                    "old": names[old.id],
                    "new": names[new.id],
                }
            )
        return history, notes

    def _apply_loyalty_pricelists(self, loyalty_changes, company):
        """Give the new level's pricelist, unless a person chose the client's
        pricelist (it is neither empty nor the old level's): then say so, in
        the client's language."""
        kept = {}
        languages = self._client_languages(
            self.env["res.partner"].browse(
                [partner.id for partner, _old, _new in loyalty_changes]
            ),
            company,
        )
        for partner, old, new in loyalty_changes:
            if not new.pricelist_id:
                continue
            partner = partner.with_company(company)
            chosen = partner.specific_property_product_pricelist
            if chosen and chosen != old.pricelist_id:
                if chosen != new.pricelist_id:
                    localized = self.with_context(lang=languages[partner.id])
                    kept[partner.id] = localized.env._(
                        "Pricelist %(pricelist)s kept: it was chosen by a person, "
                        "the level %(level)s would give %(new)s.",
                        pricelist=chosen.with_env(localized.env).display_name,
                        level=new.with_env(localized.env).name,
                        new=new.pricelist_id.with_env(localized.env).display_name,
                    )
                continue
            partner.property_product_pricelist = new.pricelist_id
        if kept:
            self.env["res.partner"].browse(list(kept))._message_log_batch(bodies=kept)
