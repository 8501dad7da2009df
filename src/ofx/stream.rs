//! Lenient reading of a statement file a piece at a time: a file of tens of megabytes is read
//! in a few hundred kilobytes, with the same decoding, normaliser, tree, repairs and extraction
//! as a whole-file read (there is no second OFX parser; [`super::read_lenient`] is this read,
//! collected).
//!
//! Three passes over the source, since some decisions need the whole file before a byte of
//! the body can be read: the bytes (UTF-8 or not, ASCII or not: the encoding, `decode::plan`),
//! then the decoded text (where the body starts and ends, which elements are closed anywhere:
//! the normaliser's leaf rule, the tag-case warning), then the body itself. In the last pass
//! each `<STMTTRN>` of a statement is repaired and handed out as it closes, with its
//! statement's account and currency before the first; everything else (header, sign-on,
//! statement envelopes, balances: a few kilobytes) stays in a tree read at the end.

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Seek, SeekFrom};

use encoding_rs::Decoder;

use super::ParseOptions;
use super::decode;
use super::error::OfxError;
use super::extract::{self, Fitids};
use super::model::{Account, OfxDocument, OfxHeader, OfxVersion, StatementKind, Transaction};
use super::repair::{self, FitidCheck, ReadWarning};
use super::sgml;
use super::tree::Element;

mod survey;
use survey::{Survey, byte_facts, survey};

/// Bytes read from the source at a time.
const PIECE: usize = 64 * 1024;
/// Warnings kept; past this many, only their number (a file with a defect in every row would
/// otherwise hold a warning per row).
pub const MAX_WARNINGS: usize = 1000;

/// A statement, as its transactions name it: bank or card, and its place among those.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatementKey {
    pub kind: StatementKind,
    pub ordinal: usize,
}

/// What the read hands out, in file order.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A statement's transactions follow.
    Statement {
        key: StatementKey,
        account: Account,
        currency: Option<String>,
    },
    Transaction {
        key: StatementKey,
        line: usize,
        transaction: Box<Transaction>,
    },
}

/// The rest of the file, once every transaction was handed out: the document without the
/// transactions handed out (a statement whose account came after its transactions keeps
/// them here, with their lines), and every warning.
#[derive(Debug, Clone, PartialEq)]
pub struct Ending {
    pub document: OfxDocument,
    /// The key of each of `document.statements`.
    pub keys: Vec<StatementKey>,
    pub transaction_lines: Vec<Vec<usize>>,
    pub warnings: Vec<ReadWarning>,
    /// Warnings past [`MAX_WARNINGS`], counted but not kept.
    pub omitted_warnings: usize,
}

/// A lenient read in progress over `source` (a spooled upload, a file, a slice).
pub struct LenientStream<R> {
    source: R,
    decoder: Decoder,
    raw: Vec<u8>,
    raw_done: bool,
    /// Decoded text not yet normalised, from `text_at` (an offset in the decoded file).
    text: String,
    text_at: usize,
    body: Survey,
    normaliser: sgml::Streaming,
    records: Records,
    version: OfxVersion,
    header: OfxHeader,
    done: bool,
}

impl<R> std::fmt::Debug for LenientStream<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LenientStream")
            .field("text_at", &self.text_at)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<R: Read + Seek> LenientStream<R> {
    /// Reads what must be known before the body (two passes over `source`).
    pub fn open(source: R, options: &ParseOptions) -> Result<Self, OfxError> {
        Self::open_in_pieces(source, options, PIECE)
    }

    /// [`Self::open`], reading `piece` bytes at a time (tests cut files everywhere with it).
    fn open_in_pieces(mut source: R, options: &ParseOptions, piece: usize) -> Result<Self, OfxError> {
        let mut records = Records::default();
        let (head, utf8, ascii) = byte_facts(&mut source, options, piece)?;
        let plan = decode::plan(&head, utf8, ascii, &mut records.warnings)?;
        drop(head);
        let (body, closed) = survey(&mut source, &plan, &mut records, piece)?;
        source.seek(SeekFrom::Start(plan.bom_len as u64)).map_err(io)?;
        Ok(Self {
            source,
            decoder: plan.encoding.new_decoder_without_bom_handling(),
            raw: vec![0; piece],
            raw_done: false,
            text: String::new(),
            text_at: 0,
            normaliser: sgml::Streaming::new(closed, options.max_depth, body.lines_before),
            body,
            records,
            version: plan.version,
            header: plan.header,
            done: false,
        })
    }

    /// The next statement or transaction; `None` once the body is read (then [`Self::finish`]).
    pub fn next_item(&mut self) -> Result<Option<Item>, OfxError> {
        loop {
            if let Some(item) = self.records.ready.pop_front() {
                return Ok(Some(item));
            }
            if self.done {
                return Ok(None);
            }
            self.step()?;
        }
    }

    /// Reads the rest (the transactions not yet asked for are dropped) and the document around them.
    pub fn finish(mut self) -> Result<Ending, OfxError> {
        while !self.done {
            self.step()?;
            self.records.ready.clear();
        }
        let mut warnings = std::mem::take(&mut self.records.warnings);
        let mut omitted = self.records.omitted;
        let roots = self.normaliser.finish()?;
        let body_line = 1 + self.body.lines_before;
        let mut ofx = roots.into_iter().find(|root| root.name == "OFX").ok_or(OfxError::NoOfx { line: body_line })?;
        let mut tree_warnings = Vec::new();
        repair::repair(&mut ofx, &mut tree_warnings)?;
        for warning in tree_warnings {
            keep(&mut warnings, &mut omitted, warning);
        }
        let transaction_lines = extract::transaction_lines(&ofx);
        let document = extract::document_with(self.version, self.header, &ofx, Fitids::MayBeMissing)?;
        let keys = statement_keys(&ofx);
        warnings.sort_by_key(|warning| warning.line);
        Ok(Ending { document, keys, transaction_lines, warnings, omitted_warnings: omitted })
    }

    /// Decodes, normalises and builds one piece.
    fn step(&mut self) -> Result<(), OfxError> {
        if !self.raw_done {
            let read = read_some(&mut self.source, &mut self.raw)?;
            self.raw_done = read == 0;
            self.text.reserve(self.decoder.max_utf8_buffer_length(read).unwrap_or(read * 3));
            let _ = self.decoder.decode_to_string(&self.raw[..read], &mut self.text, self.raw_done);
        }
        let skip = self.body.start.saturating_sub(self.text_at).min(self.text.len());
        self.text.drain(..skip);
        self.text_at += skip;
        let mut last = self.raw_done;
        if let Some(end) = self.body.end
            && self.text_at + self.text.len() >= end
        {
            self.text.truncate(end.saturating_sub(self.text_at));
            last = true;
        }
        if self.text_at < self.body.start && !last {
            return Ok(());
        }
        let records = &mut self.records;
        let used = self.normaliser.feed(&self.text, last, &mut |path, element| records.on_close(path, element))?;
        self.text.drain(..used);
        self.text_at += used;
        self.done = last;
        Ok(())
    }
}

fn io(error: std::io::Error) -> OfxError {
    OfxError::Header { line: 1, message: format!("the file cannot be read: {error}") }
}

fn read_some(source: &mut impl Read, buffer: &mut [u8]) -> Result<usize, OfxError> {
    loop {
        match source.read(buffer) {
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            other => return other.map_err(io),
        }
    }
}

/// The transactions read so far, the statements they belong to, and the warnings.
#[derive(Debug, Default)]
struct Records {
    ready: VecDeque<Item>,
    statements: HashMap<StatementKey, FitidCheck>,
    warnings: Vec<ReadWarning>,
    omitted: usize,
}

impl Records {
    fn warn(&mut self, warning: ReadWarning) {
        keep(&mut self.warnings, &mut self.omitted, warning);
    }

    /// A `<STMTTRN>` of a statement whose account is known is repaired, checked and handed
    /// out; any other element goes back into the tree.
    fn on_close(
        &mut self,
        path: &[Element<'static>],
        element: Element<'static>,
    ) -> Result<Option<Element<'static>>, OfxError> {
        if element.name != "STMTTRN" {
            return Ok(Some(element));
        }
        let Some((key, body)) = statement_of(path) else {
            return Ok(Some(element));
        };
        let account_element = match key.kind {
            StatementKind::Bank => "BANKACCTFROM",
            StatementKind::CreditCard => "CCACCTFROM",
        };
        if body.child(account_element).is_none() {
            return Ok(Some(element));
        }
        if !self.statements.contains_key(&key) {
            // Repaired as the whole tree will be at the end (where its warnings are told).
            let mut head = body.clone();
            repair::aggregate(&mut head, &mut Vec::new())?;
            let account = extract::statement_account(&head, key.kind)?;
            let currency = extract::string(&head, "CURDEF");
            self.ready.push_back(Item::Statement { key, account, currency });
            self.statements.insert(key, FitidCheck::default());
        }
        let mut trn = element;
        let mut warnings = Vec::new();
        repair::aggregate(&mut trn, &mut warnings)?;
        if let Some(fitids) = self.statements.get_mut(&key) {
            fitids.check(&trn, &mut warnings);
        }
        for warning in warnings {
            self.warn(warning);
        }
        let transaction = extract::transaction(&trn, Fitids::MayBeMissing)?;
        self.ready.push_back(Item::Transaction { key, line: trn.line, transaction: Box::new(transaction) });
        Ok(None)
    }
}

fn keep(warnings: &mut Vec<ReadWarning>, omitted: &mut usize, warning: ReadWarning) {
    if warnings.len() < MAX_WARNINGS {
        warnings.push(warning);
    } else {
        *omitted += 1;
    }
}

/// The message sets, statement responses and bodies `extract` reads statements from.
const STATEMENT_PATHS: [(&str, &str, &str, StatementKind); 2] = [
    ("BANKMSGSRSV1", "STMTTRNRS", "STMTRS", StatementKind::Bank),
    ("CREDITCARDMSGSRSV1", "CCSTMTTRNRS", "CCSTMTRS", StatementKind::CreditCard),
];

/// The statement a `<STMTTRN>` closing inside `path` belongs to, when `extract` would read it
/// there: the first `<OFX>`, a statement response's first body, that body's first list.
fn statement_of<'p>(path: &'p [Element<'static>]) -> Option<(StatementKey, &'p Element<'static>)> {
    let [root, ofx, set, trnrs, body, list] = path else { return None };
    if ofx.name != "OFX" || root.child("OFX").is_some() || list.name != "BANKTRANLIST" {
        return None;
    }
    let (set_name, trn_name, body_name, kind) =
        STATEMENT_PATHS.into_iter().find(|(s, t, b, _)| set.name == *s && trnrs.name == *t && body.name == *b)?;
    if trnrs.child(body_name).is_some() || body.child("BANKTRANLIST").is_some() {
        return None;
    }
    let before: usize = ofx.children_named(set_name).map(|done| done.children_named(trn_name).count()).sum();
    let ordinal = before + set.children_named(trn_name).count();
    Some((StatementKey { kind, ordinal }, body))
}

/// The key of each statement `extract` reads from `ofx`, in its order.
fn statement_keys(ofx: &Element<'_>) -> Vec<StatementKey> {
    let mut keys = Vec::new();
    for (set, trn, _, kind) in STATEMENT_PATHS {
        let count: usize = ofx.children_named(set).map(|s| s.children_named(trn).count()).sum();
        keys.extend((0..count).map(|ordinal| StatementKey { kind, ordinal }));
    }
    keys
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ofx::repair::WarningCode;

    fn read(text: &[u8]) -> Result<Ending, OfxError> {
        let mut stream = LenientStream::open(std::io::Cursor::new(text), &ParseOptions::default())?;
        while stream.next_item()?.is_some() {}
        stream.finish()
    }

    fn read_in_pieces(text: &[u8], piece: usize) -> Result<Ending, OfxError> {
        let options = ParseOptions::default();
        let mut stream = LenientStream::open_in_pieces(std::io::Cursor::new(text), &options, piece)?;
        let mut items = Vec::new();
        while let Some(item) = stream.next_item()? {
            items.push(item);
        }
        let mut ending = stream.finish()?;
        // The items, in a form an `Ending` can be compared with.
        ending.warnings.push(ReadWarning {
            line: None,
            code: WarningCode::EmptyElement,
            message: format!("{items:?}"),
        });
        Ok(ending)
    }

    /// Wherever a file is cut into pieces (inside a tag, a comment, a character, the header),
    /// the read is the same.
    #[test]
    fn pieces_of_any_size_read_alike() {
        let corpus = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/statement/corpus");
        let mut files: Vec<_> = std::fs::read_dir(corpus).unwrap().map(|entry| entry.unwrap().path()).collect();
        files.sort();
        let mut compared = 0;
        for path in files.iter().filter(|path| path.extension().is_some_and(|e| e != "csv" && e != "md" && e != "toml"))
        {
            let bytes = std::fs::read(path).unwrap();
            let whole = read_in_pieces(&bytes, bytes.len().max(1) + 1);
            for piece in [1, 2, 3, 7, 64, 1000] {
                assert_eq!(read_in_pieces(&bytes, piece), whole, "{} in pieces of {piece}", path.display());
            }
            compared += 1;
        }
        assert!(compared >= 10, "{compared} OFX files in the corpus");
    }

    /// A statement of 20,000 transactions (2.6 MB) is read holding a piece of its text and a
    /// handful of elements at any time, never the file or its tree.
    #[test]
    fn a_large_file_is_read_a_piece_at_a_time() {
        let mut file =
            String::from("OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\n\n<OFX><BANKMSGSRSV1><STMTTRNRS><TRNUID>1\n");
        file.push_str(
            "<STMTRS><CURDEF>usd<BANKACCTFROM><BANKID>1<ACCTID>42<ACCTTYPE>checking</BANKACCTFROM><BANKTRANLIST>\n",
        );
        for i in 0..20_000 {
            file.push_str(&format!(
                "<STMTTRN><TRNTYPE>debit<DTPOSTED>2024-01-{:02}<TRNAMT>-{i}.50<FITID>F{i}<NAME>Shop number {i} with a long name<MEMO>\n</STMTTRN>\n",
                1 + i % 28
            ));
        }
        file.push_str("</BANKTRANLIST><LEDGERBAL><BALAMT>1<DTASOF>20240131</LEDGERBAL></STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>\n");
        assert!(file.len() > 2 << 20);
        let mut stream = LenientStream::open(std::io::Cursor::new(file.as_bytes()), &ParseOptions::default()).unwrap();
        let (mut transactions, mut largest_text, mut largest_tree) = (0, 0, 0);
        while let Some(item) = stream.next_item().unwrap() {
            if let Item::Transaction { transaction, .. } = item {
                assert_eq!(transaction.trntype, "DEBIT");
                transactions += 1;
            }
            largest_text = largest_text.max(stream.text.capacity());
            largest_tree = largest_tree.max(stream.normaliser.held());
        }
        assert_eq!(transactions, 20_000);
        assert!(largest_text < 1 << 20, "text held: {largest_text} bytes");
        assert!(largest_tree < 64, "elements held: {largest_tree}");
        let ending = stream.finish().unwrap();
        assert_eq!(ending.document.statements[0].currency.as_deref(), Some("USD"));
        assert!(ending.document.statements[0].transactions.is_empty(), "handed out, not kept");
        assert_eq!(ending.warnings.len(), MAX_WARNINGS, "a warning a row, capped");
        assert!(ending.omitted_warnings > 20_000, "{}", ending.omitted_warnings);
    }

    #[test]
    fn trailing_bytes_are_cut_with_their_line() {
        let ending = read(b"<OFX>\n</OFX>\n\0\0\0<html>").unwrap();
        assert_eq!(ending.warnings[0].line, Some(3));
        assert_eq!(ending.warnings[0].code, WarningCode::TrailingBytes);
        assert_eq!(ending.warnings[0].message, "9 bytes after </OFX> ignored");
    }
}
