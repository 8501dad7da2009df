//! Bytes to text, and text to records: quoted fields (RFC 4180, quotes doubled inside),
//! line breaks inside quotes, and the delimiter chosen from the file itself.
//!
//! A file is read from its source a piece at a time, as often as the reader needs a pass
//! over it: the encoding is decided from every byte first ([`Plan::of`]), then each pass
//! decodes and splits from the start ([`Records`]), holding a piece of text and the record
//! being read, never the file. [`Splitter`] is the one owner of how text becomes records;
//! it keeps its place between pieces, so a piece may end anywhere (inside a character, a
//! quoted field, a doubled quote, between CR and LF).

use std::io::{Read, Seek, SeekFrom};

use encoding_rs::{CoderResult, Decoder, Encoding, UTF_8, UTF_16BE, UTF_16LE, WINDOWS_1252};

use crate::ofx::{ByteFacts, ReadWarning, WarningCode};

/// Bytes read from the source at a time.
const PIECE: usize = 64 * 1024;

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

/// How a file is decoded, decided from all of its bytes: UTF-8 with or without a BOM,
/// UTF-16 with a BOM, else Windows-1252 (the code page of most European banks' exports;
/// every byte is a character in it, so reading never fails). Malformed UTF-8 after a BOM and
/// malformed UTF-16 read as U+FFFD.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    encoding: &'static Encoding,
    bom_len: u64,
}

impl Plan {
    /// Reads `source` through once; `Ok(None)` when it holds more than `limit` bytes.
    pub fn of(source: &mut impl Read, limit: u64, warnings: &mut Vec<ReadWarning>) -> std::io::Result<Option<Self>> {
        let mut facts = ByteFacts::new();
        let mut head = Vec::with_capacity(3);
        let mut buffer = vec![0; PIECE];
        let mut size = 0u64;
        loop {
            let read = read_some(source, &mut buffer)?;
            if read == 0 {
                break;
            }
            size += read as u64;
            if size > limit {
                return Ok(None);
            }
            facts.update(&buffer[..read]);
            let wanted = 3usize.saturating_sub(head.len()).min(read);
            head.extend_from_slice(&buffer[..wanted]);
        }
        Ok(Some(Self::from_facts(&head, facts.finish().0, warnings)))
    }

    /// `head` is the file's first three bytes (fewer if it is shorter); `utf8`, whether all of it is UTF-8.
    fn from_facts(head: &[u8], utf8: bool, warnings: &mut Vec<ReadWarning>) -> Self {
        let boms: [(&[u8], &'static Encoding); 3] =
            [(b"\xEF\xBB\xBF", UTF_8), (b"\xFF\xFE", UTF_16LE), (b"\xFE\xFF", UTF_16BE)];
        if let Some((bom, encoding)) = boms.into_iter().find(|(bom, _)| head.starts_with(bom)) {
            return Self { encoding, bom_len: bom.len() as u64 };
        }
        if utf8 {
            return Self { encoding: UTF_8, bom_len: 0 };
        }
        let message = "not UTF-8; read as Windows-1252";
        warnings.push(ReadWarning { line: None, code: WarningCode::Encoding, message: message.to_owned() });
        Self { encoding: WINDOWS_1252, bom_len: 0 }
    }
}

fn read_some(source: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match source.read(buffer) {
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// Decodes `bytes` onto `text` (`last` at the end of the input).
fn decode_onto(decoder: &mut Decoder, mut bytes: &[u8], text: &mut String, last: bool) {
    loop {
        text.reserve(decoder.max_utf8_buffer_length(bytes.len()).unwrap_or(bytes.len() * 3 + 4));
        let (result, read, _) = decoder.decode_to_string(bytes, text, last);
        bytes = &bytes[read..];
        if result == CoderResult::InputEmpty {
            return;
        }
    }
}

/// One pass over a file: its records in order, read a piece at a time. An I/O error ends the
/// records early; [`Self::finish`] reports it.
pub(crate) struct Records<R> {
    source: R,
    decoder: Decoder,
    raw: Vec<u8>,
    /// Decoded text from `at` not yet split.
    text: String,
    at: usize,
    splitter: Splitter,
    read_all: bool,
    failed: Option<std::io::Error>,
}

impl<R> std::fmt::Debug for Records<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records").field("line", &self.splitter.line).finish_non_exhaustive()
    }
}

impl<R: Read + Seek> Records<R> {
    /// From the start of the file's text (past its BOM).
    pub fn start(mut source: R, plan: Plan, delimiter: char) -> std::io::Result<Self> {
        source.seek(SeekFrom::Start(plan.bom_len))?;
        Ok(Self {
            source,
            decoder: plan.encoding.new_decoder_without_bom_handling(),
            raw: vec![0; PIECE],
            text: String::new(),
            at: 0,
            splitter: Splitter::new(delimiter),
            read_all: false,
            failed: None,
        })
    }

    /// `Err` when reading the source failed (the records stopped there).
    pub fn finish(&mut self) -> std::io::Result<()> {
        self.failed.take().map_or(Ok(()), Err)
    }

    /// Bytes of the file held: the piece read and its text (tests show they stay a piece).
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.raw.capacity() + self.text.capacity()
    }

    /// The next piece of the source, decoded.
    fn refill(&mut self) {
        self.text.clear();
        self.at = 0;
        match read_some(&mut self.source, &mut self.raw) {
            Ok(read) => {
                self.read_all = read == 0;
                decode_onto(&mut self.decoder, &self.raw[..read], &mut self.text, self.read_all);
            }
            Err(error) => {
                self.failed = Some(error);
                self.read_all = true;
            }
        }
    }
}

impl<R: Read + Seek> Iterator for Records<R> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        loop {
            let (used, record) = self.splitter.take(&self.text[self.at..]);
            self.at += used;
            if record.is_some() {
                return record;
            }
            if self.read_all {
                return if self.failed.is_some() { None } else { self.splitter.end() };
            }
            self.refill();
        }
    }
}

/// Text to records, fed in pieces. A quote opens a quoted field only at the start of a
/// field; elsewhere it is an ordinary character, as spreadsheets write it. CR outside quotes
/// is dropped; LF outside quotes ends a record.
#[derive(Debug)]
pub(crate) struct Splitter {
    delimiter: char,
    /// The line of the next character.
    line: usize,
    record: Option<Partial>,
}

/// A record begun in one piece that may end in a later one.
#[derive(Debug)]
struct Partial {
    line: usize,
    cells: Vec<String>,
    cell: String,
    quoted: bool,
    at_field_start: bool,
    /// A quote inside a quoted field: the next character says whether it is a doubled quote
    /// or the field's closing one.
    quote_waits: bool,
}

impl Partial {
    fn into_record(mut self) -> Record {
        self.cells.push(self.cell);
        Record { line: self.line, cells: self.cells }
    }
}

impl Splitter {
    pub fn new(delimiter: char) -> Self {
        Self { delimiter, line: 1, record: None }
    }

    /// Reads `text` to the end of a record: the bytes used and the record, or all of `text`
    /// and `None` when the record goes on in the next piece.
    pub fn take(&mut self, text: &str) -> (usize, Option<Record>) {
        if text.is_empty() {
            return (0, None);
        }
        let Self { delimiter, line, record } = self;
        let partial = record.get_or_insert_with(|| Partial {
            line: *line,
            cells: Vec::new(),
            cell: String::new(),
            quoted: false,
            at_field_start: true,
            quote_waits: false,
        });
        for (at, c) in text.char_indices() {
            if std::mem::take(&mut partial.quote_waits) {
                if c == '"' {
                    partial.cell.push('"');
                    continue;
                }
                partial.quoted = false;
            }
            match c {
                '"' if partial.quoted => partial.quote_waits = true,
                '"' if partial.at_field_start => {
                    partial.quoted = true;
                    partial.at_field_start = false;
                }
                '\n' if !partial.quoted => {
                    *line += 1;
                    return (at + 1, record.take().map(Partial::into_record));
                }
                '\r' if !partial.quoted => {}
                c if c == *delimiter && !partial.quoted => {
                    partial.cells.push(std::mem::take(&mut partial.cell));
                    partial.at_field_start = true;
                }
                c => {
                    if c == '\n' {
                        *line += 1;
                    }
                    partial.cell.push(c);
                    partial.at_field_start = false;
                }
            }
        }
        (text.len(), None)
    }

    /// The record the input ended in, if any.
    pub fn end(&mut self) -> Option<Record> {
        self.record.take().map(Partial::into_record)
    }
}

/// Records of a whole text in order (the pieces of a file go through [`Records`]).
#[cfg(test)]
pub(crate) fn split(text: &str, delimiter: char) -> impl Iterator<Item = Record> + '_ {
    let mut splitter = Splitter::new(delimiter);
    let mut at = 0;
    std::iter::from_fn(move || {
        let (used, record) = splitter.take(&text[at..]);
        at += used;
        record.or_else(|| splitter.end())
    })
}

/// A whole file's text, as [`Records`] decode it.
#[cfg(test)]
pub(crate) fn decode(input: &[u8], warnings: &mut Vec<ReadWarning>) -> String {
    let mut facts = ByteFacts::new();
    facts.update(input);
    let plan = Plan::from_facts(&input[..input.len().min(3)], facts.finish().0, warnings);
    let mut text = String::new();
    let start = usize::try_from(plan.bom_len).unwrap_or(0);
    decode_onto(&mut plan.encoding.new_decoder_without_bom_handling(), &input[start..], &mut text, true);
    text
}

pub(crate) const DELIMITERS: [char; 4] = [',', ';', '\t', '|'];

/// Rows looked at to choose the delimiter.
const SAMPLE_ROWS: usize = 200;

/// How many fields each of the first records has when split by one delimiter.
pub(crate) fn sample(records: impl Iterator<Item = Record>) -> Vec<usize> {
    records.take(SAMPLE_ROWS).filter(|r| !r.is_blank()).map(|r| r.cells.len()).collect()
}

/// The delimiter that splits the most sampled lines into the same number (two or more) of
/// fields; a preamble of a few lines does not sway it. `samples` are [`sample`]s of
/// [`DELIMITERS`], in that order.
pub(crate) fn choose_delimiter(samples: impl IntoIterator<Item = (char, Vec<usize>)>) -> char {
    let mut best = (',', 0usize, 0usize);
    for (delimiter, counts) in samples {
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

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A source that hands out its bytes cut at the given offsets (a read never crosses one),
    /// so a reader's pieces end exactly there.
    pub(crate) struct Pieces<'a> {
        bytes: &'a [u8],
        at: usize,
        cuts: Vec<usize>,
    }

    impl<'a> Pieces<'a> {
        pub fn cut_at(bytes: &'a [u8], cuts: Vec<usize>) -> Self {
            Self { bytes, at: 0, cuts }
        }

        pub fn of_size(bytes: &'a [u8], size: usize) -> Self {
            Self::cut_at(bytes, (size..bytes.len()).step_by(size).collect())
        }
    }

    impl Read for Pieces<'_> {
        fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
            let next =
                self.cuts.get(self.cuts.partition_point(|&cut| cut <= self.at)).copied().unwrap_or(self.bytes.len());
            let end = next.min(self.at + buffer.len()).min(self.bytes.len());
            let read = end.saturating_sub(self.at);
            buffer[..read].copy_from_slice(&self.bytes[self.at..end]);
            self.at += read;
            Ok(read)
        }
    }

    impl Seek for Pieces<'_> {
        fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
            let SeekFrom::Start(to) = to else { unreachable!("the reader seeks from the start") };
            self.at = usize::try_from(to).unwrap().min(self.bytes.len());
            Ok(self.at as u64)
        }
    }

    /// Every record of `bytes` read from `source`, with the warnings its encoding gave.
    fn records_of(mut source: impl Read + Seek, delimiter: char) -> (Vec<Record>, Vec<ReadWarning>) {
        let mut warnings = Vec::new();
        let plan = Plan::of(&mut source, u64::MAX, &mut warnings).unwrap().unwrap();
        let mut records = Records::start(source, plan, delimiter).unwrap();
        let all = records.by_ref().collect();
        records.finish().unwrap();
        (all, warnings)
    }

    fn whole(bytes: &[u8], delimiter: char) -> (Vec<Record>, Vec<ReadWarning>) {
        let mut warnings = Vec::new();
        let text = decode(bytes, &mut warnings);
        (split(&text, delimiter).collect(), warnings)
    }

    /// Files whose every byte boundary is a hard one: a BOM, multi-byte characters, quoted
    /// fields over lines and with doubled quotes, CR LF, a quote closing the file, and the
    /// other encodings.
    fn awkward_files() -> Vec<Vec<u8>> {
        let utf8 = "\u{feff}Date;Text;Betrag\r\n05.01.2024;\"Caf\u{e9} \"\"Zur M\u{fc}hle\"\"\r\nzweite Zeile\";-3,50 \u{20ac}\r\n\r\n\"\";x\u{1f600}y;\"\"\"\"\n06.01.2024;\"a;b\"\"\";1\r\n\"open";
        let no_bom = utf8.trim_start_matches('\u{feff}').to_owned() + "\"";
        let mut cp1252 = b"Datum;Empf\xe4nger;Betrag\r\n01.02.2024;\"Caf\xe9\r\nNord\";-1,00\r\n".to_vec();
        cp1252.extend_from_slice(b"02.02.2024;\x80 \x93quoted\x94;2,00");
        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend(
            "Date,\"Name\r\n\u{e9}\",Amount\r\n2024-01-01,\u{20ac},1\n".encode_utf16().flat_map(u16::to_le_bytes),
        );
        let mut broken_after_bom = b"\xEF\xBB\xBFa,\xE2\x82,b\r\n\xF0\x9F,c\xC3".to_vec();
        broken_after_bom.push(b'\n');
        vec![utf8.as_bytes().to_vec(), no_bom.into_bytes(), cp1252, utf16, broken_after_bom]
    }

    /// Wherever a file is cut (inside a character, a quoted field, a doubled quote, between
    /// CR and LF), the records are those of its whole text.
    #[test]
    fn a_file_cut_anywhere_splits_as_its_whole_text() {
        for bytes in awkward_files() {
            for delimiter in DELIMITERS {
                let expected = whole(&bytes, delimiter);
                for cut in 0..=bytes.len() {
                    let read = records_of(Pieces::cut_at(&bytes, vec![cut]), delimiter);
                    assert_eq!(read, expected, "cut at {cut} of {:?}", String::from_utf8_lossy(&bytes));
                }
                for size in 1..=8 {
                    let read = records_of(Pieces::of_size(&bytes, size), delimiter);
                    assert_eq!(read, expected, "pieces of {size} of {:?}", String::from_utf8_lossy(&bytes));
                }
            }
        }
    }

    /// After a BOM, malformed UTF-8 reads as it always did (`String::from_utf8_lossy`).
    #[test]
    fn malformed_utf8_after_a_bom_reads_as_lossy_utf8() {
        let samples: [&[u8]; 5] =
            [b"a\xE2\x82b", b"\xF0\x9F\x98", b"\xC3\xC3\xA9", b"\xED\xA0\x80z", b"\xF4\x90\x80\x80\xFF"];
        for sample in samples {
            let mut bytes = b"\xEF\xBB\xBF".to_vec();
            bytes.extend_from_slice(sample);
            assert_eq!(decode(&bytes, &mut Vec::new()), String::from_utf8_lossy(sample), "{sample:?}");
        }
    }

    #[test]
    fn quoted_fields_and_lines() {
        let text = "a,\"b, c\",\"say \"\"hi\"\"\"\r\n1,\"two\nlines\",3\nx";
        let records: Vec<Record> = split(text, ',').collect();
        assert_eq!(records[0].cells, ["a", "b, c", "say \"hi\""]);
        assert_eq!(records[1].cells, ["1", "two\nlines", "3"]);
        assert_eq!(records[1].line, 2);
        assert_eq!(records[2].line, 4);
    }

    fn chosen(text: &str) -> char {
        choose_delimiter(DELIMITERS.map(|delimiter| (delimiter, sample(split(text, delimiter)))))
    }

    #[test]
    fn delimiter_from_the_rows() {
        assert_eq!(chosen("Datum;Text;Betrag\n01.02.2024;Kaffee, gross;-3,50\n02.02.2024;Miete;-700,00\n"), ';');
        assert_eq!(chosen("Date,Amount\n2024-01-01,1\n2024-01-02,2\n"), ',');
        assert_eq!(chosen("Date\tAmount\n2024-01-01\t1,5\n"), '\t');
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
