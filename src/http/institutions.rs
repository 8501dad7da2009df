//! `/v1/institutions`: the banks connections point at. Everyone reads; admins create and edit.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::auth::{Admins, Allowed, Caller};
use super::extract::{Json, Path, Query};
use super::pagination::{Page, PageParams};
use super::problem::{ApiError, FieldError, Problem};
use crate::incident;
use crate::institution::{self, Institution, InstitutionFields, OfxSettings, ProviderKind, store};

/// An institution with its connections by state (the caller's own, for tenant keys).
#[derive(Debug, Serialize, ToSchema)]
pub struct InstitutionDetail {
    #[serde(flatten)]
    pub institution: Institution,
    /// Connections by state; states with none are absent.
    pub connections_by_state: BTreeMap<String, i64>,
    /// How refreshes of this institution fared, across all tenants.
    pub health: InstitutionHealth,
}

/// How an institution's refreshes fared lately, and its open incident.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstitutionHealth {
    pub last_hour: SuccessRate,
    pub last_day: SuccessRate,
    pub open_incident: Option<crate::incident::Incident>,
}

/// Refresh outcomes over a period.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuccessRate {
    pub attempts: i64,
    pub successes: i64,
    /// successes / attempts, absent when nothing was attempted.
    #[schema(minimum = 0.0, maximum = 1.0, example = 0.97)]
    pub rate: Option<f64>,
}

impl SuccessRate {
    fn new(attempts: i64, successes: i64) -> Self {
        // Precision loss is irrelevant for counts far below 2^52.
        #[allow(clippy::cast_precision_loss)]
        let rate = (attempts > 0).then(|| successes as f64 / attempts as f64);
        Self { attempts, successes, rate }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfxInput {
    /// The institution's OFX server: required when `provider` is `ofx`, unused for `sandbox`.
    /// At most 500 characters.
    // A literal, as utoipa takes: a test keeps it equal to `institution::OFX_URL_PATTERN`.
    #[schema(
        pattern = r"^https?://[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
        max_length = 500,
        example = "https://ofx.bank.example/ofx"
    )]
    pub url: Option<String>,
    /// At most 64 characters.
    #[serde(default)]
    #[schema(max_length = 64)]
    pub org: String,
    /// At most 32 characters.
    #[serde(default)]
    #[schema(max_length = 32)]
    pub fid: String,
    /// At most 32 characters; default `QWIN`.
    #[schema(max_length = 32, example = "QWIN")]
    pub app_id: Option<String>,
    /// At most 8 characters; default `2700`.
    #[schema(max_length = 8, example = "2700")]
    pub app_version: Option<String>,
    /// 102, 103 or 220 (default 102).
    #[schema(value_type = Option<OfxVersionNumber>)]
    pub version: Option<i32>,
}

/// The OFX versions feedwatch speaks, for the document: 102 and 103 are SGML, 220 is XML.
#[derive(Debug)]
pub struct OfxVersionNumber;

impl utoipa::PartialSchema for OfxVersionNumber {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Integer)
            .enum_values(Some([102, 103, 220]))
            .examples([102])
            .into()
    }
}

impl ToSchema for OfxVersionNumber {}

/// An institution to create, or its new fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstitutionInput {
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,62}$", example = "first-example-bank")]
    pub slug: String,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$",
        example = "First Example Bank"
    )]
    pub name: String,
    pub provider: ProviderKind,
    pub ofx: OfxInput,
    /// Other names people search for (`FEB`, `First Example`).
    #[serde(default)]
    #[schema(max_items = 20, value_type = Vec<super::schema::Text<1, 200>>)]
    pub aliases: Vec<String>,
    #[serde(default = "active_by_default")]
    pub active: bool,
}

fn active_by_default() -> bool {
    true
}

impl InstitutionInput {
    fn into_fields(self) -> Result<InstitutionFields, ApiError> {
        let fields = InstitutionFields {
            slug: self.slug,
            name: self.name,
            provider: self.provider,
            ofx: OfxSettings {
                url: self.ofx.url,
                org: self.ofx.org,
                fid: self.ofx.fid,
                app_id: self.ofx.app_id.unwrap_or_else(|| "QWIN".into()),
                app_version: self.ofx.app_version.unwrap_or_else(|| "2700".into()),
                version: self.ofx.version.unwrap_or(102),
            },
            aliases: self.aliases,
            active: self.active,
        };
        let problems = institution::validate(&fields);
        if problems.is_empty() {
            Ok(fields)
        } else {
            Err(ApiError::validation(
                problems.into_iter().map(|(field, message)| FieldError::new(field, message)).collect(),
            ))
        }
    }
}

/// A unique violation on the slug becomes a 409 naming the field.
fn slug_conflict(error: sqlx::Error) -> ApiError {
    match &error {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
            ApiError::new(StatusCode::CONFLICT, "slug_taken", "Another institution has that slug.")
                .with_errors(vec![FieldError::new("slug", "already used")])
        }
        _ => error.into(),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InstitutionSearch {
    /// Text in the name, slug or aliases.
    #[param(max_length = 200, pattern = r"^[^\x00]*$", example = "example")]
    pub q: Option<String>,
}

/// List institutions, oldest first, optionally matching `q`.
#[utoipa::path(get, operation_id = "list_institutions", path = "/v1/institutions", tag = "institutions", security(("api_key" = [])),
    params(PageParams, InstitutionSearch),
    responses((status = 200, description = "One page of institutions", body = Page<Institution>)))]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    Query(page): Query<PageParams>,
    Query(search): Query<InstitutionSearch>,
) -> Result<axum::Json<Page<Institution>>, ApiError> {
    let page = page.validate()?;
    let q = search.q.filter(|q| !q.trim().is_empty());
    if q.as_ref().is_some_and(|q| q.chars().count() > 200) {
        return Err(ApiError::bad_request("invalid_query_parameter", "q: at most 200 characters")
            .with_errors(vec![FieldError::new("q", "at most 200 characters")]));
    }
    let rows = store::list(&state.reads, q.as_deref(), page.after, page.fetch_limit()).await?;
    Ok(axum::Json(Page::of(rows, &page, |row| (row.created_at, row.id))))
}

/// One institution: its connections by state, refresh success over the last hour and day, and
/// its open incident.
#[utoipa::path(get, operation_id = "get_institution", path = "/v1/institutions/{id}", tag = "institutions", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "Institution id")),
    responses(
        (status = 200, description = "The institution", body = InstitutionDetail),
        (status = 404, description = "No such institution", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<InstitutionDetail>, ApiError> {
    let institution =
        store::get(&state.reads, id).await?.ok_or_else(|| ApiError::not_found("No institution has that id."))?;
    let counts = store::connection_counts(&state.reads, id, caller.0.tenant_id).await?;
    let rates = incident::store::rates(&state.reads, id, Utc::now()).await?;
    let open_incident = incident::store::open_for(&state.reads, id).await?;
    Ok(axum::Json(InstitutionDetail {
        institution,
        connections_by_state: counts.into_iter().collect(),
        health: InstitutionHealth {
            last_hour: SuccessRate::new(rates.attempts_1h, rates.successes_1h),
            last_day: SuccessRate::new(rates.attempts_24h, rates.successes_24h),
            open_incident,
        },
    }))
}

/// Create an institution (admin).
#[utoipa::path(post, operation_id = "create_institution", path = "/v1/institutions", tag = "institutions", security(("api_key" = [])),
    request_body(content = InstitutionInput, example = json!({
        "slug": "first-example-bank", "name": "First Example Bank", "provider": "ofx",
        "ofx": {"url": "https://ofx.bank.example/ofx", "org": "FEB", "fid": "1234"}, "aliases": ["FEB"]
    })),
    responses(
        (status = 201, description = "Created", body = Institution, headers(("location" = String, description = "Its URL"))),
        (status = 409, description = "The slug is taken", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    _admin: Allowed<Admins>,
    Json(input): Json<InstitutionInput>,
) -> Result<(StatusCode, HeaderMap, axum::Json<Institution>), ApiError> {
    let fields = input.into_fields()?;
    let created = store::insert(&state.pool, Uuid::new_v4(), &fields).await.map_err(slug_conflict)?;
    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/institutions/{}", created.id)) {
        headers.insert(header::LOCATION, location);
    }
    Ok((StatusCode::CREATED, headers, axum::Json(created)))
}

/// Replace an institution's fields (admin).
#[utoipa::path(put, operation_id = "replace_institution", path = "/v1/institutions/{id}", tag = "institutions", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "Institution id")),
    request_body(content = InstitutionInput, example = json!({
        "slug": "first-example-bank", "name": "First Example Bank", "provider": "ofx",
        "ofx": {"url": "https://ofx.bank.example/ofx", "org": "FEB", "fid": "1234", "version": 103}, "active": true
    })),
    responses(
        (status = 200, description = "Updated", body = Institution),
        (status = 404, description = "No such institution", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The slug is taken", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn replace(
    State(state): State<AppState>,
    _admin: Allowed<Admins>,
    Path(id): Path<Uuid>,
    Json(input): Json<InstitutionInput>,
) -> Result<axum::Json<Institution>, ApiError> {
    let fields = input.into_fields()?;
    let updated = store::update(&state.pool, id, &fields)
        .await
        .map_err(slug_conflict)?
        .ok_or_else(|| ApiError::not_found("No institution has that id."))?;
    Ok(axum::Json(updated))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use utoipa::PartialSchema;

    use super::*;

    fn fields(provider: ProviderKind, url: Option<String>) -> InstitutionFields {
        let ofx = OfxSettings {
            url,
            org: String::new(),
            fid: String::new(),
            app_id: "QWIN".into(),
            app_version: "2700".into(),
            version: 102,
        };
        InstitutionFields { slug: "bank".into(), name: "Bank".into(), provider, ofx, aliases: Vec::new(), active: true }
    }

    /// The document's URL pattern is the one `institution::validate` applies, and it refuses
    /// exactly the characters the validator refuses.
    #[test]
    fn the_documented_ofx_url_is_the_one_institutions_take() {
        let schema = serde_json::to_value(OfxInput::schema()).unwrap();
        let documented = schema.pointer("/properties/url/pattern").and_then(serde_json::Value::as_str);
        assert_eq!(documented, Some(institution::OFX_URL_PATTERN), "{schema}");
        let pattern = regex::Regex::new(institution::OFX_URL_PATTERN).unwrap();
        // Every white space and control character is below U+3100; a few above stand for the rest.
        for c in (0..=0x3100).chain([0xfeff, 0xffff, 0x1_0000, 0x10_ffff]).filter_map(char::from_u32) {
            let url = format!("https://bank.example/{c}");
            let valid = institution::validate(&fields(ProviderKind::Ofx, Some(url.clone()))).is_empty();
            assert_eq!(pattern.is_match(&url), valid, "{c:?}");
        }
        for url in ["ftp://bank.example", "https:/bank.example", "bank.example", "http://bank.example"] {
            let valid = institution::validate(&fields(ProviderKind::Ofx, Some(url.into()))).is_empty();
            assert_eq!(pattern.is_match(url), valid, "{url}");
        }
    }

    /// The document says what `institution::validate` refuses across two fields: an `ofx`
    /// institution without a URL (`http::document` states it as a `not`).
    #[test]
    fn an_ofx_institution_needs_a_url_in_the_document_too() {
        assert!(!institution::validate(&fields(ProviderKind::Ofx, None)).is_empty());
        assert!(institution::validate(&fields(ProviderKind::Sandbox, None)).is_empty());
        let document = serde_json::to_value(crate::http::openapi()).unwrap();
        let refused = &document["components"]["schemas"]["InstitutionInput"]["not"];
        assert_eq!(refused["properties"]["provider"]["const"], ProviderKind::Ofx.as_str(), "{refused}");
        assert_eq!(refused["properties"]["ofx"]["not"]["required"][0], "url", "{refused}");
    }
}
