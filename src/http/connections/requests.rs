//! What `/v1/connections` takes: request bodies and list filters.

use std::collections::BTreeMap;

use serde::Deserialize;
use utoipa::openapi::schema::{Schema, Type};
use utoipa::openapi::{ObjectBuilder, RefOr};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::connection::{self, Credentials};
use crate::http::schema::{NO_CONTROL, NUL_FREE};

/// Credentials as entered. Write-only: never returned, logged or stored unsealed.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialsInput {
    /// The user id for the bank's website.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$",
        example = "user_good",
        write_only
    )]
    pub user_id: String,
    #[schema(min_length = 1, max_length = 200, pattern = r"^[^\x00-\x1f\x7f-\x9f]+$", format = Password, example = "pass_good", write_only)]
    pub password: String,
    /// Extra sign-in fields some banks need: names of 1 to 50 characters, values of 1 to 200
    /// characters.
    #[serde(default)]
    #[schema(write_only, value_type = ExtraFields)]
    pub extra: BTreeMap<String, String>,
}

/// `credentials.extra` for the document, built from the constants `validate_credentials` checks.
#[derive(Debug)]
pub struct ExtraFields;

impl utoipa::PartialSchema for ExtraFields {
    fn schema() -> RefOr<Schema> {
        let names = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(connection::MAX_EXTRA_NAME_CHARS))
            .pattern(Some(NUL_FREE));
        let values = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(connection::MAX_CREDENTIAL_CHARS))
            .pattern(Some(NO_CONTROL))
            .write_only(Some(true));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .max_properties(Some(connection::MAX_EXTRA_FIELDS))
            .property_names(Some(names))
            .additional_properties(Some(values))
            .into()
    }
}

impl ToSchema for ExtraFields {}

impl std::fmt::Debug for CredentialsInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialsInput(<redacted>)")
    }
}

impl From<CredentialsInput> for Credentials {
    fn from(input: CredentialsInput) -> Self {
        Credentials { user_id: input.user_id, password: input.password, extra: input.extra }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConnection {
    pub institution_id: Uuid,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$",
        example = "Operating account"
    )]
    pub display_name: String,
    pub credentials: CredentialsInput,
    /// Whose connection: required for admin keys, implied (and must match if given) for tenant keys.
    pub tenant_id: Option<Uuid>,
    /// How often to refresh automatically (1h to 7d; default 24h).
    // A literal, as utoipa takes: a test keeps it equal to `REFRESH_EVERY_PATTERN`.
    #[schema(
        pattern = "^(([6-9][0-9]|[1-9][0-9]{2,3}|100[0-7][0-9]|10080)m|([1-9]|[1-9][0-9]|1[0-5][0-9]|16[0-8])h|[1-7]d)$",
        example = "24h"
    )]
    pub refresh_every: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchConnection {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub display_name: Option<String>,
    /// Pause or resume automatic refreshes.
    pub paused: Option<bool>,
    /// New sign-in details; clears a sign-in error.
    pub credentials: Option<CredentialsInput>,
    /// How often to refresh automatically (1h to 7d).
    #[schema(
        pattern = "^(([6-9][0-9]|[1-9][0-9]{2,3}|100[0-7][0-9]|10080)m|([1-9]|[1-9][0-9]|1[0-5][0-9]|16[0-8])h|[1-7]d)$",
        example = "12h"
    )]
    pub refresh_every: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConnectionFilters {
    /// Only this tenant's (helpdesk and admin; tenant keys always see only their own).
    pub tenant_id: Option<Uuid>,
    pub state: Option<connection::State>,
    pub institution_id: Option<Uuid>,
    /// Only connections whose current error is this catalogue code.
    #[param(minimum = 1, maximum = 99999)]
    pub error_code: Option<u32>,
    /// Only connections with no successful refresh for at least this long (`48h`, `7d`).
    #[param(pattern = "^([0-9]{1,6}m|[0-9]{1,5}h|[0-9]{1,4}d)$", example = "48h")]
    pub stale_for: Option<String>,
    /// Text in the display name or the institution's name.
    #[param(max_length = 200, pattern = r"^[^\x00]*$")]
    pub q: Option<String>,
}
