"""How a text cell goes into any CSV footfall writes, whether Python or DuckDB writes it.

A cell that starts with one of FORMULA_START gets a leading `'`, so a spreadsheet shows it
instead of running it as a formula (OWASP's advice on CSV injection). Only text is touched:
the number -3 stays a number.
"""

from __future__ import annotations

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

# as code points: comparing ascii() of the first character is about twice as fast as taking
# it as a string, on every text cell of the raw export
_CODE_POINTS = "(" + ", ".join(str(ord(ch)) for ch in FORMULA_START) + ")"


def guard(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_START) else text


def guard_sql(expression: str) -> str:
    """The same rule as a DuckDB expression over a text `expression`."""
    return (f"case when ascii({expression}) in {_CODE_POINTS} "
            f"then '''' || {expression} else {expression} end")
