//! The catalogue's vocabulary: entries and aliases as reviewers write them, what kind of failure
//! an entry describes, who must act and what a front end offers.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::code::Code;

/// What kind of problem an entry describes: a connection failure of some kind, a status that is
/// not one, or what happened to particular transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Credentials,
    Mfa,
    BankAction,
    Consent,
    Bank,
    Account,
    Institution,
    Provider,
    /// Not a failure: a provider status that means the connection works or is still being set up.
    Status,
    /// Not a connection failure: the feed works, but particular transactions are doubled,
    /// missing, late or changed in the books (what a customer reports; no provider or refresh
    /// assigns these codes).
    Transactions,
    /// Not an error: a bank the product does not reach at all, so no connection to it exists
    /// (never offered; support that ended is `institution`, 704). No provider or refresh assigns
    /// these codes.
    Coverage,
    /// Not a connection error: a statement file a customer uploaded to fill a gap in the feed
    /// was refused, and nothing from it was stored. The statement import answers with these
    /// codes' reasons as its problem codes; no provider or refresh assigns them.
    Statement,
}

impl Category {
    /// Whether codes of this category report a connection that went wrong (all but statuses,
    /// transaction-level topics, banks not offered and statement files).
    pub fn is_failure(self) -> bool {
        self.not_a_failure().is_none()
    }

    /// What a code of this category is when it is not a connection failure, said the same way
    /// wherever a code is described ("Code 610 is about transactions, not a connection error").
    pub fn not_a_failure(self) -> Option<&'static str> {
        match self {
            Self::Status => Some("a status, not an error"),
            Self::Transactions => Some("about transactions, not a connection error"),
            Self::Coverage => Some("about a bank not offered, not a connection error"),
            Self::Statement => Some("about a statement file, not a connection error"),
            Self::Credentials
            | Self::Mfa
            | Self::BankAction
            | Self::Consent
            | Self::Bank
            | Self::Account
            | Self::Institution
            | Self::Provider => None,
        }
    }
}

/// Who must act for the error to go away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    User,
    Bank,
    Provider,
    Support,
    /// Nobody: the code is a status, not an error.
    Nobody,
}

/// The one primary action a front end offers for the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Reconnect,
    AnswerMfa,
    FixAtBank,
    RemapAccount,
    WaitUntil,
    UploadFile,
    ContactSupport,
    /// The code is not an error; nothing needs doing.
    #[serde(rename = "none")]
    Nothing,
}

/// How much a source can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// The vendor's own documentation.
    Vendor,
    /// Someone else's account of the vendor's behaviour.
    ThirdParty,
    /// Our inference from related facts.
    Inferred,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Source {
    #[schema(
        min_length = 1,
        max_length = 300,
        pattern = r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
    )]
    pub title: String,
    /// An http(s) URL of at most 500 characters.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^https?://[^\x00]*$",
        example = "https://community.intuit.com/articles/1207317-banking-error-102"
    )]
    pub url: String,
    pub confidence: Confidence,
}

/// One item of a text list (a cause, a step, a keyword), for the document: non-empty and short.
#[derive(Debug)]
pub struct ListItem;

impl utoipa::PartialSchema for ListItem {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some(1000))
            .pattern(Some(super::load::TEXT_PATTERN))
            .into()
    }
}

impl ToSchema for ListItem {}

/// A canonical catalogue entry: the shipped data format and the body of an admin edit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Stable number; the QuickBooks number where its meaning is confirmed.
    #[schema(value_type = u32, example = 102, minimum = 1)]
    pub code: Code,
    /// Stable snake_case slug.
    #[schema(example = "bank_unavailable", pattern = "^[a-z][a-z0-9_]*$", max_length = 64)]
    pub reason: String,
    // The text patterns here are literals, as utoipa takes: a test keeps them equal to
    // `load::TEXT_PATTERN` (and `load::SOURCE_URL_PATTERN` for a source's URL).
    #[schema(
        example = "Bank not responding",
        min_length = 1,
        max_length = 120,
        pattern = r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
    )]
    pub title: String,
    /// Phrases people type when they have this error ("password changed"); weighted high in search.
    #[serde(default)]
    #[schema(max_items = 20, value_type = Vec<ListItem>)]
    pub keywords: Vec<String>,
    pub category: Category,
    pub actor: Actor,
    /// Whether retrying, with nobody acting, can help.
    pub retryable: bool,
    /// Typical delay before a retry helps (`30s`, `15m`, `4h`, `1d`); only for retryable entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "4h", pattern = "^[0-9]+(ms|s|m|h|d)$", nullable = false)]
    pub retry_after: Option<String>,
    pub action: Action,
    /// Safe to show the business owner: what happened and what to do.
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
    )]
    pub user_message: String,
    /// For helpdesk agents: how to tell it apart from look-alikes.
    #[schema(
        min_length = 1,
        max_length = 5000,
        pattern = r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
    )]
    pub agent_notes: String,
    #[schema(
        min_length = 1,
        max_length = 3000,
        pattern = r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
    )]
    pub meaning: String,
    #[schema(max_items = 20, value_type = Vec<ListItem>)]
    pub causes: Vec<String>,
    /// Ordered: the cheapest step that often works first.
    #[schema(min_items = 1, max_items = 20, value_type = Vec<ListItem>)]
    pub steps: Vec<String>,
    #[schema(max_items = 20, value_type = Vec<ListItem>)]
    pub prevention: Vec<String>,
    /// What an agent collects before escalating.
    #[schema(max_items = 20, value_type = Vec<ListItem>)]
    pub escalation_evidence: Vec<String>,
    #[schema(value_type = Vec<u32>, max_items = 20)]
    pub related: Vec<Code>,
    /// When the text was last reviewed.
    pub reviewed: NaiveDate,
    #[schema(min_items = 1, max_items = 20)]
    pub sources: Vec<Source>,
}

/// Whether an alias means exactly the canonical entry or only comes closest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    Exact,
    Nearest,
}

/// A provider's code and the canonical entry it resolves to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Alias {
    /// The provider's code as the provider writes it.
    #[schema(example = "ITEM_LOGIN_REQUIRED")]
    pub code: String,
    #[schema(value_type = u32)]
    pub canonical: Code,
    #[serde(rename = "match")]
    pub match_kind: MatchKind,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub note: Option<String>,
    /// Where the provider's meaning comes from; `exact` needs the provider's own documentation.
    #[schema(min_items = 1, max_items = 10)]
    pub sources: Vec<Source>,
}

/// An alias with the namespace of its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct NamespacedAlias {
    #[schema(example = "plaid")]
    pub namespace: String,
    #[serde(flatten)]
    pub alias: Alias,
}

/// A namespace and the provider it stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Namespace {
    pub namespace: String,
    pub provider: String,
    /// Other words that name this provider alone ("nordigen", GoCardless's former name;
    /// "requisition", its word for a connection): search reads a sentence holding one as naming
    /// the provider. Catalogue data for search, not part of the API.
    #[serde(skip)]
    pub called: Vec<String>,
}

impl Namespace {
    /// Whether `word` names this provider: its namespace or one of the words it is called by.
    pub fn is_named_by(&self, word: &str) -> bool {
        self.namespace.eq_ignore_ascii_case(word) || self.called.iter().any(|called| called.eq_ignore_ascii_case(word))
    }
}

/// An entry as stored: its current text and which revision that is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub entry: Entry,
    pub revision: i32,
    pub updated_at: DateTime<Utc>,
}
