//! The shipped catalogue files, compiled into the binary. A test checks this list against
//! the `catalog/` directory, so a new file cannot be forgotten.

pub const SHIPPED_FILES: &[(&str, &str)] = &[
    ("entries/account.toml", include_str!("../../catalog/entries/account.toml")),
    ("entries/bank.toml", include_str!("../../catalog/entries/bank.toml")),
    ("entries/bank_action.toml", include_str!("../../catalog/entries/bank_action.toml")),
    ("entries/consent.toml", include_str!("../../catalog/entries/consent.toml")),
    ("entries/coverage.toml", include_str!("../../catalog/entries/coverage.toml")),
    ("entries/credentials.toml", include_str!("../../catalog/entries/credentials.toml")),
    ("entries/institution.toml", include_str!("../../catalog/entries/institution.toml")),
    ("entries/mfa.toml", include_str!("../../catalog/entries/mfa.toml")),
    ("entries/provider.toml", include_str!("../../catalog/entries/provider.toml")),
    ("entries/status.toml", include_str!("../../catalog/entries/status.toml")),
    ("entries/statement.toml", include_str!("../../catalog/entries/statement.toml")),
    ("entries/transactions.toml", include_str!("../../catalog/entries/transactions.toml")),
    ("aliases/akahu.toml", include_str!("../../catalog/aliases/akahu.toml")),
    ("aliases/basiq.toml", include_str!("../../catalog/aliases/basiq.toml")),
    ("aliases/belvo.toml", include_str!("../../catalog/aliases/belvo.toml")),
    ("aliases/cloudbanking.toml", include_str!("../../catalog/aliases/cloudbanking.toml")),
    ("aliases/finicity.toml", include_str!("../../catalog/aliases/finicity.toml")),
    ("aliases/fints.toml", include_str!("../../catalog/aliases/fints.toml")),
    ("aliases/flinks.toml", include_str!("../../catalog/aliases/flinks.toml")),
    ("aliases/gocardless.toml", include_str!("../../catalog/aliases/gocardless.toml")),
    ("aliases/http.toml", include_str!("../../catalog/aliases/http.toml")),
    ("aliases/mx.toml", include_str!("../../catalog/aliases/mx.toml")),
    ("aliases/ofx.toml", include_str!("../../catalog/aliases/ofx.toml")),
    ("aliases/plaid.toml", include_str!("../../catalog/aliases/plaid.toml")),
    ("aliases/pluggy.toml", include_str!("../../catalog/aliases/pluggy.toml")),
    ("aliases/qbo.toml", include_str!("../../catalog/aliases/qbo.toml")),
    ("aliases/sage.toml", include_str!("../../catalog/aliases/sage.toml")),
    ("aliases/saltedge.toml", include_str!("../../catalog/aliases/saltedge.toml")),
    ("aliases/simplefin.toml", include_str!("../../catalog/aliases/simplefin.toml")),
    ("aliases/stripe.toml", include_str!("../../catalog/aliases/stripe.toml")),
    ("aliases/teller.toml", include_str!("../../catalog/aliases/teller.toml")),
    ("aliases/tink.toml", include_str!("../../catalog/aliases/tink.toml")),
    ("aliases/truelayer.toml", include_str!("../../catalog/aliases/truelayer.toml")),
    ("aliases/yodlee.toml", include_str!("../../catalog/aliases/yodlee.toml")),
];

/// How people say things (`catalog/synonyms.toml`): the search side's phrasings, stopwords and
/// denials; not catalogue entries, so not synced or editable.
pub const SYNONYMS: &str = include_str!("../../catalog/synonyms.toml");

/// The search evaluation's labelled questions (`catalog/eval/questions.toml`): search learns from
/// the studied splits (`ranking::examples::Split::trains`) and the evaluation measures on the rest.
pub const QUESTIONS: &str = include_str!("../../catalog/eval/questions.toml");
