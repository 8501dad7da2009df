//! What `/v1/webhooks` answers: endpoints (with a secret only where it is shown once) and
//! delivery attempts.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::webhook::{Delivery, Endpoint, message_header_id};

/// A new endpoint with its signing secret, shown in this response only.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: Endpoint,
    /// The Standard Webhooks signing secret (`whsec_` + base64): verify each delivery's
    /// `webhook-signature` with it. It cannot be shown again.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

/// An endpoint with its new signing secret, shown in this response only.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecret {
    #[serde(flatten)]
    pub webhook: Endpoint,
    /// The new Standard Webhooks signing secret. It cannot be shown again.
    #[schema(example = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")]
    pub secret: String,
    /// Until then every delivery carries a second signature, made with the previous secret.
    pub previous_secret_expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// The receiver answered 2xx.
    Delivered,
    /// The attempt failed; another is queued for `next_attempt_at`.
    Retrying,
    /// The attempt failed and no other follows (attempts spent, 410 Gone, host not allowed).
    Failed,
}

/// One delivery attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: Uuid,
    pub webhook_id: Uuid,
    /// The `webhook-id` header: the same on every attempt of one message.
    #[schema(example = "msg_0190c8a1e2b37c4d9e8f0a1b2c3d4e5f")]
    pub message_id: String,
    #[schema(example = "refresh.completed")]
    pub event_type: String,
    /// 1 for the first attempt.
    pub attempt: i32,
    pub outcome: DeliveryOutcome,
    /// The receiver's status; null when none came (timeout, connection refused, host refused).
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
}

impl From<Delivery> for DeliveryView {
    fn from(delivery: Delivery) -> Self {
        let outcome = match delivery.outcome.as_str() {
            "delivered" => DeliveryOutcome::Delivered,
            "retrying" => DeliveryOutcome::Retrying,
            _ => DeliveryOutcome::Failed,
        };
        Self {
            id: delivery.id,
            webhook_id: delivery.endpoint_id,
            message_id: message_header_id(delivery.message_id),
            event_type: delivery.event_type,
            attempt: delivery.attempt,
            outcome,
            status_code: delivery.status_code,
            error: delivery.error,
            duration_ms: delivery.duration_ms,
            next_attempt_at: delivery.next_attempt_at,
            at: delivery.at,
        }
    }
}
