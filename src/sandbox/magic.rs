//! Magic credentials: the password chooses what the sandbox bank does.
//!
//! `pass_good` (with any user id; `user_good` is the documented one) signs on and returns a
//! checking, a savings and a credit-card account. `error_<code>` produces catalogue code
//! `<code>` through the mechanism a real bank would use: an OFX sign-on STATUS, a statement
//! STATUS on the savings account while the others succeed, an HTTP status, a stalled or a
//! garbled reply, or a sign-on that lists no accounts. Any other password is a bad login
//! (OFX 15500).
//!
//! Some codes have no OFX or HTTP mechanism a bank could use; `error_<code>` then answers the
//! nearest behaviour ([`NEAREST`]):
//! - 310 (sign-in paused after failed attempts): OFX 15502 lockout, so 701.
//! - 702 and 703 (consent expired or revoked): OFX has no consent; OFX 15500, so 103, whose
//!   action (reconnect) is the same.
//! - 705 (data-service error): there is no data service between us and an OFX bank; HTTP 500,
//!   so 102.
//! - 716 (MFA blocks automatic updates): OFX only has "MFA required"; OFX 3000, so 185.
//! - 717 (bank login linked to another profile): a data service's rule, and no data service
//!   stands between us and an OFX bank; OFX 15500, so 103, whose action (reconnect) is the same.
//! - 718 (TLS failure): the sandbox speaks plain HTTP; HTTP 502, so 102. The client's TLS
//!   classification is tested against a server that does not speak TLS instead.
//!
//! Some codes are not in any one reply but in a pattern over time ([`OVER_TIME`]):
//! `error_721` answers every refresh with well-formed, successful statements that hold no
//! transactions, as banks that dropped Direct Connect have done; once an account has been silent
//! far beyond its rhythm, feedwatch reports 721 (a silent stall).

use std::time::Duration;

/// The password that signs on successfully.
pub const GOOD_PASSWORD: &str = "pass_good";

/// An OFX STATUS code the catalogue does not list, for `error_799`: how an unclassified
/// error reaches a real client.
const UNLISTED_STATUS: u32 = 9999;

/// What a sign-in asks the sandbox to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Magic {
    Good,
    /// Fail the sign-on with this OFX STATUS code.
    SignonStatus(u32),
    /// Sign on, then fail the savings account's statement with this STATUS code.
    StatementStatus(u32),
    /// Answer this HTTP status, with a Retry-After when asked.
    Http {
        status: u16,
        retry_after: bool,
    },
    /// Never answer: the client must give up on its own.
    Stall,
    /// A reply cut off in the middle of a tag.
    Garbled,
    /// A successful sign-on with an empty account list.
    NoAccounts,
    /// Every account listed, every statement successful and empty: no transactions at all.
    EmptyStatements,
}

/// Catalogue codes that `error_<code>` produces faithfully.
pub const FAITHFUL: &[u32] =
    &[102, 103, 108, 185, 187, 324, 701, 706, 707, 708, 709, 711, 712, 713, 714, 715, 720, 799];

/// Catalogue codes with no faithful mechanism, and the code their nearest behaviour yields.
pub const NEAREST: &[(u32, u32)] =
    &[(310, 701), (702, 103), (703, 103), (704, 720), (705, 102), (716, 185), (717, 103), (718, 102)];

/// Catalogue codes no single reply carries: feedwatch infers them from replies over time, and
/// `error_<code>` produces the replies that lead there.
pub const OVER_TIME: &[u32] = &[721];

/// Reads the password (the user id does not matter).
pub fn read(password: &str) -> Magic {
    if password == GOOD_PASSWORD {
        return Magic::Good;
    }
    let code = password.strip_prefix("error_").and_then(|code| code.parse().ok());
    code.and_then(for_code).unwrap_or(Magic::SignonStatus(15500))
}

/// How `error_<code>` is produced, when the sandbox supports the code.
pub fn for_code(code: u32) -> Option<Magic> {
    let magic = match code {
        103 | 702 | 703 | 717 => Magic::SignonStatus(15500),
        701 | 310 => Magic::SignonStatus(15502),
        108 => Magic::SignonStatus(15000),
        185 | 716 => Magic::SignonStatus(3000),
        187 => Magic::SignonStatus(3001),
        704 => Magic::SignonStatus(15505),
        711 => Magic::SignonStatus(15510),
        715 => Magic::SignonStatus(15501),
        799 => Magic::SignonStatus(UNLISTED_STATUS),
        324 => Magic::StatementStatus(2003),
        708 => Magic::StatementStatus(2004),
        709 => Magic::StatementStatus(2005),
        102 => Magic::Http { status: 503, retry_after: false },
        705 => Magic::Http { status: 500, retry_after: false },
        718 => Magic::Http { status: 502, retry_after: false },
        707 => Magic::Http { status: 503, retry_after: true },
        706 => Magic::Http { status: 429, retry_after: true },
        720 => Magic::Http { status: 404, retry_after: false },
        712 => Magic::Stall,
        713 => Magic::Garbled,
        714 => Magic::NoAccounts,
        721 => Magic::EmptyStatements,
        _ => return None,
    };
    Some(magic)
}

/// The STATUS severity a bank uses: 15000 (change password) and 13000 are informational.
pub fn is_informational(code: u32) -> bool {
    matches!(code, 13000 | 15000)
}

/// How long a magic 429 or 503 asks the client to wait.
pub const RETRY_AFTER: Duration = Duration::from_secs(120);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::catalog::Catalog;

    #[test]
    fn every_catalogue_code_has_a_magic_password() {
        let catalog = Catalog::shipped().unwrap();
        let nearest: Vec<u32> = NEAREST.iter().map(|(code, _)| *code).collect();
        // Statuses are not errors, so no bank failure needs to produce them.
        let failures = catalog.entries.values().filter(|entry| entry.category.is_failure());
        let codes: Vec<u32> = failures.map(|entry| entry.code.get()).collect();
        for code in &codes {
            let lists = [FAITHFUL.contains(code), nearest.contains(code), OVER_TIME.contains(code)];
            assert_eq!(lists.iter().filter(|listed| **listed).count(), 1, "{code} must be listed exactly once");
            assert!(for_code(*code).is_some(), "{code}");
        }
        assert_eq!(FAITHFUL.len() + NEAREST.len() + OVER_TIME.len(), codes.len());
    }

    #[test]
    fn passwords() {
        assert_eq!(read("pass_good"), Magic::Good);
        assert_eq!(read("error_324"), Magic::StatementStatus(2003));
        for other in ["", "pass_bad", "error_", "error_1", "error_x", "PASS_GOOD"] {
            assert_eq!(read(other), Magic::SignonStatus(15500), "{other}");
        }
    }
}
