//! OFX reading and writing for bank feeds: OFX 1.x (SGML), 2.x (XML) and the
//! Web Connect variants (QFX, QBO).
//!
//! Reading goes bytes → header and encoding ([`decode`]) → element tree
//! ([`sgml`] reads SGML or XML into a [`tree`]) → typed document
//! ([`extract`]). Every step treats the input as hostile: sizes and nesting
//! are capped and all failures are an [`OfxError`] carrying a line number.
//!
//! Dates are `chrono::DateTime<FixedOffset>` ([`OfxDateTime`]): instants
//! compare correctly and the bank's stated offset is kept; a value without a
//! zone is UTC.

mod date;
mod decode;
mod error;
mod extract;
mod model;
mod repair;
mod request;
mod sgml;
mod stream;
mod summary;
mod tree;
mod write;

use serde::Serialize;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use date::{OfxDateTime, format_date, parse_date};
/// Whether a file read in pieces is UTF-8: the CSV reader decides its encoding with it too.
pub(crate) use decode::ByteFacts;
pub use error::OfxError;
pub use model::{
    Account, AccountInfo, AccountListResponse, Balance, BankAccount, CurrencyInfo, FinancialInstitution, OfxDocument,
    OfxHeader, OfxVersion, Severity, SignonResponse, Statement, StatementKind, Status, Transaction,
};
pub use repair::{ReadWarning, WarningCode};
pub use request::{OfxRequest, Password, RequestMessage, SignonRequest, parse_request, write_request};
pub use stream::{Ending, Item, LenientStream, MAX_WARNINGS, StatementKey};
pub use summary::{AccountSummary, StatusEntry, StatusScope, Summary};
pub use write::write_response;

/// Limits applied before and while parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ParseOptions {
    /// Inputs longer than this are refused before any work.
    pub max_bytes: usize,
    /// Deepest element nesting accepted; real files stay under 10.
    pub max_depth: usize,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self { max_bytes: 16 * 1024 * 1024, max_depth: 64 }
    }
}

/// Parses an OFX response file (or any OFX file) into a typed document.
pub fn parse(input: &[u8], options: &ParseOptions) -> Result<OfxDocument, OfxError> {
    let decode::Prelude { version, header, text, body_start } = prelude(input, options)?;
    let ofx = ofx_element(&text, body_start, options)?;
    extract::document(version, header, &ofx)
}

/// Shared front half of [`parse`] and [`parse_request`]: the header, and the text the body is
/// read from.
fn prelude(input: &[u8], options: &ParseOptions) -> Result<decode::Prelude, OfxError> {
    if input.len() > options.max_bytes {
        return Err(OfxError::TooLarge { size: input.len(), limit: options.max_bytes });
    }
    decode::decode(input)
}

/// The `<OFX>` element of the body of `text` (from `body_start`); it borrows from `text`.
fn ofx_element<'a>(text: &'a str, body_start: usize, options: &ParseOptions) -> Result<tree::Element<'a>, OfxError> {
    let roots = sgml::read(text, body_start, options.max_depth)?;
    let body_line = 1 + text[..body_start].matches('\n').count();
    roots.into_iter().find(|root| root.name == "OFX").ok_or(OfxError::NoOfx { line: body_line })
}

/// A statement file read leniently: the document, what was tolerated, and each
/// transaction's line (`transaction_lines[statement][transaction]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LenientReading {
    pub document: OfxDocument,
    pub warnings: Vec<ReadWarning>,
    pub transaction_lines: Vec<Vec<usize>>,
}

/// Reads a file a person downloaded from a bank (OFX, QFX, QBO): the known defects of such
/// files are repaired with a warning each (`repair`); a transaction may lack a FITID (its
/// `fitid` is then empty); what stays ambiguous is an error with its line.
pub fn read_lenient(input: &[u8], options: &ParseOptions) -> Result<LenientReading, OfxError> {
    if input.len() > options.max_bytes {
        return Err(OfxError::TooLarge { size: input.len(), limit: options.max_bytes });
    }
    let mut stream = LenientStream::open(std::io::Cursor::new(input), options)?;
    let mut streamed: Vec<(StatementKey, usize, Transaction)> = Vec::new();
    while let Some(item) = stream.next_item()? {
        if let Item::Transaction { key, line, transaction } = item {
            streamed.push((key, line, *transaction));
        }
    }
    let Ending { mut document, keys, mut transaction_lines, warnings, .. } = stream.finish()?;
    for (key, line, transaction) in streamed {
        if let Some(index) = keys.iter().position(|k| *k == key) {
            document.statements[index].transactions.push(transaction);
            transaction_lines[index].push(line);
        }
    }
    Ok(LenientReading { document, warnings, transaction_lines })
}
