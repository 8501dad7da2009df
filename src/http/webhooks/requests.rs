//! What `/v1/webhooks` takes: request bodies and list filters.

use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::webhook::EventKind;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where events are POSTed: an http(s) URL with a host and no user name or password. The
    /// host must be public, or in the server's allow-list when it has one.
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = r"^https?://\S+$",
        example = "https://books.example/hooks/feedwatch"
    )]
    pub url: String,
    /// The events to receive; a repeated name counts once.
    // utoipa takes the limit as a literal only: a test keeps it equal to `EventKind::ALL.len()`,
    // which the handler checks.
    #[schema(min_items = 1, max_items = 7)]
    pub events: Vec<EventKind>,
    #[serde(default)]
    #[schema(max_length = 500, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$", example = "books app sync")]
    pub description: String,
    /// Whose events: implied (and must match if given) for tenant keys; for helpdesk and admin
    /// keys, absent means a fleet-wide endpoint that receives every tenant's events.
    pub tenant_id: Option<Uuid>,
}

/// Changes to an endpoint, as a JSON merge patch: a field left out (or null) stays as it is,
/// except `description`, which null clears. The same rules as a create apply to what is given.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchWebhook {
    /// A new receiver URL; the host policy of a create applies.
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = r"^https?://\S+$",
        example = "https://books.example/hooks/feedwatch-v2"
    )]
    pub url: Option<String>,
    /// The events to receive instead; a repeated name counts once.
    #[schema(min_items = 1, max_items = 7)]
    pub events: Option<Vec<EventKind>>,
    /// A new description; null clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 500, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub description: Option<Option<String>>,
    /// True re-enables an endpoint (one disabled after a 410 Gone too) and clears its
    /// `disabled_reason`; false stops deliveries to it.
    pub enabled: Option<bool>,
}

/// Tells a field given as null (`Some(None)`) from one left out (`None`, by `serde(default)`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WebhookFilters {
    /// Only this tenant's endpoints (helpdesk and admin; tenant keys always see only their own).
    pub tenant_id: Option<Uuid>,
}

#[cfg(test)]
mod tests {
    use utoipa::PartialSchema;

    use super::*;

    /// The handler accepts at most one of each event kind; the document must say the same, or a
    /// client that trusts it refuses a list the service takes (schemathesis found `maxItems: 6`
    /// left behind when `connection.stalled` became the seventh kind).
    #[test]
    fn the_documented_event_limit_is_the_number_of_event_kinds() {
        for schema in [CreateWebhook::schema(), PatchWebhook::schema()] {
            let schema = serde_json::to_value(schema).unwrap_or_default();
            let limit = schema.pointer("/properties/events/maxItems").and_then(serde_json::Value::as_u64);
            assert_eq!(limit, Some(EventKind::ALL.len() as u64), "{schema}");
        }
    }
}
