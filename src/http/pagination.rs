//! Cursor pagination shared by every list: `?limit=&cursor=` → `{items, next_cursor}`.
//!
//! A cursor is the position of the last item of a page: its creation time in microseconds and
//! its id, `<micros>-<id>`. Every string of that documented form is a valid position, so a
//! client can never hold a cursor that parses but fails. Keyset positions, unlike offsets,
//! neither skip nor repeat rows when rows are inserted while a client walks the list.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::problem::{ApiError, FieldError};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page; absent for the first page.
    #[param(pattern = "^[0-9]{1,16}-[0-9a-f]{32}$", example = "1763776000000000-0b1e3c5d7f9a4b2c8d6e0f1a2b3c4d5e")]
    pub cursor: Option<String>,
}

/// A validated page request.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub limit: u32,
    pub after: Option<(DateTime<Utc>, Uuid)>,
}

impl PageRequest {
    /// Rows to fetch: one more than the page, to know whether another page follows.
    pub fn fetch_limit(&self) -> i64 {
        i64::from(self.limit) + 1
    }
}

impl PageParams {
    pub fn validate(&self) -> Result<PageRequest, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(invalid("limit", format!("must be between 1 and {MAX_LIMIT}")));
        }
        let after = self.cursor.as_deref().map(decode_cursor).transpose()?;
        Ok(PageRequest { limit, after })
    }
}

fn invalid(field: &str, message: String) -> ApiError {
    ApiError::bad_request("invalid_query_parameter", format!("{field}: {message}"))
        .with_errors(vec![FieldError::new(field, message)])
}

fn decode_cursor(text: &str) -> Result<(DateTime<Utc>, Uuid), ApiError> {
    let bad = || {
        ApiError::bad_request("invalid_cursor", "The cursor is not one this server issued; start again without it.")
            .with_errors(vec![FieldError::new("cursor", "must be <micros>-<32 hex id> as issued in next_cursor")])
    };
    let (micros, id) = text.split_once('-').ok_or_else(bad)?;
    if micros.is_empty() || micros.len() > 16 || !micros.bytes().all(|b| b.is_ascii_digit()) || id.len() != 32 {
        return Err(bad());
    }
    let time = DateTime::from_timestamp_micros(micros.parse().map_err(|_| bad())?).ok_or_else(bad)?;
    Ok((time, Uuid::try_parse(id).map_err(|_| bad())?))
}

pub fn encode_cursor(time: DateTime<Utc>, id: Uuid) -> String {
    format!("{}-{}", time.timestamp_micros().max(0), id.simple())
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from `fetch_limit()` rows: the extra row only signals that more follow.
    pub fn from_rows<R>(
        mut rows: Vec<R>,
        request: &PageRequest,
        position: impl Fn(&R) -> (DateTime<Utc>, Uuid),
        view: impl Fn(R) -> T,
    ) -> Self {
        let has_more = rows.len() > request.limit as usize;
        rows.truncate(request.limit as usize);
        let next_cursor = if has_more {
            rows.last().map(|row| {
                let (time, id) = position(row);
                encode_cursor(time, id)
            })
        } else {
            None
        };
        Self { items: rows.into_iter().map(view).collect(), next_cursor }
    }

    /// [`Page::from_rows`] for rows that are already what the API answers.
    pub fn of(rows: Vec<T>, request: &PageRequest, position: impl Fn(&T) -> (DateTime<Utc>, Uuid)) -> Self {
        Self::from_rows(rows, request, position, std::convert::identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let time = DateTime::from_timestamp_micros(1_700_000_000_123_456).expect("valid");
        let id = Uuid::new_v4();
        let params = PageParams { limit: Some(10), cursor: Some(encode_cursor(time, id)) };
        let request = params.validate().expect("valid");
        assert_eq!(request.after, Some((time, id)));
    }

    #[test]
    fn bad_cursors_and_limits_are_rejected() {
        for cursor in ["", "!!!", "bm90LWEtY3Vyc29y", "12-xyz", "12345678901234567-0b1e3c5d7f9a4b2c8d6e0f1a2b3c4d5e"] {
            let params = PageParams { limit: None, cursor: Some(cursor.to_owned()) };
            assert_eq!(params.validate().expect_err(cursor).code(), "invalid_cursor");
        }
        for limit in [0, 201] {
            let params = PageParams { limit: Some(limit), cursor: None };
            assert_eq!(params.validate().expect_err("limit").code(), "invalid_query_parameter");
        }
    }
}
