//! Statement import: `POST /v1/connections/{id}/imports` (or `…/accounts/{account_id}/imports`)
//! with the file as the raw body or as the `file` part of `multipart/form-data`; the import's
//! report at `GET /v1/imports/{id}`; decisions on held rows at
//! `POST /v1/imports/{id}/duplicates/{duplicate_id}`.

use std::sync::{Arc, Mutex};

use axum::extract::multipart::MultipartError;
use axum::extract::{FromRequest, Multipart, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::auth::Caller;
use super::connections::{visible, writer};
use super::extract::{Json, Path, Query, parse_json};
use super::idempotent::{self, IdempotentPost, Outcome};
use super::problem::{ApiError, FieldError, Problem, problem_for_status};
use super::spool;
use crate::idempotency::StoredResponse;
use crate::import::{self, DuplicateState, ImportError, ImportReport, Target};
use crate::statement::ReadOptions;
use crate::statement::csv::{CsvOptions, DateOrder, DecimalMark};
use sha2::{Digest, Sha256};

/// How to read a CSV file when its own detection should not decide.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// The account the file is for; by default accounts are matched by the file's ids.
    pub account_id: Option<Uuid>,
    /// For CSV: the order of day and month in dates like 03/04/2024.
    pub date_order: Option<DateOrder>,
    /// For CSV: the decimal mark of amounts like 1,234.
    pub decimal_mark: Option<DecimalMark>,
}

/// A statement file as the raw request body.
#[derive(Debug, ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct StatementBytes(Vec<u8>);

/// The multipart form: the file, and optionally CSV options as JSON.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
// The form has these two parts and no others (`additionalProperties: false`): a part by another
// name is refused, so a misspelt `options` is not silently ignored.
#[serde(deny_unknown_fields)]
pub struct ImportUpload {
    /// The statement file (OFX, QFX, QBO or CSV; recognised from its content).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// `CsvOptions` as JSON: columns by name or 1-based position, date order, decimal mark.
    #[schema(value_type = Option<String>, example = r#"{"columns": {"date": "Buchungstag", "amount": 9}}"#)]
    options: Option<String>,
}

/// Import a statement file into a connection; accounts are matched by the file's account
/// ids. The same file twice adds nothing.
#[utoipa::path(post, operation_id = "import_statement", path = "/v1/connections/{id}/imports", tag = "imports", security(("api_key" = [])),
    params(
        ("id" = Uuid, Path, description = "Connection id"),
        ImportParams,
        ("idempotency-key" = Option<String>, Header, nullable = false, description = "Same key and body → the first response", pattern = "^[!-~]{1,200}$"),
    ),
    request_body(description = "The file, raw or as the `file` part of a form",
        content((ImportUpload = "multipart/form-data"), (StatementBytes = "application/octet-stream"))),
    responses(
        (status = 201, description = "Imported; the report", body = ImportReport,
            headers(("location" = String, description = "The import's URL"))),
        (status = 404, description = "No such connection visible to this key", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The file is larger than the service accepts", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The file cannot be read (the line and the problem), or its accounts are not the connection's", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn import_file(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(params): Query<ImportParams>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    run(state, caller, id, params, headers, body).await
}

/// Import a statement file into one account of a connection.
#[utoipa::path(post, operation_id = "import_account_statement", path = "/v1/connections/{id}/accounts/{account_id}/imports", tag = "imports", security(("api_key" = [])),
    params(
        ("id" = Uuid, Path, description = "Connection id"),
        ("account_id" = Uuid, Path, description = "Account id"),
        ("date_order" = Option<DateOrder>, Query, description = "For CSV: the order of day and month"),
        ("decimal_mark" = Option<DecimalMark>, Query, description = "For CSV: the decimal mark"),
        ("idempotency-key" = Option<String>, Header, nullable = false, description = "Same key and body → the first response", pattern = "^[!-~]{1,200}$"),
    ),
    request_body(description = "The file, raw or as the `file` part of a form",
        content((ImportUpload = "multipart/form-data"), (StatementBytes = "application/octet-stream"))),
    responses(
        (status = 201, description = "Imported; the report", body = ImportReport,
            headers(("location" = String, description = "The import's URL"))),
        (status = 404, description = "No such connection visible to this key", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The file is larger than the service accepts", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The file cannot be read (the line and the problem), or it is for another account", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn import_account_file(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, account_id)): Path<(Uuid, Uuid)>,
    Query(params): Query<AccountImportParams>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let params =
        ImportParams { account_id: Some(account_id), date_order: params.date_order, decimal_mark: params.decimal_mark };
    run(state, caller, id, params, headers, body).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountImportParams {
    pub date_order: Option<DateOrder>,
    pub decimal_mark: Option<DecimalMark>,
}

async fn run(
    state: AppState,
    caller: Caller,
    id: Uuid,
    params: ImportParams,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    writer(&caller)?;
    visible(&state, &caller.0, id).await?;
    let path = format!("/v1/connections/{id}/imports?{}", params.account_id.map(|a| a.to_string()).unwrap_or_default());
    let mut fingerprint = crate::idempotency::request_hasher("POST", &path);
    let (file, form_options) = file_of(&headers, body, &mut fingerprint).await?;
    let post = IdempotentPost::fingerprinted(&headers, &caller.0, fingerprint.finalize().to_vec())?;
    let mut csv = form_options.unwrap_or_default();
    csv.date_order = params.date_order.or(csv.date_order);
    csv.decimal_mark = params.decimal_mark.or(csv.decimal_mark);
    let options = ReadOptions { csv };
    let target = Target { connection_id: id, account_id: params.account_id };
    let spool::Spooled { file, sha256, .. } = file;
    let mut file = Some(file);
    let outcome = post
        .run(&state.pool, async |tx| {
            let file = file.take().ok_or_else(|| ApiError::internal(&"the file was taken"))?;
            let report = import::import_from(tx, target, file, &sha256, &options).await.map_err(import_problem)?;
            let body = serde_json::to_vec(&report).map_err(|error| ApiError::internal(&error))?;
            let location = format!("/v1/imports/{}", report.import_id);
            Ok(((), StoredResponse { status: StatusCode::CREATED.as_u16(), body, location: Some(location) }))
        })
        .await?;
    Ok(match outcome {
        Outcome::Done((), first) => idempotent::respond(first),
        Outcome::Replay(first) => idempotent::replay(first),
    })
}

/// The file (spooled) and any CSV options, from a form or the raw body; `fingerprint` is fed
/// the whole body as it arrives.
async fn file_of(
    headers: &HeaderMap,
    body: axum::body::Body,
    fingerprint: &mut Sha256,
) -> Result<(spool::Spooled, Option<CsvOptions>), ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.to_ascii_lowercase().starts_with("multipart/form-data") {
        return Ok((spool::body(headers, body, fingerprint).await?, None));
    }
    let hasher = Arc::new(Mutex::new(std::mem::take(fingerprint)));
    let request = axum::http::Request::builder()
        .header(header::CONTENT_TYPE, content_type)
        .body(spool::hashing(body, Arc::clone(&hasher)))
        .map_err(|error| ApiError::internal(&error))?;
    let bad_form = |error: MultipartError| match error.status() {
        StatusCode::PAYLOAD_TOO_LARGE => problem_for_status(StatusCode::PAYLOAD_TOO_LARGE),
        _ => ApiError::bad_request("invalid_form", error.body_text())
            .with_errors(vec![FieldError::new("file", "a multipart form with a file part")]),
    };
    let mut form = Multipart::from_request(request, &()).await.map_err(|rejection| {
        ApiError::bad_request("invalid_form", rejection.body_text())
            .with_errors(vec![FieldError::new("file", "a multipart form with a file part")])
    })?;
    let (mut file, mut options) = (None, None);
    while let Some(mut field) = form.next_field().await.map_err(bad_form)? {
        match field.name() {
            Some("file") => {
                let mut spool = spool::Spool::create(headers).await?;
                while let Some(chunk) = field.chunk().await.map_err(bad_form)? {
                    spool.write(&chunk).await?;
                }
                file = Some(spool.finish().await?);
            }
            Some("options") => {
                let text = field.bytes().await.map_err(bad_form)?;
                options = Some(options_of(&text)?);
            }
            name => {
                let name = name.unwrap_or_default().chars().take(40).collect::<String>();
                return Err(ApiError::validation(vec![FieldError::new(
                    name,
                    "the form has two parts: `file` and `options`",
                )]));
            }
        }
    }
    drop(form);
    // The rest of the body (the closing boundary) is fingerprinted as it was read.
    *fingerprint = hasher.lock().map(|hasher| hasher.clone()).map_err(|_| ApiError::internal(&"fingerprint"))?;
    let file = file.ok_or_else(|| {
        ApiError::bad_request("invalid_form", "the form has no part named `file`".to_owned())
            .with_errors(vec![FieldError::new("file", "a multipart form with a file part")])
    })?;
    Ok((file, options))
}

/// The `options` part is a form field whose value is JSON: a value that is not `CsvOptions` is a
/// refused field (422 on `options`), like any other field value, not a malformed request body.
fn options_of(text: &[u8]) -> Result<CsvOptions, ApiError> {
    parse_json::<CsvOptions>(text).map_err(|problem| {
        let reason = problem.detail().to_owned();
        ApiError::validation(vec![FieldError::new("options", reason)])
    })
}

fn import_problem(error: ImportError) -> ApiError {
    match error {
        ImportError::Unreadable(refusal) => {
            let field = refusal.line.map_or_else(|| "file".to_owned(), |line| format!("file:line {line}"));
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "statement_unreadable",
                format!("The file cannot be read: {refusal}."),
            )
            .with_errors(vec![FieldError::new(field, refusal.reason)])
        }
        ImportError::NoAccount(message) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "statement_account_unmatched",
            format!("The file's account cannot be matched: {message}."),
        ),
        ImportError::AlreadyDecided => {
            ApiError::new(StatusCode::CONFLICT, "duplicate_decided", "This row was confirmed or rejected already.")
        }
        ImportError::Database(error) => error.into(),
        ImportError::Corrupt(value) => ApiError::internal(&value),
    }
}

/// An import's report, with the current state of the rows it held.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportView {
    pub report: ImportReport,
    pub duplicates: Vec<DuplicateView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DuplicateView {
    pub duplicate_id: Uuid,
    pub account_id: Uuid,
    pub line: i32,
    pub state: DuplicateState,
    pub resembles: Uuid,
}

/// An import's report and the rows it holds for confirmation.
#[utoipa::path(get, operation_id = "get_import", path = "/v1/imports/{id}", tag = "imports", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "Import id")),
    responses(
        (status = 200, description = "The report", body = ImportView),
        (status = 404, description = "No such import visible to this key", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let (connection_id, report) =
        import::store::report(&state.reads, id).await?.ok_or_else(|| ApiError::not_found("No import has that id."))?;
    visible(&state, &caller.0, connection_id).await.map_err(|_| ApiError::not_found("No import has that id."))?;
    let held = import::store::held_of_import(&state.reads, id).await?;
    let duplicates: Result<Vec<DuplicateView>, ApiError> = held
        .into_iter()
        .map(|h| {
            let state = DuplicateState::parse(&h.state).ok_or_else(|| ApiError::internal(&h.state))?;
            Ok(DuplicateView {
                duplicate_id: h.id,
                account_id: h.account_id,
                line: h.line,
                state,
                resembles: h.resembles,
            })
        })
        .collect();
    Ok(axum::Json(serde_json::json!({ "report": report, "duplicates": duplicates? })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DuplicateDecision {
    /// `imported`: a transaction of its own, added to the feed; `discarded`: the stored one.
    pub decision: Decision,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Imported,
    Discarded,
}

/// Confirm a held row as a transaction of its own, or reject it as the stored one.
#[utoipa::path(post, operation_id = "decide_duplicate", path = "/v1/imports/{id}/duplicates/{duplicate_id}", tag = "imports", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "Import id"), ("duplicate_id" = Uuid, Path, description = "Held row id")),
    request_body = DuplicateDecision,
    responses(
        (status = 200, description = "Decided", body = DuplicateView),
        (status = 404, description = "No such import or row visible to this key", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Decided already", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, duplicate_id)): Path<(Uuid, Uuid)>,
    Json(request): Json<DuplicateDecision>,
) -> Result<axum::Json<DuplicateView>, ApiError> {
    writer(&caller)?;
    let missing = || ApiError::not_found("No held row has that id.");
    let (connection_id, _) = import::store::report(&state.reads, id).await?.ok_or_else(missing)?;
    visible(&state, &caller.0, connection_id).await.map_err(|_| missing())?;
    let decision = match request.decision {
        Decision::Imported => DuplicateState::Imported,
        Decision::Discarded => DuplicateState::Discarded,
    };
    let mut tx = crate::database::begin(&state.pool).await?;
    let (_, held) =
        import::decide(&mut tx, id, duplicate_id, decision).await.map_err(import_problem)?.ok_or_else(missing)?;
    tx.commit().await?;
    Ok(axum::Json(DuplicateView {
        duplicate_id: held.id,
        account_id: held.account_id,
        line: held.line,
        state: decision,
        resembles: held.resembles,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Category;
    use crate::statement::Refusal;

    /// An agent handed the problem code of a refused file looks it up in the catalogue as it is:
    /// each one is the reason of a statement-file entry.
    #[test]
    fn a_refused_files_problem_codes_are_catalogue_entries() {
        let catalog = crate::catalog::shipped_index().expect("the shipped catalogue loads");
        let refusals = [
            ImportError::Unreadable(Refusal { line: Some(3), reason: "no column holds dates".to_owned() }),
            ImportError::NoAccount("the file names no account and the connection has several".to_owned()),
        ];
        for refusal in refusals {
            let problem = import_problem(refusal);
            assert_eq!(problem.status(), StatusCode::UNPROCESSABLE_ENTITY);
            let entry = catalog
                .entries()
                .find(|stored| stored.entry.reason == problem.code())
                .unwrap_or_else(|| panic!("no catalogue entry has the reason {}", problem.code()));
            assert_eq!(entry.entry.category, Category::Statement, "{}", problem.code());
        }
    }
}
