//! The single error type of the OFX module.

use serde::Serialize;

/// Longest value quoted back in an error, so hostile input cannot bloat logs.
const MAX_QUOTED: usize = 64;

/// Why an OFX file could not be read. Every variant except `TooLarge` carries
/// the 1-based line of the input where the problem was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OfxError {
    #[error("input is {size} bytes, over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("line {line}: bad OFX header: {message}")]
    Header { line: usize, message: String },
    #[error("line {line}: malformed markup: {message}")]
    Syntax { line: usize, message: String },
    #[error("line {line}: elements nested deeper than {limit}")]
    TooDeep { line: usize, limit: usize },
    #[error("line {line}: no <OFX> element")]
    NoOfx { line: usize },
    #[error("line {line}: <{element}> lacks required <{child}>")]
    Missing { line: usize, element: String, child: String },
    #[error("line {line}: <{element}> has invalid value {value:?}: {message}")]
    InvalidValue { line: usize, element: String, value: String, message: String },
}

impl OfxError {
    /// The 1-based input line the error points at, when it has one.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::TooLarge { .. } => None,
            Self::Header { line, .. }
            | Self::Syntax { line, .. }
            | Self::TooDeep { line, .. }
            | Self::NoOfx { line }
            | Self::Missing { line, .. }
            | Self::InvalidValue { line, .. } => Some(*line),
        }
    }

    pub(crate) fn invalid(line: usize, element: &str, value: &str, message: &str) -> Self {
        Self::InvalidValue { line, element: element.to_owned(), value: truncate(value), message: message.to_owned() }
    }
}

fn truncate(value: &str) -> String {
    match value.char_indices().nth(MAX_QUOTED) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_owned(),
    }
}
