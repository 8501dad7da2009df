//! The error-code reference: canonical entries, provider aliases, lookup and search.
//!
//! The shipped text lives in `catalog/` and is compiled in, so `feedwatch errors` works with no
//! server and no database. At start the service syncs it into PostgreSQL, where admin edits
//! become new revisions; every replica serves lookups from an in-memory [`CatalogIndex`] that is
//! rebuilt whenever the stored catalogue changes.
//!
//! `model` is the vocabulary (entries, aliases, who acts); `load` reads the shipped files and
//! holds the one validation shipped entries and admin edits both pass; `sync` keeps PostgreSQL
//! and each replica's index current; `index` resolves codes, `search` orders hits, both on
//! `ranking`'s text relevance; `evidence` says whether an alias's sources back its `match`;
//! `text` renders for terminals; `store` is the only SQL.

mod code;
pub mod evidence;
mod files;
pub mod index;
mod load;
mod model;
mod ranking;
pub mod search;
#[cfg(test)]
mod seed_claims;
pub mod store;
mod sync;
pub mod text;

pub use code::{Code, CodeOutOfRange};
pub use files::SHIPPED_FILES;
pub use index::{CatalogIndex, Resolution};
pub use load::{Catalog, CatalogError, CatalogErrors, shipped_index, validate_edit, validate_entry};
pub use model::{
    Action, Actor, Alias, Category, Confidence, Entry, ListItem, MatchKind, Namespace, NamespacedAlias, Source,
    StoredEntry,
};
pub use sync::{CatalogHandle, EditOutcome, Purpose, follow_changes, load_index, save_edit, sync_shipped};
