//! Plain-text tables for `Display` impls (schemas, data previews, reports).

use std::fmt;

/// Writes `header` and `rows` as left-aligned columns separated by two spaces.
pub(crate) fn write_table<R: AsRef<[String]>>(
    f: &mut fmt::Formatter<'_>,
    header: &[&str],
    rows: &[R],
) -> fmt::Result {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row.as_ref()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |f: &mut fmt::Formatter<'_>, cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            out.push_str(cell);
            out.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
        }
        writeln!(f, "{}", out.trim_end())
    };
    line(f, &mut header.iter().copied())?;
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(f, &mut rule.iter().map(String::as_str))?;
    for row in rows {
        line(f, &mut row.as_ref().iter().map(String::as_str))?;
    }
    Ok(())
}
