//! A statement file's upload, written to a temporary file as it arrives instead of collected
//! in memory (files run to tens of megabytes, and the readers stream from the file).
//!
//! The file is unlinked as soon as it is created: it has no name while it is written and read,
//! so it is gone however the request ends (an answer, an error, a client that hangs up, a
//! timeout, a crash) once its handle is dropped.

use std::io::{Seek, SeekFrom};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::problem::ApiError;

/// Where spooled uploads are written, and how their (unlinked) files are named.
pub const PREFIX: &str = "feedwatch-import-";

/// An upload written out: the file (positioned at its start) and its SHA-256.
#[derive(Debug)]
pub struct Spooled {
    pub file: std::fs::File,
    pub sha256: Vec<u8>,
    pub len: u64,
}

/// A file being written.
pub struct Spool {
    file: tokio::fs::File,
    hasher: Sha256,
    len: u64,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool").field("len", &self.len).finish_non_exhaustive()
    }
}

impl Spool {
    /// A spool named after the request (its `x-request-id`), so an operator who sees one open
    /// (`ls -l /proc/PID/fd`) can tell whose upload it is.
    pub async fn create(headers: &HeaderMap) -> Result<Self, ApiError> {
        let request: String = headers
            .get(super::middleware::REQUEST_ID)
            .and_then(|id| id.to_str().ok())
            .unwrap_or_default()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(64)
            .collect();
        let path = std::env::temp_dir().join(format!("{PREFIX}{request}-{}", uuid::Uuid::new_v4()));
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(|error| ApiError::internal(&error))?;
        tokio::fs::remove_file(&path).await.map_err(|error| ApiError::internal(&error))?;
        Ok(Self { file, hasher: Sha256::new(), len: 0 })
    }

    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), ApiError> {
        self.hasher.update(chunk);
        self.len += chunk.len() as u64;
        self.file.write_all(chunk).await.map_err(|error| ApiError::internal(&error))
    }

    pub async fn finish(mut self) -> Result<Spooled, ApiError> {
        self.file.flush().await.map_err(|error| ApiError::internal(&error))?;
        let mut file = self.file.into_std().await;
        file.seek(SeekFrom::Start(0)).map_err(|error| ApiError::internal(&error))?;
        Ok(Spooled { file, sha256: self.hasher.finalize().to_vec(), len: self.len })
    }
}

/// Writes a raw body to a spool, feeding `also` (the request's fingerprint) the same bytes.
pub async fn body(headers: &HeaderMap, mut body: Body, also: &mut Sha256) -> Result<Spooled, ApiError> {
    let mut spool = Spool::create(headers).await?;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| body_error(&error))?;
        if let Some(data) = frame.data_ref() {
            also.update(data);
            spool.write(data).await?;
        }
    }
    spool.finish().await
}

/// An error while the body arrived: past the route's limit (413), or the client stopped
/// sending (400; no one reads it).
pub fn body_error(error: &(dyn std::error::Error + 'static)) -> ApiError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        if error.is::<http_body_util::LengthLimitError>() {
            return super::problem::problem_for_status(StatusCode::PAYLOAD_TOO_LARGE);
        }
        source = error.source();
    }
    ApiError::bad_request("body_unreadable", format!("The request body could not be read: {error}."))
}

/// A body that feeds a hasher with every byte that passes (the fingerprint of a multipart
/// request, whose parts are spooled as they are parsed).
pub fn hashing(body: Body, hasher: Arc<Mutex<Sha256>>) -> Body {
    Body::new(body.map_frame(move |frame| {
        if let Some(data) = frame.data_ref()
            && let Ok(mut hasher) = hasher.lock()
        {
            hasher.update(data);
        }
        frame
    }))
}
