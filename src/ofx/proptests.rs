//! Property tests: writer output always parses back to the same document,
//! and no input makes the parser panic.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, FixedOffset, TimeZone};
use proptest::prelude::*;
use rust_decimal::Decimal;

use super::*;

/// 256 cases keep the suite to seconds; set PROPTEST_CASES for a deeper run.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(256);
    ProptestConfig { cases, ..ProptestConfig::default() }
}

/// Text as a writer would store it: no surrounding whitespace, never empty,
/// with markup characters, entity look-alikes and non-ASCII.
fn text() -> impl Strategy<Value = String> {
    let plain = "[A-Za-z0-9 &<>;#'\"éüß€日本-]{1,24}";
    let entity = prop_oneof![Just("&amp;"), Just("&#233;"), Just("&lt;"), Just("AT&T"), Just("&x;")];
    let mixed = (plain, entity, plain).prop_map(|(a, entity, b)| format!("{a}{entity}{b}"));
    prop_oneof![mixed, plain.prop_map(String::from)]
        .prop_map(|s| s.trim().to_owned())
        .prop_filter("blank", |s| !s.is_empty())
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(text())
}

/// Millisecond precision and whole-minute offsets: what OFX can carry.
fn datetime() -> impl Strategy<Value = OfxDateTime> {
    (0i64..4_102_444_800_000, -(12 * 4)..=(14 * 4)).prop_map(|(millis, quarters)| {
        let offset = FixedOffset::east_opt(quarters * 15 * 60).unwrap();
        let utc = DateTime::from_timestamp_millis(millis).unwrap();
        offset.from_utc_datetime(&utc.naive_utc())
    })
}

fn amount() -> impl Strategy<Value = Decimal> {
    (any::<i64>(), 0u32..=4).prop_map(|(units, scale)| Decimal::new(units, scale))
}

fn status() -> impl Strategy<Value = Status> {
    let severity = prop_oneof![Just(Severity::Info), Just(Severity::Warn), Just(Severity::Error)];
    (0u32..20_000, severity, opt_text()).prop_map(|(code, severity, message)| Status { code, severity, message })
}

fn currency() -> impl Strategy<Value = Option<CurrencyInfo>> {
    proptest::option::of(
        (proptest::option::of(amount()), "[A-Z]{3}").prop_map(|(rate, symbol)| CurrencyInfo { rate, symbol }),
    )
}

fn transaction() -> impl Strategy<Value = Transaction> {
    (
        (text(), "[A-Z]{3,6}", datetime(), proptest::option::of(datetime())),
        (amount(), opt_text(), opt_text(), opt_text(), opt_text()),
        (currency(), currency(), any::<bool>(), opt_text()),
    )
        .prop_map(|((fitid, trntype, posted, user_date), (amount, name, payee, memo, check), cur)| Transaction {
            fitid,
            trntype,
            posted,
            user_date,
            amount,
            name,
            payee_name: payee,
            memo,
            check_number: check,
            currency: cur.0,
            orig_currency: cur.1,
            pending: cur.2,
            replaces_fitid: cur.3,
        })
}

fn account() -> impl Strategy<Value = Account> {
    prop_oneof![
        (text(), opt_text(), text(), "CHECKING|SAVINGS|MONEYMRKT").prop_map(
            |(bank_id, branch_id, account_id, account_type)| Account::Bank(BankAccount {
                bank_id,
                branch_id,
                account_id,
                account_type,
            })
        ),
        text().prop_map(|account_id| Account::CreditCard { account_id }),
    ]
}

fn balance() -> impl Strategy<Value = Option<Balance>> {
    proptest::option::of((amount(), datetime()).prop_map(|(amount, as_of)| Balance { amount, as_of }))
}

fn statement() -> impl Strategy<Value = Statement> {
    let body = (
        account(),
        proptest::option::of("[A-Z]{3}"),
        (proptest::option::of(datetime()), proptest::option::of(datetime())),
        proptest::collection::vec(transaction(), 0..5),
        (balance(), balance()),
    );
    (opt_text(), proptest::option::of(status()), proptest::option::of(body)).prop_map(|(trnuid, status, body)| {
        match body {
            None => Statement { trnuid, status, ..Statement::failed(StatementKind::Bank, "", Status::ok()) },
            Some((account, currency, (start, end), transactions, (ledger, available))) => Statement {
                kind: account.kind(),
                trnuid,
                status,
                currency,
                account: Some(account),
                start,
                end,
                transactions,
                ledger_balance: ledger,
                available_balance: available,
            },
        }
    })
}

fn account_info() -> impl Strategy<Value = AccountInfo> {
    (opt_text(), opt_text(), account(), proptest::option::of("ACTIVE|PEND|AVAIL")).prop_map(
        |(description, phone, account, service_status)| AccountInfo { description, phone, account, service_status },
    )
}

fn account_list() -> impl Strategy<Value = AccountListResponse> {
    (
        opt_text(),
        proptest::option::of(status()),
        proptest::option::of(datetime()),
        proptest::collection::vec(account_info(), 1..4),
    )
        .prop_map(|(trnuid, status, updated, accounts)| AccountListResponse { trnuid, status, updated, accounts })
}

fn signon() -> impl Strategy<Value = SignonResponse> {
    let fi = proptest::option::of((opt_text(), opt_text()).prop_map(|(org, fid)| FinancialInstitution { org, fid }));
    (status(), proptest::option::of(datetime()), opt_text(), fi, opt_text()).prop_map(
        |(status, server_date, language, fi, intu_bid)| SignonResponse { status, server_date, language, fi, intu_bid },
    )
}

fn document() -> impl Strategy<Value = OfxDocument> {
    let version = prop_oneof![Just(OfxVersion::V102), Just(OfxVersion::V103), Just(OfxVersion::V220)];
    (
        version,
        proptest::option::of(signon()),
        proptest::option::of(account_list()),
        proptest::collection::vec(statement(), 0..4),
    )
        .prop_map(|(version, signon, account_list, mut statements)| {
            // The writer groups bank statements before card ones.
            statements.sort_by_key(|s| s.kind == StatementKind::CreditCard);
            OfxDocument { signon, account_list, statements, ..OfxDocument::new(version) }
        })
}

/// JSON keeps offsets, which `DateTime` equality ignores.
fn content(doc: &OfxDocument) -> serde_json::Value {
    let mut value = serde_json::to_value(doc).unwrap();
    value["header"] = serde_json::Value::Null;
    value
}

fn valid_file() -> &'static [u8] {
    include_bytes!("testdata/sgml_cp1252.ofx")
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn written_responses_round_trip(doc in document()) {
        let written = write_response(&doc);
        let back = parse(written.as_bytes(), &ParseOptions::default());
        let back = back.map_err(|e| TestCaseError::fail(format!("{e}\n{written}")))?;
        prop_assert_eq!(back.version, doc.version);
        prop_assert_eq!(content(&back), content(&doc));
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&bytes, &ParseOptions::default());
        let _ = parse_request(&bytes, &ParseOptions::default());
    }

    #[test]
    fn random_markup_never_panics(text in "[<>/&;#A-Z0-9 \n!?\\[\\]-]{0,300}") {
        let mut input = b"<OFX>".to_vec();
        input.extend_from_slice(text.as_bytes());
        let _ = parse(&input, &ParseOptions::default());
    }

    #[test]
    fn mutated_files_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8)
    ) {
        let mut bytes = valid_file().to_vec();
        for (index, byte, kind) in edits {
            if bytes.is_empty() {
                break;
            }
            let at = index.index(bytes.len());
            match kind {
                0 => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => {
                    bytes.remove(at);
                }
            }
        }
        let _ = parse(&bytes, &ParseOptions::default());
    }

    #[test]
    fn truncated_files_never_panic(cut in 0usize..2000) {
        let bytes = valid_file();
        let _ = parse(&bytes[..cut.min(bytes.len())], &ParseOptions::default());
    }
}
