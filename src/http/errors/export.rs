//! `GET /v1/errors/export`: the whole catalogue as JSON or CSV, for spreadsheets and other tools.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ErrorEntry;
use crate::catalog::CatalogIndex;
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::extract::Query;

#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    #[default]
    Json,
    Csv,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// `json` (default) or `csv`.
    #[param(inline)]
    pub format: Option<ExportFormat>,
}

/// The whole catalogue, for spreadsheets and other tools.
#[utoipa::path(get, operation_id = "export_errors", path = "/v1/errors/export", tag = "errors", security(("api_key" = [])),
    params(ExportParams),
    responses((status = 200, description = "Every entry", content(
        (Vec<ErrorEntry> = "application/json"),
        (String = "text/csv"),
    ))))]
pub async fn export(State(state): State<AppState>, _caller: Caller, Query(params): Query<ExportParams>) -> Response {
    let index = state.catalog.current();
    match params.format.unwrap_or_default() {
        ExportFormat::Json => {
            let entries: Vec<ErrorEntry> = index.entries().map(|stored| ErrorEntry::new(&index, stored)).collect();
            axum::Json(entries).into_response()
        }
        ExportFormat::Csv => {
            let disposition = HeaderValue::from_static("attachment; filename=\"feedwatch-errors.csv\"");
            let content_type = HeaderValue::from_static("text/csv; charset=utf-8");
            ([(header::CONTENT_TYPE, content_type), (header::CONTENT_DISPOSITION, disposition)], csv(&index))
                .into_response()
        }
    }
}

fn csv(index: &CatalogIndex) -> String {
    let mut out = String::from(
        "code,reason,title,category,actor,retryable,retry_after,action,user_message,meaning,steps,aliases,revision\n",
    );
    for stored in index.entries() {
        let entry = &stored.entry;
        let aliases: Vec<String> =
            index.aliases_of(entry.code).iter().map(|a| format!("{}:{}", a.namespace, a.alias.code)).collect();
        let fields = [
            entry.code.to_string(),
            entry.reason.clone(),
            entry.title.clone(),
            json_word(&entry.category),
            json_word(&entry.actor),
            entry.retryable.to_string(),
            entry.retry_after.clone().unwrap_or_default(),
            json_word(&entry.action),
            entry.user_message.clone(),
            entry.meaning.clone(),
            entry.steps.iter().enumerate().map(|(i, step)| format!("{}. {step}", i + 1)).collect::<Vec<_>>().join("\n"),
            aliases.join(" "),
            stored.revision.to_string(),
        ];
        let row: Vec<String> = fields.iter().map(|field| csv_field(field)).collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

fn json_word<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// RFC 4180: quote fields with separators, quotes or line breaks; double inner quotes. A leading
/// `=`, `+`, `-` or `@` is prefixed with `'` so spreadsheets do not run it as a formula.
fn csv_field(field: &str) -> String {
    let field = if field.starts_with(['=', '+', '-', '@']) { format!("'{field}") } else { field.to_owned() };
    if field.contains([',', '"', '\n', '\r']) { format!("\"{}\"", field.replace('"', "\"\"")) } else { field }
}
