//! What a run found, as Markdown and as JSON (written by hand: xtask has no dependencies).

use std::fmt::Write as _;

/// A JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// A number; not finite is written `null`.
    Number(f64),
    /// A string.
    Text(String),
    /// `true` or `false`.
    Bool(bool),
    /// An array.
    List(Vec<Json>),
    /// An object, in insertion order.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// An object from `(key, value)` pairs.
    pub fn object<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Json)>) -> Json {
        Json::Object(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A string value.
    pub fn text(text: impl Into<String>) -> Json {
        Json::Text(text.into())
    }

    /// Indented JSON text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out
    }

    fn write(&self, out: &mut String, depth: usize) {
        let indent = |out: &mut String, depth: usize| {
            out.push('\n');
            out.push_str(&"  ".repeat(depth));
        };
        match self {
            Json::Number(n) if n.is_finite() => {
                let _ = write!(out, "{}", round(*n));
            }
            Json::Number(_) => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Text(s) => quote(out, s),
            Json::List(items) if items.is_empty() => out.push_str("[]"),
            Json::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    out.push_str(if i == 0 { "" } else { "," });
                    indent(out, depth + 1);
                    item.write(out, depth + 1);
                }
                indent(out, depth);
                out.push(']');
            }
            Json::Object(pairs) if pairs.is_empty() => out.push_str("{}"),
            Json::Object(pairs) => {
                out.push('{');
                for (i, (key, value)) in pairs.iter().enumerate() {
                    out.push_str(if i == 0 { "" } else { "," });
                    indent(out, depth + 1);
                    quote(out, key);
                    out.push_str(": ");
                    value.write(out, depth + 1);
                }
                indent(out, depth);
                out.push('}');
            }
        }
    }
}

/// Four significant decimals are more than any figure here holds.
fn round(n: f64) -> f64 {
    (n * 10_000.0).round() / 10_000.0
}

fn quote(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A figure with a goal.
#[derive(Debug, Clone, PartialEq)]
pub struct Goal {
    /// What is measured, e.g. `API/direct throughput at 64 connections`.
    pub name: String,
    /// The measured value.
    pub value: f64,
    /// How it compares to `target`.
    pub bound: Bound,
    /// The goal's figure.
    pub target: f64,
}

/// The direction of a goal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// `value >= target`.
    AtLeast,
    /// `value <= target`.
    AtMost,
}

impl Goal {
    /// Whether the value meets the goal (a value that is not a number never does).
    pub fn met(&self) -> bool {
        match self.bound {
            Bound::AtLeast => self.value >= self.target,
            Bound::AtMost => self.value <= self.target,
        }
    }

    /// `>= 0.75` or `<= 20`.
    pub fn target_text(&self) -> String {
        let sign = match self.bound {
            Bound::AtLeast => ">=",
            Bound::AtMost => "<=",
        };
        format!("{sign} {}", number(self.target))
    }

    fn json(&self) -> Json {
        Json::object([
            ("name", Json::text(&self.name)),
            ("value", Json::Number(self.value)),
            ("goal", Json::text(self.target_text())),
            ("met", Json::Bool(self.met())),
        ])
    }
}

/// A table: a header row and rows of cells.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Column titles.
    pub columns: Vec<String>,
    /// Rows, as many cells as columns.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these columns.
    pub fn new(columns: &[&str]) -> Self {
        Table {
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table in Markdown.
    pub fn markdown(&self) -> String {
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        let mut out = line(&self.columns);
        out.push_str(&line(&vec!["---".to_owned(); self.columns.len()]));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }

    fn json(&self) -> Json {
        let cells = |row: &[String]| Json::List(row.iter().map(Json::text).collect());
        Json::object([
            ("columns", cells(&self.columns)),
            ("rows", Json::List(self.rows.iter().map(|r| cells(r)).collect())),
        ])
    }
}

/// What one scenario found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Section {
    /// The scenario's title.
    pub title: String,
    /// How it was measured, in a sentence or two.
    pub method: String,
    /// Named figures (for the JSON file and the summary).
    pub figures: Vec<(String, f64)>,
    /// Figures held against a goal.
    pub goals: Vec<Goal>,
    /// The measurements.
    pub tables: Vec<Table>,
    /// What a reader should know (a cap reached, a journal that overflowed).
    pub notes: Vec<String>,
    /// The figures worth a line in the summary: (what, value as shown).
    pub headlines: Vec<(String, String)>,
}

impl Section {
    /// A section named `title`, measured as `method` says.
    pub fn new(title: &str, method: impl Into<String>) -> Self {
        Section {
            title: title.to_owned(),
            method: method.into(),
            ..Section::default()
        }
    }

    /// Records a figure.
    pub fn figure(&mut self, name: impl Into<String>, value: f64) {
        self.figures.push((name.into(), value));
    }

    /// Records a line of the summary.
    pub fn headline(&mut self, what: impl Into<String>, values: &[f64]) {
        let shown: Vec<String> = values.iter().map(|v| number(*v)).collect();
        self.headlines.push((what.into(), shown.join(" / ")));
    }

    /// Records a figure held against a goal.
    pub fn goal(&mut self, name: impl Into<String>, value: f64, bound: Bound, target: f64) {
        self.goals.push(Goal {
            name: name.into(),
            value,
            bound,
            target,
        });
    }

    /// The section in Markdown.
    pub fn markdown(&self) -> String {
        let mut out = format!("## {}\n\n{}\n\n", self.title, self.method);
        for table in &self.tables {
            out.push_str(&table.markdown());
            out.push('\n');
        }
        if !self.goals.is_empty() {
            out.push_str(&goals_table(&self.goals).markdown());
            out.push('\n');
        }
        for note in &self.notes {
            let _ = writeln!(out, "- {note}");
        }
        if !self.notes.is_empty() {
            out.push('\n');
        }
        out
    }

    /// The section as JSON.
    pub fn json(&self) -> Json {
        let figures = self.figures.iter().map(|(k, v)| (k.clone(), Json::Number(*v)));
        Json::object([
            ("title", Json::text(&self.title)),
            ("method", Json::text(&self.method)),
            ("figures", Json::object(figures)),
            ("goals", Json::List(self.goals.iter().map(Goal::json).collect())),
            (
                "tables",
                Json::List(self.tables.iter().map(Table::json).collect()),
            ),
            ("notes", Json::List(self.notes.iter().map(Json::text).collect())),
        ])
    }
}

/// The headlines of every section.
pub fn headlines_table(sections: &[Section]) -> Table {
    let mut table = Table::new(&["Scenario", "Figure", "Value"]);
    for section in sections {
        for (what, value) in &section.headlines {
            table.row(vec![section.title.clone(), what.clone(), value.clone()]);
        }
    }
    table
}

/// Replaces what lies between `begin` and `end` in `text` (both kept); `None` if either is missing.
pub fn replace_between(text: &str, begin: &str, end: &str, content: &str) -> Option<String> {
    let start = text.find(begin)? + begin.len();
    let stop = start + text[start..].find(end)?;
    Some(format!(
        "{}\n{}\n{}",
        &text[..start],
        content.trim(),
        &text[stop..]
    ))
}

/// Every goal of `goals` with its figure and verdict.
pub fn goals_table<'a>(goals: impl IntoIterator<Item = &'a Goal>) -> Table {
    let mut table = Table::new(&["Goal", "Measured", "Target", "Verdict"]);
    for goal in goals {
        let verdict = if goal.met() { "met" } else { "not met" };
        table.row(vec![
            goal.name.clone(),
            number(goal.value),
            goal.target_text(),
            verdict.to_owned(),
        ]);
    }
    table
}

/// A figure as a table shows it: three significant decimals below 10, fewer above, `n/a` when
/// not a number.
pub fn number(value: f64) -> String {
    if !value.is_finite() {
        "n/a".to_owned()
    } else if value.abs() >= 1_000.0 || value == value.trunc() {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_indented_escaped_and_has_no_nan() {
        let json = Json::object([
            ("a", Json::Number(0.123_456)),
            ("b", Json::text("say \"hi\"\n")),
            ("c", Json::List(vec![Json::Number(f64::NAN), Json::Bool(true)])),
            ("d", Json::List(vec![])),
        ]);
        assert_eq!(
            json.render(),
            "{\n  \"a\": 0.1235,\n  \"b\": \"say \\\"hi\\\"\\n\",\n  \"c\": [\n    null,\n    true\n  ],\n  \"d\": []\n}"
        );
    }

    #[test]
    fn goals_are_met_on_their_side_of_the_target_only() {
        let goal = |value, bound| Goal {
            name: "g".into(),
            value,
            bound,
            target: 0.75,
        };
        assert!(goal(0.75, Bound::AtLeast).met());
        assert!(!goal(0.74, Bound::AtLeast).met());
        assert!(goal(0.5, Bound::AtMost).met());
        assert!(!goal(f64::NAN, Bound::AtMost).met());
        assert!(!goal(f64::NAN, Bound::AtLeast).met());
        assert_eq!(goal(1.0, Bound::AtMost).target_text(), "<= 0.750");
    }

    #[test]
    fn replaces_only_what_lies_between_the_markers() {
        let text = "intro\n<!-- a -->\nold\nlines\n<!-- b -->\noutro\n";
        assert_eq!(
            replace_between(text, "<!-- a -->", "<!-- b -->", "new\n").unwrap(),
            "intro\n<!-- a -->\nnew\n<!-- b -->\noutro\n"
        );
        assert_eq!(
            replace_between("no markers", "<!-- a -->", "<!-- b -->", "x"),
            None
        );
    }

    #[test]
    fn headlines_join_their_values() {
        let mut section = Section::new("Overhead", "");
        section.headline("API/direct at 16 / 64 / 256", &[0.5, 0.75, f64::NAN]);
        let table = headlines_table(&[section]);
        assert_eq!(
            table.rows,
            [["Overhead", "API/direct at 16 / 64 / 256", "0.500 / 0.750 / n/a"]]
        );
    }

    #[test]
    fn tables_render_as_markdown() {
        let mut table = Table::new(&["a", "b"]);
        table.row(vec!["1".into(), "2".into()]);
        assert_eq!(table.markdown(), "| a | b |\n| --- | --- |\n| 1 | 2 |\n");
    }

    #[test]
    fn numbers_keep_the_digits_that_matter() {
        assert_eq!(number(12_345.6), "12346");
        assert_eq!(number(42.0), "42");
        assert_eq!(number(12.345), "12.3");
        assert_eq!(number(0.81234), "0.812");
        assert_eq!(number(f64::NAN), "n/a");
    }
}
