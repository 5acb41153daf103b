"""How a feature column's cells are read, shared by the validation Lambda and preprocess.py (standard
library only; ``lambdas/validate_input/feature_rules.py`` is a symlink to this file, as for
problem_rules.py), so both say the same thing about the same table.

The rule, over a column's cells as text (cells problem_rules reads as missing are skipped):
  * infinite values (``inf``, ``-inf``, ``Infinity``, any case) are treated as missing, with a warning:
    no model can use them and imputing them like an empty cell keeps the row;
  * a column whose filled cells are numbers except at most ``STRAY_TEXT_MAX_FRACTION`` of them is
    numeric: the stray text cells (a typo, ``?``, ``unknown``) are treated as missing, with a warning
    naming the column, the count and examples, instead of turning the column into a category;
  * a column with more text than that stays categorical, its cells untouched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

if __package__:  # imported from the source tree (tests) or the Lambda's package
    from . import problem_rules as rules
else:  # beside problem_rules.py in the job's code folder or the Lambda asset's root
    import problem_rules as rules

STRAY_TEXT_MAX_FRACTION = 0.05
INFINITE_SPELLINGS = rules.INFINITE_SPELLINGS
EXAMPLES = 3


def is_infinite(text: str) -> bool:
    return text.strip().casefold() in INFINITE_SPELLINGS


@dataclass
class ColumnCells:
    """One feature column's cells, counted one at a time (bounded memory)."""

    name: str
    filled: int = 0
    numbers: int = 0
    infinite: int = 0
    text: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, cell: object) -> None:
        text = str(cell).strip()  # a float inf (pandas' reading) is "inf" here too
        if is_infinite(text):  # before is_missing, which counts these as missing too
            self.filled += 1
            self.infinite += 1
            return
        if rules.is_missing(cell):
            return
        self.filled += 1
        try:
            number = float(text)
        except ValueError:
            number = None
        if number is not None and math.isfinite(number):
            self.numbers += 1
            return
        self.text += 1
        if len(self.examples) < EXAMPLES and text not in self.examples:
            self.examples.append(text)

    @property
    def numeric(self) -> bool:
        """Read as a numeric column (its stray text and infinite cells then missing)."""
        return self.numbers > 0 and self.text <= STRAY_TEXT_MAX_FRACTION * self.filled

    def warnings(self) -> list[str]:
        """What a person should know about this column; empty when nothing was treated as missing."""
        found = []
        if self.infinite and (self.numeric or not self.text):
            found.append(f"Column {self.name!r}: {self.infinite} infinite value(s) (inf, -inf, Infinity) are treated "
                         "as missing (imputed like empty cells).")
        if self.numeric and self.text:
            shown = ", ".join(repr(e) for e in self.examples)
            found.append(f"Column {self.name!r} is numeric, but {self.text} of its {self.filled} filled cells are not "
                         f"numbers (e.g. {shown}): treated as missing. Fix them in the file if they mean something.")
        return found
