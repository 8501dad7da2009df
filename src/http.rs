//! The HTTP surface. The router and the OpenAPI document are built from the same route list,
//! so the document cannot forget a route.

pub mod accounts;
pub mod api_keys;
pub mod auth;
pub mod body_limit;
pub mod connections;
pub mod console;
pub mod coverage;
pub mod diagnosis;
pub mod document;
pub mod encoding;
pub mod errors;
pub mod extract;
pub mod feed;
pub mod health;
pub mod hygiene;
pub mod idempotent;
pub mod imports;
pub mod incidents;
pub mod institutions;
pub mod listener;
pub mod middleware;
pub mod ops;
pub mod pagination;
pub mod precondition;
pub mod problem;
pub mod refreshes;
pub mod route_timeout;
pub mod sandbox_bank;
pub mod schema;
pub mod spool;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{OpenApi as OpenApiDocument, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::cache::KeyCache;
use crate::catalog::CatalogHandle;
use crate::connection::Sealer;
use crate::telemetry::Metrics;
use problem::{ApiError, Problem};

/// What handlers share, behind one reference count. axum clones the state several times per
/// request (the route's service, each `State` extractor, `middleware::record_metrics`); with the
/// handles side by side each clone counted eleven of them up and down again, atomics that the
/// request threads passed between their cores.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Handles>);

impl AppState {
    pub fn new(handles: Handles) -> Self {
        Self(Arc::new(handles))
    }
}

impl std::ops::Deref for AppState {
    type Target = Handles;

    fn deref(&self) -> &Handles {
        &self.0
    }
}

/// What [`AppState`] shares: handles the rest of the service holds too (the pool, metrics,
/// the catalogue, the sealer), the HTTP layer's own caches, owned here since `AppState` is the
/// one reference count, and settings.
#[derive(Debug)]
pub struct Handles {
    pub pool: PgPool,
    /// The same pool for single-statement reads, keeping connections between them.
    pub reads: crate::database::reads::Reads,
    pub metrics: Arc<Metrics>,
    pub catalog: CatalogHandle,
    pub sealer: Arc<Sealer>,
    /// Recently verified API keys.
    pub keys: KeyCache,
    /// After a successful refresh, how long a manual one answers 429.
    pub refresh_cooldown: Duration,
    /// A connection without a success for this long is stale.
    pub stale_after: Duration,
    /// When an account whose refreshes succeed counts as stalled (the diagnosis explains it).
    pub stalls: crate::feed::stall::Rules,
    pub rendered_entries: errors::RenderedEntries,
    /// Which hosts webhook URLs may name.
    pub webhook_hosts: crate::webhook::HostPolicy,
    /// Failed authentication attempts per client address.
    pub auth_failures: crate::auth::throttle::FailureThrottle,
}

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub cors_origins: Vec<String>,
    pub max_body_bytes: usize,
    /// Largest statement file a `POST …/imports` accepts (every other route: `max_body_bytes`).
    pub import_max_bytes: usize,
    pub request_timeout: Duration,
    /// Longest a `POST …/imports` may take (every other route: `request_timeout`).
    pub import_timeout: Duration,
    /// The helpdesk console's sessions.
    pub console: console::Settings,
    /// Failed authentication attempts a client address may make before it is answered 429.
    pub auth_throttle: crate::auth::throttle::ThrottleSettings,
    /// Header read and keep-alive timeouts, and the cap on connections.
    pub connections: listener::ConnectionLimits,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "feedwatch",
        description = "Bank-feed connection health and error lookup. Errors are RFC 9457 \
                       problem+json documents with a stable `code`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(
        Problem,
        problem::FieldError,
        refreshes::RefreshRequest,
        crate::statement::csv::DateOrder,
        crate::statement::csv::DecimalMark
    )),
    tags(
        (name = "operations", description = "Liveness, readiness, metrics"),
        (name = "connections", description = "A tenant's bank connections, accounts and timeline"),
        (name = "institutions", description = "Banks and card issuers, and how to reach them"),
        (name = "refreshes", description = "Refresh triggers, their history, and the queue"),
        (name = "feed", description = "Transactions: the sync cursor and per-account listing"),
        (name = "imports", description = "Statement files (OFX, QFX, QBO, CSV) imported into a connection, and rows held for confirmation"),
        (name = "health", description = "Fleet health at a glance: counts by state, error, institution, staleness"),
        (name = "incidents", description = "Banks failing for many connections at once: detected or declared"),
        (name = "errors", description = "The error-code reference: lookup by code or alias, search, edits"),
        (name = "api-keys", description = "API keys and roles (admin)"),
        (name = "webhooks", description = "Endpoints that receive signed events, and their delivery logs"),
    )
)]
struct ApiDoc;

fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(api_keys::create, api_keys::list))
        .routes(routes!(api_keys::get, api_keys::revoke))
        .routes(routes!(connections::create, connections::list))
        .routes(routes!(connections::get, connections::patch, connections::delete))
        .routes(routes!(accounts::list))
        .routes(routes!(accounts::patch))
        .routes(routes!(connections::events))
        .routes(routes!(refreshes::trigger))
        .routes(routes!(refreshes::history))
        .routes(routes!(refreshes::get))
        .routes(routes!(refreshes::bulk))
        .routes(routes!(refreshes::queue))
        .routes(routes!(feed::sync))
        .routes(routes!(coverage::get))
        .routes(routes!(imports::import_file))
        .routes(routes!(imports::import_account_file))
        .routes(routes!(imports::get))
        .routes(routes!(imports::decide))
        .routes(routes!(feed::account_transactions))
        .routes(routes!(institutions::list, institutions::create))
        .routes(routes!(institutions::get, institutions::replace))
        .routes(routes!(health::summary))
        .routes(routes!(incidents::list, incidents::declare))
        .routes(routes!(incidents::get, incidents::patch))
        .routes(routes!(diagnosis::diagnose))
        .routes(routes!(errors::search_entries))
        .routes(routes!(errors::export::export))
        .routes(routes!(errors::lookup, errors::edit))
        .routes(routes!(errors::revisions))
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(webhooks::get, webhooks::patch, webhooks::delete))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::deliveries))
}

/// The OpenAPI document, as served at `/openapi.json` and committed in `openapi/`.
pub fn openapi() -> OpenApiDocument {
    split_routes().1
}

/// The router and its document. Modifiers run here, after the routes have added their paths
/// (in `#[openapi(modifiers)]` they would see an empty document).
fn split_routes() -> (Router<AppState>, OpenApiDocument) {
    let (router, mut document) = routes().split_for_parts();
    SecurityAndProblems.modify(&mut document);
    document::complete(&mut document);
    schema::forbid_nul_in_request_text(&mut document);
    (router, document)
}

/// The whole service: routes, docs page, fallback and middleware. The sandbox bank is not
/// here: demo mode serves it on a listener of its own (`sandbox_bank::service`).
pub fn router(state: AppState, settings: &HttpSettings) -> Router {
    let (api, document) = split_routes();
    let docs = utoipa_swagger_ui::SwaggerUi::new("/docs").url("/openapi.json", document);
    let request_id = HeaderName::from_static(middleware::REQUEST_ID);
    let layers = ServiceBuilder::new()
        .layer(SetSensitiveRequestHeadersLayer::new([header::AUTHORIZATION, header::COOKIE]))
        .layer(axum::middleware::from_fn(hygiene::security_headers))
        .layer(axum::middleware::from_fn(hygiene::bound_request_id))
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .layer(axum::middleware::from_fn(middleware::trace_context))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::record_metrics))
        .layer(cors(&settings.cors_origins))
        .layer(axum::middleware::map_response(encoding::tag_layer_coding))
        // Per response, unless its handler chose the coding (`encoding`): a body compressed once.
        .layer(CompressionLayer::new().compress_when(encoding::layer_predicate()))
        .layer(axum::middleware::from_fn(middleware::problem_details))
        .layer(axum::middleware::from_fn_with_state(
            route_timeout::Timeouts { api: settings.request_timeout, import: settings.import_timeout },
            route_timeout::limit,
        ))
        .layer(CatchPanicLayer::new())
        .layer(axum::middleware::from_fn_with_state(
            body_limit::BodyLimits { api: settings.max_body_bytes, import: settings.import_max_bytes },
            body_limit::limit,
        ))
        // `body_limit` bounds every body by its route; axum's own 2 MB default would cut imports.
        .layer(axum::extract::DefaultBodyLimit::disable());
    // The console is not part of the JSON API, so not of its document; it shares the layers.
    api.merge(console::router(settings.console.clone()))
        .merge(docs)
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(layers)
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then lets in-flight requests
/// finish for up to `grace` before giving up on them, so a stuck request cannot hold a
/// shutdown forever.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    serve_with_limits(listener, router, shutdown, grace, listener::ConnectionLimits::default()).await
}

/// [`serve`] with the given connection limits.
pub async fn serve_with_limits(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    grace: Duration,
    limits: listener::ConnectionLimits,
) -> std::io::Result<()> {
    let server = listener::serve_connections(listener, router, shutdown.clone(), limits);
    let grace_expired = async {
        shutdown.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => result,
        () = grace_expired => {
            tracing::warn!(?grace, "in-flight requests still running after the grace period; exiting anyway");
            Ok(())
        }
    }
}

async fn route_not_found() -> ApiError {
    problem::problem_for_status(StatusCode::NOT_FOUND)
}

async fn method_not_allowed() -> ApiError {
    problem::problem_for_status(StatusCode::METHOD_NOT_ALLOWED)
}

fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let request_id =
        request.headers().get(middleware::REQUEST_ID).and_then(|value| value.to_str().ok()).unwrap_or_default();
    // `middleware::trace_context` runs first, so the request's trace is current here.
    let trace_id = crate::telemetry::trace::current().map(|context| context.trace_id()).unwrap_or_default();
    tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id, trace_id)
}

fn cors(origins: &[String]) -> CorsLayer {
    let allowed: Vec<HeaderValue> =
        origins.iter().filter_map(|origin| HeaderValue::from_str(origin.trim()).ok()).collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([
            header::LOCATION,
            header::ETAG,
            header::RETRY_AFTER,
            HeaderName::from_static(middleware::REQUEST_ID),
        ])
}

/// Declares the bearer scheme and the problem responses every operation can give, so the
/// document tells the truth without each handler repeating them.
struct SecurityAndProblems;

impl Modify for SecurityAndProblems {
    fn modify(&self, openapi: &mut OpenApiDocument) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("fw_<id>_<secret>")
                    .description(Some("An API key from `feedwatch keys create` or POST /v1/api-keys"))
                    .build(),
            ),
        );
        // utoipa leaves the variants of a tagged request enum open; the server rejects unknown
        // fields in each, so the document says so.
        close_variants(components, "CreateApiKey");
        for item in openapi.paths.paths.values_mut() {
            for operation in operations(item) {
                let secured = operation.security.as_ref().is_some_and(|list| !list.is_empty());
                let has_body = operation.request_body.is_some();
                let has_params = operation.parameters.as_ref().is_some_and(|list| !list.is_empty());
                let responses = &mut operation.responses.responses;
                let mut add = |status: &str, description: &str| {
                    responses.entry(status.to_owned()).or_insert_with(|| problem_response(description));
                };
                if secured || has_body || has_params {
                    add("400", "Malformed request: bad JSON, path or query parameter");
                }
                if secured {
                    add("401", "Missing, malformed, unknown or revoked API key");
                    add("403", "The key's role does not allow this");
                    add("429", "Too many failed authentication attempts from this address; see Retry-After");
                }
                if has_body {
                    add("413", "Request body too large");
                    add("415", "Request body is not JSON");
                    add("422", "Request body has wrong or missing fields");
                }
                add("503", "Request timed out or the database is unavailable; retry later");
            }
        }
    }
}

fn close_variants(components: &mut utoipa::openapi::Components, name: &str) {
    use utoipa::openapi::schema::{AdditionalProperties, Schema};
    let Some(RefOr::T(Schema::OneOf(one_of))) = components.schemas.get_mut(name) else { return };
    for item in &mut one_of.items {
        if let RefOr::T(Schema::Object(object)) = item {
            object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
        }
    }
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch, &mut item.head, &mut item.options]
        .into_iter()
        .filter_map(Option::as_mut)
}

fn problem_response(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                problem::PROBLEM_JSON,
                utoipa::openapi::ContentBuilder::new()
                    .schema(Some(utoipa::openapi::Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build(),
    )
}
