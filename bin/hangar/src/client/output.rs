//! Output formats: aligned tables for people, pretty JSON for scripts.

use anyhow::{Context as _, Result};
use chrono::{DateTime, Datelike, SecondsFormat, Utc};
use serde_json::Value;

use super::Io;

/// The `-o/--output` choice of list and show commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    #[default]
    Table,
    Json,
}

/// A table with a capitalised header and left-aligned columns two spaces apart.
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| h.to_uppercase()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells render empty and extra cells are dropped, so a row can never
    /// break the alignment.
    pub fn row(&mut self, cells: Vec<String>) {
        let mut cells = cells;
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    /// Every line ends in `\n` and carries no trailing spaces.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut text = String::new();
        for line in std::iter::once(&self.header).chain(&self.rows) {
            let mut rendered = String::new();
            for (i, (cell, width)) in line.iter().zip(&widths).enumerate() {
                if i > 0 {
                    rendered.push_str("  ");
                }
                rendered.push_str(cell);
                let pad = width.saturating_sub(cell.chars().count());
                rendered.extend(std::iter::repeat_n(' ', pad));
            }
            text.push_str(rendered.trim_end());
            text.push('\n');
        }
        text
    }
}

/// `Label:  value` lines with the values aligned, for showing one object.
pub fn render_fields(fields: &[(&str, String)]) -> String {
    let width = fields
        .iter()
        .map(|(label, _)| label.chars().count() + 1)
        .max()
        .unwrap_or(0);
    let mut text = String::new();
    for (label, value) in fields {
        let line = format!("{:<width$}  {value}", format!("{label}:"));
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// Prints a JSON value pretty-printed on stdout.
pub fn print_json(io: &mut Io<'_>, value: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).context("cannot format JSON")?;
    io.println(&text)
}

/// A timestamp for a table cell: RFC 3339 in UTC to the second, `never` for Go's zero time
/// (year 1, which the API uses for "never"), and the raw text when it does not parse.
pub fn format_time(raw: &str) -> String {
    match DateTime::parse_from_rfc3339(raw) {
        Ok(t) if t.year() <= 1 => "never".to_owned(),
        Ok(t) => t
            .with_timezone(&Utc)
            .to_rfc3339_opts(SecondsFormat::Secs, true),
        Err(_) => raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns_two_spaces_apart() {
        let mut table = Table::new(&["username", "email", "created at", "status"]);
        table.row(vec![
            "admin".into(),
            "admin@example.com".into(),
            "2024-01-02T03:04:05Z".into(),
            "active".into(),
        ]);
        table.row(vec![
            "bob".into(),
            "b@x.io".into(),
            "2024-01-02T03:04:05Z".into(),
            "suspended".into(),
        ]);
        assert_eq!(
            table.render(),
            "USERNAME  EMAIL              CREATED AT            STATUS\n\
             admin     admin@example.com  2024-01-02T03:04:05Z  active\n\
             bob       b@x.io             2024-01-02T03:04:05Z  suspended\n"
        );
    }

    #[test]
    fn table_without_rows_is_only_the_header() {
        let table = Table::new(&["ID", "NAME"]);
        assert_eq!(table.render(), "ID  NAME\n");
    }

    #[test]
    fn short_and_long_rows_keep_the_shape() {
        let mut table = Table::new(&["A", "B"]);
        table.row(vec!["x".into()]);
        table.row(vec!["y".into(), "z".into(), "dropped".into()]);
        assert_eq!(table.render(), "A  B\nx\ny  z\n");
    }

    #[test]
    fn width_counts_characters_not_bytes() {
        let mut table = Table::new(&["N", "X"]);
        table.row(vec!["été".into(), "1".into()]);
        assert_eq!(table.render(), "N    X\nété  1\n");
    }

    #[test]
    fn fields_align_their_values() {
        let text = render_fields(&[
            ("ID", "1".into()),
            ("Username", "admin".into()),
            ("Name", String::new()),
        ]);
        assert_eq!(text, "ID:        1\nUsername:  admin\nName:\n");
    }

    #[test]
    fn times_are_normalised_to_utc() {
        assert_eq!(
            format_time("2024-05-01T12:30:45.123456+02:00"),
            "2024-05-01T10:30:45Z"
        );
        assert_eq!(format_time("0001-01-01T00:00:00Z"), "never");
        assert_eq!(format_time("garbage"), "garbage");
    }
}
