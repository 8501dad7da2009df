//! Bytes to text, and text to records: quoted fields (RFC 4180, quotes doubled inside),
//! line breaks inside quotes, and the delimiter chosen from the file itself.

use encoding_rs::{UTF_16BE, UTF_16LE, WINDOWS_1252};

use crate::ofx::{ReadWarning, WarningCode};

/// One row of the file and the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub line: usize,
    pub cells: Vec<String>,
}

impl Record {
    pub fn cell(&self, index: usize) -> &str {
        self.cells.get(index).map_or("", |cell| cell.trim())
    }

    pub fn is_blank(&self) -> bool {
        self.cells.iter().all(|cell| cell.trim().is_empty())
    }
}

/// UTF-8 with or without a BOM, UTF-16 with a BOM, else Windows-1252 (the code page of most
/// European banks' exports; every byte is a character in it, so reading never fails).
pub(crate) fn decode(input: &[u8], warnings: &mut Vec<ReadWarning>) -> String {
    if let Some(rest) = input.strip_prefix(b"\xEF\xBB\xBF") {
        return String::from_utf8_lossy(rest).into_owned();
    }
    for (bom, encoding) in [(&b"\xFF\xFE"[..], UTF_16LE), (&b"\xFE\xFF"[..], UTF_16BE)] {
        if let Some(rest) = input.strip_prefix(bom) {
            return encoding.decode_without_bom_handling(rest).0.into_owned();
        }
    }
    match std::str::from_utf8(input) {
        Ok(text) => text.to_owned(),
        Err(_) => {
            let message = "not UTF-8; read as Windows-1252";
            warnings.push(ReadWarning { line: None, code: WarningCode::Encoding, message: message.to_owned() });
            WINDOWS_1252.decode_without_bom_handling(input).0.into_owned()
        }
    }
}

const DELIMITERS: [char; 4] = [',', ';', '\t', '|'];

/// Rows looked at to choose the delimiter.
const SAMPLE_ROWS: usize = 200;

/// The delimiter that splits the most sampled lines into the same number (two or more) of
/// fields; a preamble of a few lines does not sway it.
pub(crate) fn choose_delimiter(text: &str) -> char {
    let mut best = (',', 0usize, 0usize);
    for delimiter in DELIMITERS {
        let counts: Vec<usize> =
            split(text, delimiter).take(SAMPLE_ROWS).filter(|r| !r.is_blank()).map(|r| r.cells.len()).collect();
        let mut tally = std::collections::BTreeMap::new();
        for count in counts.iter().filter(|&&count| count > 1) {
            *tally.entry(*count).or_insert(0usize) += 1;
        }
        let Some((&fields, &rows)) = tally.iter().max_by_key(|(fields, rows)| (**rows, **fields)) else {
            continue;
        };
        if (rows, fields) > (best.1, best.2) {
            best = (delimiter, rows, fields);
        }
    }
    best.0
}

/// Records in order. A quote opens a quoted field only at the start of a field; elsewhere
/// it is an ordinary character, as spreadsheets write it.
pub(crate) fn split(text: &str, delimiter: char) -> impl Iterator<Item = Record> + '_ {
    let mut cursor = Cursor::default();
    std::iter::from_fn(move || cursor.next(text, delimiter))
}

/// Where [`split`] is in a text, so a reader can hold the text and take records one at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cursor {
    at: usize,
    line: usize,
}

impl Default for Cursor {
    fn default() -> Self {
        Self { at: 0, line: 1 }
    }
}

impl Cursor {
    pub fn next(&mut self, text: &str, delimiter: char) -> Option<Record> {
        let rest = text.get(self.at..).filter(|rest| !rest.is_empty())?;
        let mut chars = rest.char_indices().peekable();
        let start = self.line;
        let mut cells = Vec::new();
        let mut cell = String::new();
        let mut quoted = false;
        let mut at_field_start = true;
        let mut used = rest.len();
        while let Some((at, c)) = chars.next() {
            match c {
                '"' if quoted => {
                    if chars.peek().map(|&(_, c)| c) == Some('"') {
                        chars.next();
                        cell.push('"');
                    } else {
                        quoted = false;
                    }
                }
                '"' if at_field_start => {
                    quoted = true;
                    at_field_start = false;
                }
                '\n' if !quoted => {
                    self.line += 1;
                    used = at + 1;
                    break;
                }
                '\r' if !quoted => {}
                c if c == delimiter && !quoted => {
                    cells.push(std::mem::take(&mut cell));
                    at_field_start = true;
                }
                c => {
                    if c == '\n' {
                        self.line += 1;
                    }
                    if c != '\r' || quoted {
                        cell.push(c);
                    }
                    at_field_start = false;
                }
            }
        }
        self.at += used;
        cells.push(cell);
        Some(Record { line: start, cells })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn quoted_fields_and_lines() {
        let text = "a,\"b, c\",\"say \"\"hi\"\"\"\r\n1,\"two\nlines\",3\nx";
        let records: Vec<Record> = split(text, ',').collect();
        assert_eq!(records[0].cells, ["a", "b, c", "say \"hi\""]);
        assert_eq!(records[1].cells, ["1", "two\nlines", "3"]);
        assert_eq!(records[1].line, 2);
        assert_eq!(records[2].line, 4);
    }

    #[test]
    fn delimiter_from_the_rows() {
        assert_eq!(
            choose_delimiter("Datum;Text;Betrag\n01.02.2024;Kaffee, gross;-3,50\n02.02.2024;Miete;-700,00\n"),
            ';'
        );
        assert_eq!(choose_delimiter("Date,Amount\n2024-01-01,1\n2024-01-02,2\n"), ',');
        assert_eq!(choose_delimiter("Date\tAmount\n2024-01-01\t1,5\n"), '\t');
    }

    #[test]
    fn encodings() {
        let mut warnings = Vec::new();
        assert_eq!(decode(b"\xEF\xBB\xBFDate", &mut warnings), "Date");
        assert_eq!(decode(b"Caf\xe9", &mut warnings), "Café");
        assert_eq!(warnings.len(), 1);
        assert_eq!(decode(b"\xFF\xFEa\0b\0", &mut warnings), "ab");
    }
}
