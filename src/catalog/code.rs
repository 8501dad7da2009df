//! The number of a canonical catalogue entry, one type from the TOML files to PostgreSQL.

use std::fmt;
use std::num::ParseIntError;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The stable number of a canonical entry (`102`, `103`). A provider's own code
/// (`ITEM_LOGIN_REQUIRED`, `ofx:15500`) is an alias that resolves to one of these.
///
/// Serialises as a bare integer and documents itself as today's `u32`; fields of API types say
/// `#[schema(value_type = u32)]` so the document keeps its inline integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Code(u32);

impl Code {
    /// Bank settings wrong on our side: what a refresh assigns when an institution has no usable
    /// address, before asking any bank.
    pub const INSTITUTION_SETTINGS: Code = Code(720);
    /// Unclassified: a provider code the catalogue does not list, and credentials that cannot be
    /// opened.
    pub const UNCLASSIFIED: Code = Code(799);
    /// The bank no longer lists the account.
    pub const ACCOUNT_NOT_FOUND: Code = Code(324);
    /// The account is closed at the bank.
    pub const ACCOUNT_CLOSED: Code = Code(708);
    /// Refreshes succeed but an account has brought nothing new for far longer than its usual
    /// rhythm (`feed::stall`).
    pub const FEED_STALLED: Code = Code(721);

    pub const fn new(code: u32) -> Self {
        Self(code)
    }

    pub const fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Code {
    // Delegates so width and alignment (`{:>5}`) apply as they do to the number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for Code {
    type Err = ParseIntError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.parse().map(Self)
    }
}

/// A number that cannot be a catalogue code where it was found: a negative one read back from
/// PostgreSQL, or one too large for its `int` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} is out of range for a catalogue code")]
pub struct CodeOutOfRange(i64);

/// PostgreSQL stores codes as `int`.
impl TryFrom<i32> for Code {
    type Error = CodeOutOfRange;

    fn try_from(stored: i32) -> Result<Self, Self::Error> {
        u32::try_from(stored).map(Self).map_err(|_| CodeOutOfRange(i64::from(stored)))
    }
}

impl TryFrom<Code> for i32 {
    type Error = CodeOutOfRange;

    fn try_from(code: Code) -> Result<Self, Self::Error> {
        i32::try_from(code.0).map_err(|_| CodeOutOfRange(i64::from(code.0)))
    }
}

impl utoipa::PartialSchema for Code {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        u32::schema()
    }
}

impl utoipa::ToSchema for Code {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_and_print_as_their_number() {
        assert_eq!("102".parse::<Code>(), Ok(Code::new(102)));
        assert!("bank_unavailable".parse::<Code>().is_err());
        assert_eq!(format!("{:>5}|{}", Code::new(102), Code::new(7)), "  102|7");
        assert_eq!(serde_json::to_string(&Code::new(102)).unwrap_or_default(), "102");
        assert_eq!(serde_json::from_str::<Code>("103").ok(), Some(Code::new(103)));
    }

    #[test]
    fn stored_numbers_out_of_range_are_errors_not_codes() {
        assert_eq!(Code::try_from(102_i32), Ok(Code::new(102)));
        assert!(Code::try_from(-1_i32).is_err());
        assert_eq!(i32::try_from(Code::new(102)), Ok(102));
        assert!(i32::try_from(Code::new(u32::MAX)).is_err());
    }

    #[test]
    fn the_schema_is_the_plain_integer_it_replaced() {
        use utoipa::PartialSchema;
        let schema = |value| serde_json::to_value(value).unwrap_or_default();
        assert_eq!(schema(Code::schema()), schema(u32::schema()));
    }
}
