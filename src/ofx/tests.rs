//! Fixture and writer tests for the whole pipeline.
#![allow(clippy::unwrap_used)]

use std::str::FromStr;

use chrono::DateTime;
use rust_decimal::Decimal;

use super::*;

fn read(bytes: &[u8]) -> OfxDocument {
    parse(bytes, &ParseOptions::default()).unwrap()
}

fn at(text: &str) -> OfxDateTime {
    DateTime::parse_from_rfc3339(text).unwrap()
}

fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

fn bank(statement: &Statement) -> &BankAccount {
    match statement.account.as_ref().unwrap() {
        Account::Bank(bank) => bank,
        other => panic!("not a bank account: {other:?}"),
    }
}

#[test]
fn sgml_cp1252_with_bare_ampersand_and_every_date_form() {
    let doc = read(include_bytes!("testdata/sgml_cp1252.ofx"));
    assert_eq!(doc.version, OfxVersion::V102);
    assert_eq!(doc.header.encoding, "windows-1252");
    let signon = doc.signon.as_ref().unwrap();
    assert_eq!(signon.status, Status::ok());
    assert_eq!(signon.server_date, Some(at("2024-01-31T12:00:00-05:00")));
    assert_eq!(signon.fi.as_ref().unwrap().org.as_deref(), Some("Café Bank"));
    let statement = &doc.statements[0];
    assert_eq!(statement.currency.as_deref(), Some("USD"));
    assert_eq!(bank(statement).account_id, "000123456789");
    assert_eq!(statement.start, Some(at("2024-01-01T00:00:00Z")));
    assert_eq!(statement.end, Some(at("2024-01-31T23:59:59-05:00")));
    let trns = &statement.transactions;
    assert_eq!(trns.len(), 6);
    assert_eq!(trns[0].name.as_deref(), Some("AT&T MOBILITY"));
    assert_eq!(trns[0].memo.as_deref(), Some("AT&T bill <Jan>"));
    assert_eq!(trns[0].amount, dec("-45.20"));
    assert_eq!(trns[1].name.as_deref(), Some("Café René €"));
    assert_eq!(trns[1].memo, None);
    assert_eq!(trns[1].user_date, Some(at("2024-01-02T00:00:00Z")));
    assert_eq!(trns[2].posted, at("2024-01-04T10:15:00.123Z"));
    assert_eq!(trns[2].check_number.as_deref(), Some("1042"));
    assert_eq!(trns[3].posted.offset().local_minus_utc(), 19_800);
    let orig = trns[3].orig_currency.as_ref().unwrap();
    assert_eq!((orig.rate, orig.symbol.as_str()), (Some(dec("1.25")), "EUR"));
    assert_eq!(trns[4].posted, at("2024-01-06T12:00:00Z"));
    assert_eq!(trns[5].posted, at("2024-01-07T00:00:00-05:00"));
    let ledger = statement.ledger_balance.as_ref().unwrap();
    assert_eq!(ledger.amount, dec("1349.42"));
    assert_eq!(statement.available_balance.as_ref().unwrap().amount, dec("1300"));
}

#[test]
fn latin1_with_decimal_commas_and_no_blank_line() {
    let doc = read(include_bytes!("testdata/latin1.ofx"));
    assert_eq!(doc.header.fields["CHARSET"], "ISO-8859-1");
    let statement = &doc.statements[0];
    let trn = &statement.transactions[0];
    assert_eq!(trn.name.as_deref(), Some("Müller & Söhne"));
    assert_eq!(trn.amount, dec("-12.50"));
    assert_eq!(statement.ledger_balance.as_ref().unwrap().amount, dec("100"));
    assert_eq!(doc.signon.unwrap().language.as_deref(), Some("GER"));
}

#[test]
fn utf8_with_bom() {
    let doc = read(include_bytes!("testdata/utf8_bom.ofx"));
    assert_eq!(doc.version, OfxVersion::V103);
    assert_eq!(doc.header.encoding, "UTF-8");
    let trn = &doc.statements[0].transactions[0];
    assert_eq!(trn.name.as_deref(), Some("Straße Café €5 日本"));
    assert_eq!(bank(&doc.statements[0]).account_type, "SAVINGS");
}

#[test]
fn xml_v2_with_payee_cdata_and_currency() {
    let doc = read(include_bytes!("testdata/xml_v2.ofx"));
    assert_eq!(doc.version, OfxVersion::V220);
    let signon = doc.signon.as_ref().unwrap();
    assert_eq!(signon.status.message.as_deref(), Some("Success"));
    assert_eq!(signon.fi.as_ref().unwrap().fid.as_deref(), Some("10898"));
    let statement = &doc.statements[0];
    assert_eq!(statement.trnuid.as_deref(), Some("abc-1"));
    assert_eq!(bank(statement).branch_id.as_deref(), Some("55"));
    let first = &statement.transactions[0];
    assert_eq!(first.payee_name.as_deref(), Some("AT&T <wireless>"));
    assert_eq!(first.name, None);
    assert_eq!(first.memo.as_deref(), Some("a <raw> memo & more"));
    assert_eq!(first.currency.as_ref().unwrap().symbol, "EUR");
    assert_eq!(statement.transactions[1].memo, None);
    assert_eq!(statement.available_balance, None);
}

#[test]
fn qfx_with_intu_bid_and_leading_whitespace() {
    let doc = read(include_bytes!("testdata/quicken.qfx"));
    let signon = doc.signon.as_ref().unwrap();
    assert_eq!(signon.intu_bid.as_deref(), Some("10898"));
    assert_eq!(signon.server_date, Some(at("2024-05-10T09:30:00Z")));
    let statement = &doc.statements[0];
    assert_eq!(statement.kind, StatementKind::CreditCard);
    assert_eq!(statement.account, Some(Account::CreditCard { account_id: "4111111111111111".into() }));
    assert_eq!(statement.transactions.len(), 2);
    assert_eq!(statement.ledger_balance.as_ref().unwrap().amount, dec("-1520.33"));
}

#[test]
fn qbo_web_connect() {
    let doc = read(include_bytes!("testdata/webconnect.qbo"));
    assert_eq!(doc.signon.as_ref().unwrap().intu_bid.as_deref(), Some("3000"));
    let trn = &doc.statements[0].transactions[0];
    assert_eq!(trn.trntype, "XFER");
    assert_eq!(trn.memo.as_deref(), Some("Online"));
}

#[test]
fn credit_card_xml() {
    let doc = read(include_bytes!("testdata/credit_card.ofx"));
    assert_eq!(doc.version, OfxVersion::V2(211));
    let statement = &doc.statements[0];
    assert_eq!(statement.kind, StatementKind::CreditCard);
    assert_eq!(statement.currency.as_deref(), Some("CAD"));
    assert_eq!(statement.transactions[0].name.as_deref(), Some("Tim Hortons"));
}

#[test]
fn multiple_statements_with_one_failing() {
    let doc = read(include_bytes!("testdata/multiple_statements.ofx"));
    let kinds: Vec<_> = doc.statements.iter().map(|s| s.kind).collect();
    use StatementKind::{Bank, CreditCard};
    assert_eq!(kinds, [Bank, Bank, Bank, CreditCard]);
    assert_eq!(bank(&doc.statements[1]).account_id, "SAV2");
    let failed = &doc.statements[2];
    assert_eq!(failed.status, Some(Status::error(2003, "Account not found")));
    assert_eq!(failed.account, None);
    let summary = doc.summary();
    assert_eq!(summary.transaction_count, 5);
    assert_eq!(summary.first_posted, Some(at("2024-01-10T00:00:00Z")));
    assert_eq!(summary.last_posted, Some(at("2024-01-20T00:00:00Z")));
    assert_eq!(doc.status_codes(), [0, 0, 0, 2003, 0]);
    assert_eq!(summary.accounts[3].account_id.as_deref(), Some("CARD9"));
    assert_eq!(summary.accounts[3].transaction_count, 1);
}

#[test]
fn account_list_only() {
    let doc = read(include_bytes!("testdata/account_list.ofx"));
    assert!(doc.statements.is_empty());
    let list = doc.account_list.as_ref().unwrap();
    assert_eq!(list.trnuid.as_deref(), Some("55"));
    assert_eq!(list.updated, Some(at("2024-08-01T12:00:00Z")));
    assert_eq!(list.accounts.len(), 2, "investment account is skipped");
    let checking = &list.accounts[0];
    assert_eq!(checking.description.as_deref(), Some("Free Checking"));
    assert_eq!(checking.phone.as_deref(), Some("555-1234"));
    assert_eq!(checking.service_status.as_deref(), Some("ACTIVE"));
    assert_eq!(checking.account.account_id(), "1001");
    let card = &list.accounts[1];
    assert_eq!(card.account.kind(), StatementKind::CreditCard);
    assert_eq!(card.service_status.as_deref(), Some("AVAIL"));
    assert_eq!(doc.summary().listed_accounts, ["1001", "4000123412341234"]);
}

#[test]
fn signon_failure_15500() {
    let doc = read(include_bytes!("testdata/signon_fail.ofx"));
    let status = &doc.signon.as_ref().unwrap().status;
    assert_eq!(status.code, 15500);
    assert_eq!(status.severity, Severity::Error);
    assert!(!status.is_success());
    assert!(status.message.as_deref().unwrap().contains("incorrect & must"));
    assert!(doc.statements.is_empty());
    assert_eq!(doc.status_codes(), [15500]);
}

#[test]
fn signon_ok_statement_2000() {
    let doc = read(include_bytes!("testdata/statement_error.ofx"));
    assert!(doc.signon.as_ref().unwrap().status.is_success());
    let statement = &doc.statements[0];
    assert_eq!(statement.trnuid.as_deref(), Some("0"));
    assert_eq!(statement.status, Some(Status::error(2000, "General Server Error")));
    assert!(statement.transactions.is_empty());
    assert_eq!(doc.status_codes(), [0, 2000]);
}

#[test]
fn empty_ofx_is_an_empty_document() {
    for input in [
        &include_bytes!("testdata/empty.ofx")[..],
        b"<OFX></OFX>",
        b"<?xml version=\"1.0\"?><?OFX OFXHEADER=\"200\" VERSION=\"200\"?><OFX/>",
    ] {
        let doc = read(input);
        assert_eq!(doc.signon, None);
        assert_eq!(doc.account_list, None);
        assert!(doc.statements.is_empty());
    }
}

#[test]
fn summary_serialises_to_json() {
    let doc = read(include_bytes!("testdata/sgml_cp1252.ofx"));
    let json = serde_json::to_value(doc.summary()).unwrap();
    assert_eq!(json["transaction_count"], 6);
    assert_eq!(json["accounts"][0]["ledger_balance"]["amount"], "1349.42");
    assert_eq!(json["statuses"][0]["scope"], "signon");
    let full = serde_json::to_string(&doc).unwrap();
    assert!(full.contains("\"2024-01-02T00:00:00Z\""), "{full}");
}

fn error_of(input: &[u8]) -> OfxError {
    parse(input, &ParseOptions::default()).unwrap_err()
}

#[test]
fn malformed_inputs_are_typed_errors_with_lines() {
    assert!(matches!(error_of(b""), OfxError::NoOfx { line: 1 }));
    assert!(matches!(error_of(b"not ofx"), OfxError::Header { line: 1, .. }));
    assert!(matches!(error_of(b"OFXHEADER:100\n\n<OFX>\n<BANKMSGSRSV1"), OfxError::Syntax { line: 4, .. }));
    let bad_amount = b"<OFX><BANKMSGSRSV1><STMTTRNRS><STMTRS>\n<BANKACCTFROM><BANKID>1<ACCTID>2<ACCTTYPE>X</BANKACCTFROM>\n<BANKTRANLIST><STMTTRN><TRNTYPE>X<DTPOSTED>20240101\n<TRNAMT>12..3<FITID>1</STMTTRN>";
    let error = error_of(bad_amount);
    assert!(matches!(&error, OfxError::InvalidValue { line: 4, element, .. } if element == "TRNAMT"), "{error:?}");
    let no_fitid = b"<OFX><BANKMSGSRSV1><STMTTRNRS><STMTRS><BANKACCTFROM><BANKID>1<ACCTID>2<ACCTTYPE>X</BANKACCTFROM><BANKTRANLIST><STMTTRN><TRNTYPE>X<DTPOSTED>20240101<TRNAMT>1</STMTTRN>";
    assert!(matches!(error_of(no_fitid), OfxError::Missing { child, .. } if child == "FITID"));
    let bad_date = b"<OFX><SIGNONMSGSRSV1><SONRS><STATUS><CODE>0<SEVERITY>INFO</STATUS><DTSERVER>2024-01-01</SONRS>";
    assert!(matches!(error_of(bad_date), OfxError::InvalidValue { element, .. } if element == "DTSERVER"));
    let bad_severity = b"<OFX><SIGNONMSGSRSV1><SONRS><STATUS><CODE>0<SEVERITY>FINE</STATUS>";
    assert!(matches!(error_of(bad_severity), OfxError::InvalidValue { .. }));
}

#[test]
fn size_and_depth_limits() {
    let input = include_bytes!("testdata/sgml_cp1252.ofx");
    let options = ParseOptions { max_bytes: 100, ..ParseOptions::default() };
    assert_eq!(parse(input, &options).unwrap_err(), OfxError::TooLarge { size: input.len(), limit: 100 });
    let deep = format!("<OFX>{}</A>", "<A>".repeat(10_000));
    let error = error_of(deep.as_bytes());
    assert!(matches!(error, OfxError::TooDeep { limit: 64, .. }), "{error:?}");
    let wide_deep = format!("<OFX>{}{}", "<A>".repeat(100), "</A>".repeat(100));
    assert!(matches!(error_of(wide_deep.as_bytes()), OfxError::TooDeep { .. }));
}

fn sample_document(version: OfxVersion) -> OfxDocument {
    let posted = at("2024-03-15T12:00:00.250-05:00");
    let transaction = Transaction {
        fitid: "F<1>&2".into(),
        trntype: "DEBIT".into(),
        posted,
        user_date: Some(at("2024-03-14T00:00:00Z")),
        amount: dec("-1234.56"),
        name: Some("AT&T <Mobility> Café".into()),
        payee_name: None,
        memo: Some("x > y & z".into()),
        check_number: Some("77".into()),
        currency: None,
        orig_currency: Some(CurrencyInfo { rate: Some(dec("1.0875")), symbol: "EUR".into() }),
        pending: false,
        replaces_fitid: Some("P<9>&1".into()),
    };
    let checking = BankAccount {
        bank_id: "121000248".into(),
        branch_id: None,
        account_id: "12345".into(),
        account_type: "CHECKING".into(),
    };
    let balance = Balance { amount: dec("99.10"), as_of: at("2024-03-31T23:59:59+05:30") };
    let statement = Statement {
        kind: StatementKind::Bank,
        trnuid: Some("t1".into()),
        status: Some(Status::ok()),
        currency: Some("USD".into()),
        account: Some(Account::Bank(checking.clone())),
        start: Some(at("2024-03-01T00:00:00Z")),
        end: Some(at("2024-03-31T00:00:00Z")),
        transactions: vec![transaction.clone()],
        ledger_balance: Some(balance.clone()),
        available_balance: Some(balance),
    };
    let card = Statement {
        kind: StatementKind::CreditCard,
        account: Some(Account::CreditCard { account_id: "4111".into() }),
        trnuid: Some("t3".into()),
        transactions: vec![Transaction {
            payee_name: Some("Payee & Co".into()),
            name: None,
            pending: true,
            replaces_fitid: None,
            ..transaction
        }],
        ledger_balance: None,
        available_balance: None,
        ..statement.clone()
    };
    let failed = Statement::failed(StatementKind::Bank, "t2", Status::error(2000, "Oops & more"));
    OfxDocument {
        version,
        header: OfxHeader::default(),
        signon: Some(SignonResponse {
            status: Status { code: 15000, severity: Severity::Info, message: Some("Change your USERPASS".into()) },
            server_date: Some(at("2024-04-01T08:00:00-04:00")),
            language: Some("ENG".into()),
            fi: Some(FinancialInstitution { org: Some("Sandbox & Trust".into()), fid: Some("9999".into()) }),
            intu_bid: Some("12345".into()),
        }),
        account_list: Some(AccountListResponse {
            trnuid: Some("a1".into()),
            status: Some(Status::ok()),
            updated: Some(at("2024-04-01T00:00:00Z")),
            accounts: vec![
                AccountInfo {
                    description: Some("Everyday <checking>".into()),
                    phone: None,
                    account: Account::Bank(checking),
                    service_status: Some("ACTIVE".into()),
                },
                AccountInfo {
                    description: None,
                    phone: Some("555".into()),
                    account: Account::CreditCard { account_id: "4111".into() },
                    service_status: None,
                },
            ],
        }),
        statements: vec![statement, failed, card],
    }
}

fn content(doc: &OfxDocument) -> serde_json::Value {
    let mut value = serde_json::to_value(doc).unwrap();
    value["header"] = serde_json::Value::Null;
    value
}

#[test]
fn response_writer_round_trips_in_both_dialects() {
    for version in [OfxVersion::V102, OfxVersion::V103, OfxVersion::V220] {
        let doc = sample_document(version);
        let written = write_response(&doc);
        let back = read(written.as_bytes());
        assert_eq!(back.version, version);
        assert_eq!(content(&back), content(&doc), "{written}");
        assert_eq!(back.signon, doc.signon);
        assert_eq!(back.statements, doc.statements);
    }
}

#[test]
fn response_writer_dialect_shapes() {
    let sgml = write_response(&sample_document(OfxVersion::V102));
    assert!(sgml.starts_with("OFXHEADER:100\r\nDATA:OFXSGML\r\nVERSION:102\r\n"));
    assert!(sgml.contains("ENCODING:UTF-8\r\nCHARSET:NONE"));
    assert!(sgml.contains("<NAME>AT&amp;T &lt;Mobility&gt; Café\r\n<MEMO>"));
    assert!(!sgml.contains("</NAME>"));
    let xml = write_response(&sample_document(OfxVersion::V220));
    assert!(xml.starts_with(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n<?OFX OFXHEADER=\"200\" VERSION=\"220\""
    ));
    assert!(xml.contains("<NAME>AT&amp;T &lt;Mobility&gt; Café</NAME>"));
    assert!(xml.contains("<DTPOSTED>20240315120000.250[-5]</DTPOSTED>"));
}

/// Our pending/replaces extension survives writing and reading in both dialects, and real
/// bank files (which never carry it) read as posted with nothing replaced.
#[test]
fn pending_extension_round_trips() {
    for version in [OfxVersion::V102, OfxVersion::V220] {
        let written = write_response(&sample_document(version));
        let pending_tag =
            if version.is_sgml() { "<FEEDWATCH.PENDING>Y\r\n" } else { "<FEEDWATCH.PENDING>Y</FEEDWATCH.PENDING>" };
        assert!(written.contains(pending_tag), "{written}");
        assert!(written.contains("<FEEDWATCH.REPLACES>P&lt;9&gt;&amp;1"), "{written}");
        let back = read(written.as_bytes());
        let transactions: Vec<_> = back.statements.iter().flat_map(|s| &s.transactions).collect();
        let flags: Vec<_> = transactions.iter().map(|t| (t.pending, t.replaces_fitid.as_deref())).collect();
        assert_eq!(flags, [(false, Some("P<9>&1")), (true, None)]);
    }
    let plain = read(include_bytes!("testdata/sgml_cp1252.ofx"));
    let transactions = plain.statements.iter().flat_map(|s| &s.transactions);
    assert!(transactions.clone().count() > 0);
    assert!(transactions.clone().all(|t| !t.pending && t.replaces_fitid.is_none()));
    let lowercase = written_lowercase_extension();
    let back = read(lowercase.as_bytes());
    let flags: Vec<_> = back
        .statements
        .iter()
        .flat_map(|s| &s.transactions)
        .map(|t| (t.pending, t.replaces_fitid.as_deref()))
        .collect();
    assert_eq!(flags, [(false, Some("P<9>&1")), (true, None)]);
}

/// SGML files from hand-written tools sometimes lower-case tags and flags.
fn written_lowercase_extension() -> String {
    write_response(&sample_document(OfxVersion::V102))
        .replace("<FEEDWATCH.PENDING>Y", "<feedwatch.pending>y")
        .replace("FEEDWATCH.REPLACES", "feedwatch.replaces")
}

#[test]
fn signon_failure_response_round_trips() {
    for version in [OfxVersion::V102, OfxVersion::V220] {
        let mut doc = OfxDocument::new(version);
        doc.signon = Some(SignonResponse {
            status: Status::error(15500, "Signon invalid"),
            server_date: Some(at("2024-04-01T08:00:00Z")),
            language: Some("ENG".into()),
            fi: None,
            intu_bid: None,
        });
        let back = read(write_response(&doc).as_bytes());
        assert_eq!(content(&back), content(&doc));
        assert_eq!(back.status_codes(), [15500]);
    }
}

fn sample_request(version: OfxVersion) -> OfxRequest {
    OfxRequest {
        version,
        client_date: at("2024-04-01T12:00:00Z"),
        signon: SignonRequest {
            user_id: "jane&doe".into(),
            password: Password::new("hunter2<&>"),
            language: "ENG".into(),
            org: Some("MyCU".into()),
            fid: Some("321".into()),
            app_id: "QWIN".into(),
            app_ver: "2700".into(),
            client_uid: Some("6b8f2d3c-0000-4000-8000-000000000001".into()),
        },
        messages: vec![
            RequestMessage::CreditCardStatement {
                trnuid: "3".into(),
                account_id: "4111".into(),
                start: None,
                end: None,
                include_transactions: false,
            },
            RequestMessage::AccountList { trnuid: "1".into(), since: at("1990-01-01T00:00:00Z") },
            RequestMessage::BankStatement {
                trnuid: "2".into(),
                account: BankAccount {
                    bank_id: "321".into(),
                    branch_id: None,
                    account_id: "1001".into(),
                    account_type: "CHECKING".into(),
                },
                start: Some(at("2024-03-01T00:00:00-05:00")),
                end: Some(at("2024-04-01T00:00:00-04:00")),
                include_transactions: true,
            },
        ],
    }
}

#[test]
fn request_writer_round_trips_in_both_dialects() {
    for version in [OfxVersion::V102, OfxVersion::V103, OfxVersion::V220] {
        let request = sample_request(version);
        let written = write_request(&request);
        let back = parse_request(written.as_bytes(), &ParseOptions::default()).unwrap();
        assert_eq!(back.signon.password.expose(), "hunter2<&>");
        let mut expected = request.clone();
        // Message sets are written in spec order: signup, bank, credit card.
        expected.messages.rotate_left(1);
        assert_eq!(back, expected, "{written}");
        let as_response = read(written.as_bytes());
        assert_eq!(as_response.version, version);
        assert!(as_response.statements.is_empty());
    }
}

#[test]
fn request_writer_shapes() {
    let sgml = write_request(&sample_request(OfxVersion::V102));
    assert!(sgml.contains("ENCODING:USASCII\r\nCHARSET:1252"));
    assert!(sgml.contains("<USERPASS>hunter2&lt;&amp;&gt;\r\n"));
    assert!(sgml.contains(
        "<INCTRAN>\r\n<DTSTART>20240301000000.000[-5]\r\n<DTEND>20240401000000.000[-4]\r\n<INCLUDE>Y\r\n</INCTRAN>"
    ));
    assert!(sgml.contains("<DTCLIENT>20240401120000.000[0:GMT]\r\n"));
    assert!(sgml.contains(
        "<SIGNUPMSGSRQV1>\r\n<ACCTINFOTRNRQ>\r\n<TRNUID>1\r\n<ACCTINFORQ>\r\n<DTACCTUP>19900101000000.000[0:GMT]"
    ));
    let xml = write_request(&sample_request(OfxVersion::V220));
    assert!(xml.contains("<CCSTMTRQ>\n        <CCACCTFROM>\n          <ACCTID>4111</ACCTID>"));
    assert!(xml.contains("<USERID>jane&amp;doe</USERID>"));
}

#[test]
fn request_debug_and_json_never_show_the_password() {
    let request = sample_request(OfxVersion::V102);
    let debug = format!("{request:?} {:?} {:#?}", request.signon, request.signon.password);
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("redacted"));
    let json = serde_json::to_string(&request).unwrap();
    assert!(!json.contains("hunter2"));
}
