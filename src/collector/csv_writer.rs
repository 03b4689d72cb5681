//! The one CSV writer of every CSV export (the read API's uptime reports
//! and outage lists, `linkwatch report --format csv`): RFC 4180 through the
//! `csv` crate (a field is quoted when it holds a comma, a quote or a line
//! break; CRLF line ends), with spreadsheet formula injection neutralised.
//!
//! **Formula injection.** A spreadsheet opening the file runs a cell that
//! starts with `=`, `+`, `-` or `@` as a formula (`=HYPERLINK(...)`,
//! `@SUM(...)`, `-2+3`), and some also after a leading tab or carriage
//! return. Names come from people (the hierarchy file's division, district
//! and upazila names, device names), so every *text* cell that starts with
//! one of those characters is written with a leading `'`, which spreadsheets
//! take as "this is text" and do not show. The rest of the text is kept as
//! it was; a reader of the raw file strips one leading `'` from text columns
//! that start with `'=`, `'+`, `'-`, `'@`, `'\t` or `'\r`.
//!
//! **Numbers are not text.** Cells are typed: a [`Cell::int`] or
//! [`Cell::fixed`] can only be made from a number the collector computed and
//! formats itself, so no name or free text can reach one, and it is written
//! as is, also when negative (`-3` must stay the number -3 for a
//! spreadsheet's sums, and a number cannot carry a formula). Everything else
//! is a [`Cell::text`] and is neutralised.

use std::borrow::Cow;

/// First characters that make a spreadsheet read a cell as a formula.
pub const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// `s` as it is safe to put at the start of a spreadsheet cell: with a
/// leading `'` when it starts with one of [`FORMULA_STARTS`], unchanged
/// otherwise.
pub fn neutralise(s: &str) -> Cow<'_, str> {
    if s.starts_with(FORMULA_STARTS) {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// One cell of a CSV row.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Cell<'a>(Kind<'a>);

#[derive(Debug, Clone, PartialEq, Default)]
enum Kind<'a> {
    /// Free text: neutralised.
    Text(&'a str),
    /// A number the collector formatted: written as is.
    Number(String),
    #[default]
    Empty,
}

impl<'a> Cell<'a> {
    /// Text from anywhere (names, labels, timestamps, words): neutralised.
    pub fn text(s: &'a str) -> Cell<'a> {
        Cell(Kind::Text(s))
    }
    /// An integer, written as is (negative ones too).
    pub fn int(v: impl Into<i64>) -> Cell<'a> {
        Cell(Kind::Number(v.into().to_string()))
    }
    /// A float with `decimals` digits after the point, written as is.
    pub fn fixed(v: f64, decimals: usize) -> Cell<'a> {
        Cell(Kind::Number(format!("{v:.decimals$}")))
    }
    /// `true` or `false`.
    pub fn bool(v: bool) -> Cell<'a> {
        Cell(Kind::Number(v.to_string()))
    }
    /// An empty cell (no value).
    pub fn empty() -> Cell<'a> {
        Cell(Kind::Empty)
    }
    /// The cell of `v`, or an empty one.
    pub fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Cell<'a>) -> Cell<'a> {
        v.map(f).unwrap_or_default()
    }

    fn bytes(&self) -> Cow<'_, str> {
        match &self.0 {
            Kind::Text(s) => neutralise(s),
            Kind::Number(n) => Cow::Borrowed(n),
            Kind::Empty => Cow::Borrowed(""),
        }
    }
}

/// A CSV document of `N` columns: a header line, then rows of `N` cells.
pub struct CsvWriter<const N: usize> {
    w: csv::Writer<Vec<u8>>,
}

impl<const N: usize> CsvWriter<N> {
    /// A document with `header` (the collector's own column names, written as
    /// they are) as its first line.
    pub fn new(header: [&str; N]) -> Self {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::new());
        // Writing into memory: the only errors would be I/O ones.
        let _ = w.write_record(header);
        CsvWriter { w }
    }

    /// Append one row.
    pub fn row(&mut self, cells: [Cell<'_>; N]) {
        let fields = cells.each_ref().map(Cell::bytes);
        let _ = self.w.write_record(fields.iter().map(|f| f.as_bytes()));
    }

    /// The document.
    pub fn finish(self) -> String {
        // Flushing into memory cannot fail.
        let bytes = self.w.into_inner().unwrap_or_default();
        // Every field came from a `str`: the bytes are UTF-8.
        String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(cells: [Cell<'_>; 2]) -> String {
        let mut w = CsvWriter::new(["a", "b"]);
        w.row(cells);
        w.finish()
    }

    #[test]
    fn formula_starts_in_text_get_a_quote_mark() {
        for (text, want) in [
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"",
            ),
            ("+1", "'+1"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
            ("\tx", "'\tx"),
            ("\rx", "\"'\rx\""),
            ("Dhaka / Savar", "Dhaka / Savar"),
            ("a=b", "a=b"),
            (" =x", " =x"),
            ("", ""),
        ] {
            assert_eq!(
                doc([Cell::text(text), Cell::int(1)]),
                format!("a,b\r\n{want},1\r\n"),
                "{text:?}"
            );
        }
    }

    #[test]
    fn numbers_stay_numbers_even_when_negative() {
        assert_eq!(
            doc([Cell::int(-3), Cell::fixed(-0.5, 3)]),
            "a,b\r\n-3,-0.500\r\n"
        );
        assert_eq!(doc([Cell::bool(true), Cell::empty()]), "a,b\r\ntrue,\r\n");
        assert_eq!(
            doc([
                Cell::opt(None::<i64>, Cell::int),
                Cell::opt(Some(7), Cell::int)
            ]),
            "a,b\r\n,7\r\n"
        );
    }

    #[test]
    fn commas_quotes_and_line_breaks_are_quoted() {
        assert_eq!(
            doc([Cell::text("Savar, Dhaka"), Cell::text("say \"hi\"\nbye")]),
            "a,b\r\n\"Savar, Dhaka\",\"say \"\"hi\"\"\nbye\"\r\n"
        );
    }
}
