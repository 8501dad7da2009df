//! OFX reading and writing for bank feeds: OFX 1.x (SGML), 2.x (XML) and the
//! Web Connect variants (QFX, QBO).
//!
//! Reading goes bytes → header and encoding ([`decode`]) → well-formed XML
//! ([`sgml`]) → element tree via quick-xml ([`tree`]) → typed document
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
mod request;
mod sgml;
mod summary;
mod tree;
mod write;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use date::{OfxDateTime, format_date, parse_date};
pub use error::OfxError;
pub use model::{
    Account, AccountInfo, AccountListResponse, Balance, BankAccount, CurrencyInfo, FinancialInstitution, OfxDocument,
    OfxHeader, OfxVersion, Severity, SignonResponse, Statement, StatementKind, Status, Transaction,
};
pub use request::{OfxRequest, Password, RequestMessage, SignonRequest, parse_request, write_request};
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
    let (prelude, xml) = normalise(input, options)?;
    let ofx = ofx_element(&prelude, &xml, options)?;
    extract::document(prelude.version, prelude.header, &ofx)
}

/// Shared front half of [`parse`] and [`parse_request`]: the header and the body as XML.
fn normalise(input: &[u8], options: &ParseOptions) -> Result<(decode::Prelude, String), OfxError> {
    if input.len() > options.max_bytes {
        return Err(OfxError::TooLarge { size: input.len(), limit: options.max_bytes });
    }
    let prelude = decode::decode(input)?;
    let xml = sgml::to_xml(&prelude.text, prelude.body_start, options.max_depth)?;
    Ok((prelude, xml))
}

/// The `<OFX>` element of the normalised body; it borrows from `xml`.
fn ofx_element<'a>(
    prelude: &decode::Prelude,
    xml: &'a str,
    options: &ParseOptions,
) -> Result<tree::Element<'a>, OfxError> {
    let roots = tree::build(xml, options.max_depth)?;
    roots.into_iter().find(|root| root.name == "OFX").ok_or_else(|| {
        let line = 1 + prelude.text[..prelude.body_start].matches('\n').count();
        OfxError::NoOfx { line }
    })
}
