# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import api, fields, models
from odoo.exceptions import ValidationError

from .. import series


@series.sql_constraints(
    ("code_uniq", "unique(code)", "The code of an RFM segment must be unique."),
)
class CrmRfmSegment(models.Model):
    """A named cell range of the recency × frequency grid (scores 1 to 5).

    A client gets the first segment, by sequence, whose ranges hold its
    recency and frequency scores."""

    _name = "crm.rfm.segment"
    _description = "RFM Segment"
    _order = "sequence, id"

    name = fields.Char(required=True, translate=True)
    code = fields.Char(required=True)
    sequence = fields.Integer(default=10)
    color = fields.Integer()
    description = fields.Text(translate=True)
    recency_min = fields.Integer(default=1)
    recency_max = fields.Integer(default=5)
    frequency_min = fields.Integer(default=1)
    frequency_max = fields.Integer(default=5)

    @api.constrains("recency_min", "recency_max", "frequency_min", "frequency_max")
    def _check_scores(self):
        for segment in self:
            for low, high in (
                (segment.recency_min, segment.recency_max),
                (segment.frequency_min, segment.frequency_max),
            ):
                if not 1 <= low <= high <= 5:
                    raise ValidationError(
                        self.env._(
                            "Segment %(segment)s: scores go from 1 to 5 and the "
                            "minimum cannot exceed the maximum.",
                            segment=segment.name,
                        )
                    )

    def _match(self, recency, frequency):
        """The first of these segments holding the scores (empty if none)."""
        for segment in self:
            if (
                segment.recency_min <= recency <= segment.recency_max
                and segment.frequency_min <= frequency <= segment.frequency_max
            ):
                return segment
        return self.browse()
