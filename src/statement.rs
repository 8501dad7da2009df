//! Statement files a person brings (Web Connect OFX/QFX/QBO, CSV exports): the format is
//! recognised from the content, each reader is lenient where the meaning is unambiguous and
//! says so in a warning with the line, and refuses with the line and reason otherwise.
//!
//! OFX is read by [`crate::ofx::read_lenient`] (the one OFX parser); this module turns either
//! format into the same [`StatementFile`].

pub mod csv;
mod format;
mod from_ofx;
mod inspect;
mod model;
mod stream;

#[cfg(test)]
mod evaluation;
#[cfg(test)]
mod proptests;

pub use format::Format;
pub use inspect::inspect;
pub use model::{AccountRef, AccountStatement, Refusal, SkippedRow, StatementFile, StatementRow};
pub use stream::{Ending, Event, StatementStream, open};

pub use crate::ofx::{ReadWarning, WarningCode};

/// What a caller may say about a file: limits, and for CSV the columns and date order when
/// the reader's own detection should not decide.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadOptions {
    pub csv: csv::CsvOptions,
}

/// Largest file any reader accepts; the HTTP layer answers 413 above its own limit first.
pub const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;

/// Reads any supported statement file.
pub fn read(input: &[u8], options: &ReadOptions) -> Result<StatementFile, Refusal> {
    if let Some(refusal) = over_limit(input.len() as u64) {
        return Err(refusal);
    }
    stream::collect(open(std::io::Cursor::new(input), options)?)
}

fn over_limit(size: u64) -> Option<Refusal> {
    (size > MAX_FILE_BYTES as u64)
        .then(|| Refusal::whole_file(format!("file is {size} bytes, over the limit of {MAX_FILE_BYTES}")))
}
