//! The only code that writes the connection, account and connection_event tables, one file per
//! seam: the rows themselves, accounts, the timeline, what refreshes read and schedule, and the
//! state transitions (which only `connection::lifecycle` may call).

mod accounts;
mod connections;
mod detail;
mod refresh;
mod timeline;
pub(super) mod transitions;

pub use accounts::*;
pub use connections::*;
pub use detail::*;
pub use refresh::*;
pub use timeline::*;
