"""What a load did, per file: rows read = loaded + rejected + skipped, and the rows that differ from
what was stored (replaced with `update`, otherwise skipped), per day."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass
class FileLoad:
    """What happened to one file: rows read = loaded + rejected + skipped.

    Loaded rows are new ones plus, with `update`, stored rows replaced because their values changed
    (`rows_changed`); without it, those are skipped and only counted. `changed_days`: rows that differ
    from what was stored, per day (files keyed by a day). A bad line counts as rejected at every load
    of the file, though raw.rejected_rows keeps it once.
    """

    file_name: str
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    rows_skipped: int
    seconds: float
    rows_changed: int = 0
    updated: bool = False
    changed_days: dict[date, int] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    def adds_up(self) -> bool:
        return self.rows_read == self.rows_loaded + self.rows_rejected + self.rows_skipped

    def describe(self) -> str:
        line = (
            f"{self.file_name}: {self.rows_read:,} rows read, {self.rows_loaded:,} loaded, "
            f"{self.rows_rejected:,} rejected, {self.rows_skipped:,} skipped in {self.seconds:.1f} s "
            f"({self.rows_per_second:,.0f} rows/s)"
        )
        return "\n".join([line, *self.describe_changes()])

    def describe_changes(self) -> list[str]:
        """Lines about rows whose values differ from the stored ones (none when nothing differs)."""
        if not self.rows_changed:
            return []
        what = "replaced" if self.updated else "not replaced: run `salesmon load --update` to replace them"
        days = sorted(self.changed_days.items())
        shown = ", ".join(f"{day}: {count:,}" for day, count in days[:10])
        more = f", ... ({len(days) - 10} more days)" if len(days) > 10 else ""
        lines = [f"  {self.rows_changed:,} rows differ from what is stored ({what})"]
        if days:
            lines.append(f"  on {len(days)} day(s): {shown}{more}")
        return lines


@dataclass
class LoadSummary:
    """The files of one load, in load order."""

    files: list[FileLoad] = field(default_factory=list)

    def render(self) -> str:
        """A table: file, rows read, loaded, rejected, skipped, changed, seconds, rows/s."""
        head = ("file", "read", "loaded", "rejected", "skipped", "changed", "seconds", "rows/s")
        rows = [
            (
                item.file_name,
                f"{item.rows_read:,}",
                f"{item.rows_loaded:,}",
                f"{item.rows_rejected:,}",
                f"{item.rows_skipped:,}",
                f"{item.rows_changed:,}",
                f"{item.seconds:.1f}",
                f"{item.rows_per_second:,.0f}",
            )
            for item in self.files
        ]
        widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
        lines = [
            "  ".join(
                cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
            )
            for row in [head, *rows]
        ]
        return "\n".join(lines)
