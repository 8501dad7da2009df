//! Institutions: the banks and card issuers connections point at, and how to reach them.

pub mod store;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// How feedwatch talks to an institution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// OFX Direct Connect at the institution's own URL.
    Ofx,
    /// The sandbox bank; its URL is configuration, so demo and test setups move freely.
    Sandbox,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ofx => "ofx",
            Self::Sandbox => "sandbox",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ofx" => Some(Self::Ofx),
            "sandbox" => Some(Self::Sandbox),
            _ => None,
        }
    }
}

/// Direct Connect settings: where to POST and how to sign on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OfxSettings {
    /// The institution's OFX server: required when `provider` is `ofx`, unused for `sandbox`.
    #[schema(example = "https://ofx.bank.example/ofx", pattern = "^https?://", max_length = 500)]
    pub url: Option<String>,
    #[schema(example = "BANKORG", max_length = 64)]
    pub org: String,
    #[schema(example = "1234", max_length = 32)]
    pub fid: String,
    #[schema(example = "QWIN", max_length = 32)]
    pub app_id: String,
    #[schema(example = "2700", max_length = 8)]
    pub app_version: String,
    /// OFX version to speak: 102 or 103 (SGML) or 220 (XML).
    #[schema(example = 102)]
    pub version: i32,
}

/// An institution as other resources name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct InstitutionRef {
    pub id: Uuid,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = InstitutionView)]
pub struct Institution {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub provider: ProviderKind,
    pub ofx: OfxSettings,
    pub aliases: Vec<String>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The fields of an institution to create or replace.
#[derive(Debug, Clone)]
pub struct InstitutionFields {
    pub slug: String,
    pub name: String,
    pub provider: ProviderKind,
    pub ofx: OfxSettings,
    pub aliases: Vec<String>,
    pub active: bool,
}

/// What `validate` asks of an OFX server URL beside its length, as a pattern for the document:
/// `http://` or `https://`, then no white space (`char::is_whitespace`, spelt out: regex engines
/// disagree on `\s`) and no control character.
pub const OFX_URL_PATTERN: &str = r"^https?://[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$";

/// Problems with institution fields, as `(field, message)`.
pub fn validate(fields: &InstitutionFields) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let mut check = |ok: bool, field: &str, message: &str| {
        if !ok {
            problems.push((field.to_owned(), message.to_owned()));
        }
    };
    let slug_ok = (1..=63).contains(&fields.slug.len())
        && fields.slug.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && fields.slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    check(slug_ok, "slug", "1 to 63 lowercase letters, digits or dashes");
    check(is_name(&fields.name), "name", "must be 1 to 200 characters");
    let url_ok = fields.ofx.url.as_deref().is_none_or(|url| {
        (url.starts_with("https://") || url.starts_with("http://"))
            && url.chars().count() <= 500
            && !url.contains(|c: char| c.is_whitespace() || c.is_control())
    });
    check(url_ok, "ofx.url", "must be an http(s) URL of at most 500 characters");
    check(fields.provider != ProviderKind::Ofx || fields.ofx.url.is_some(), "ofx.url", "required for the ofx provider");
    check([102, 103, 220].contains(&fields.ofx.version), "ofx.version", "must be 102, 103 or 220");
    check(fields.ofx.org.chars().count() <= 64, "ofx.org", "at most 64 characters");
    check(fields.ofx.fid.chars().count() <= 32, "ofx.fid", "at most 32 characters");
    check(fields.ofx.app_id.chars().count() <= 32, "ofx.app_id", "at most 32 characters");
    check(fields.ofx.app_version.chars().count() <= 8, "ofx.app_version", "at most 8 characters");
    check(fields.aliases.len() <= 20, "aliases", "at most 20 aliases");
    check(fields.aliases.iter().all(|alias| is_name(alias)), "aliases", "each 1 to 200 characters");
    problems
}

fn is_name(text: &str) -> bool {
    !text.trim().is_empty() && text.chars().count() <= 200 && !text.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(org: &str, url: &str) -> InstitutionFields {
        InstitutionFields {
            slug: "first-bank".into(),
            name: "First Bank".into(),
            provider: ProviderKind::Ofx,
            ofx: OfxSettings {
                url: Some(url.into()),
                org: org.into(),
                fid: "1234".into(),
                app_id: "QWIN".into(),
                app_version: "2700".into(),
                version: 102,
            },
            aliases: Vec::new(),
            active: true,
        }
    }

    /// Lengths are characters, as the messages and the document's `maxLength` say: 64 letters
    /// of two bytes each are a valid ORG, 65 are not; a URL likewise.
    #[test]
    fn lengths_are_counted_in_characters() {
        let url = |chars: usize| format!("https://ofx.example/{}", "é".repeat(chars - "https://ofx.example/".len()));
        assert!(validate(&fields(&"é".repeat(64), &url(500))).is_empty());
        let problems = validate(&fields(&"é".repeat(65), &url(501)));
        let named: Vec<&str> = problems.iter().map(|(field, _)| field.as_str()).collect();
        assert_eq!(named, ["ofx.url", "ofx.org"], "{problems:?}");
    }
}
