//! Direct Connect requests: writing them for banks, and reading them back
//! (the sandbox bank server needs the latter).

use std::fmt;

use serde::{Serialize, Serializer};

use super::date::OfxDateTime;
use super::error::OfxError;
use super::extract::{date, required, required_child, required_date, string};
use super::model::{Account, BankAccount, OfxVersion};
use super::tree::Element;
use super::write::{Node, account_from, aggregate, date_leaf, leaf, message_set, opt_leaf, render};
use super::{ParseOptions, ofx_element, prelude};

/// A USERPASS. Debug and Serialize never show it; only the request body
/// written by [`write_request`] carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Serialize for Password {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("<redacted>")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignonRequest {
    pub user_id: String,
    pub password: Password,
    pub language: String,
    pub org: Option<String>,
    pub fid: Option<String>,
    /// Many banks only answer known clients, e.g. `QWIN` / `2700`.
    pub app_id: String,
    pub app_ver: String,
    pub client_uid: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestMessage {
    AccountList {
        trnuid: String,
        since: OfxDateTime,
    },
    BankStatement {
        trnuid: String,
        account: BankAccount,
        start: Option<OfxDateTime>,
        end: Option<OfxDateTime>,
        include_transactions: bool,
    },
    CreditCardStatement {
        trnuid: String,
        account_id: String,
        start: Option<OfxDateTime>,
        end: Option<OfxDateTime>,
        include_transactions: bool,
    },
}

impl RequestMessage {
    /// The statement request for `account` (a bank or a card statement, as the account is), its
    /// transactions from `start` on.
    pub fn statement(account: &Account, trnuid: String, start: OfxDateTime) -> Self {
        match account {
            Account::Bank(bank) => Self::BankStatement {
                trnuid,
                account: bank.clone(),
                start: Some(start),
                end: None,
                include_transactions: true,
            },
            Account::CreditCard { account_id } => Self::CreditCardStatement {
                trnuid,
                account_id: account_id.clone(),
                start: Some(start),
                end: None,
                include_transactions: true,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OfxRequest {
    /// `OfxVersion::V102`/`V103` write SGML, `OfxVersion::V220` XML.
    pub version: OfxVersion,
    pub client_date: OfxDateTime,
    pub signon: SignonRequest,
    pub messages: Vec<RequestMessage>,
}

/// Writes the request body to POST to a Direct Connect server.
pub fn write_request(request: &OfxRequest) -> String {
    let of_set = |wanted: fn(&RequestMessage) -> bool| -> Vec<Node> {
        request.messages.iter().filter(|m| wanted(m)).map(message).collect()
    };
    let body = aggregate(
        "OFX",
        vec![
            signon(&request.signon, &request.client_date),
            message_set("SIGNUPMSGSRQV1", of_set(|m| matches!(m, RequestMessage::AccountList { .. }))),
            message_set("BANKMSGSRQV1", of_set(|m| matches!(m, RequestMessage::BankStatement { .. }))),
            message_set("CREDITCARDMSGSRQV1", of_set(|m| matches!(m, RequestMessage::CreditCardStatement { .. }))),
        ],
    );
    render(request.version, &body)
}

fn signon(signon: &SignonRequest, client_date: &OfxDateTime) -> Node {
    let has_fi = signon.org.is_some() || signon.fid.is_some();
    let fi = has_fi
        .then(|| aggregate("FI", vec![opt_leaf("ORG", signon.org.as_deref()), opt_leaf("FID", signon.fid.as_deref())]));
    let sonrq = aggregate(
        "SONRQ",
        vec![
            date_leaf("DTCLIENT", Some(client_date)),
            leaf("USERID", signon.user_id.as_str()),
            leaf("USERPASS", signon.password.expose()),
            leaf("LANGUAGE", signon.language.as_str()),
            fi.into(),
            leaf("APPID", signon.app_id.as_str()),
            leaf("APPVER", signon.app_ver.as_str()),
            opt_leaf("CLIENTUID", signon.client_uid.as_deref()),
        ],
    );
    aggregate("SIGNONMSGSRQV1", vec![sonrq])
}

fn message(message: &RequestMessage) -> Node {
    match message {
        RequestMessage::AccountList { trnuid, since } => aggregate(
            "ACCTINFOTRNRQ",
            vec![leaf("TRNUID", trnuid.as_str()), aggregate("ACCTINFORQ", vec![date_leaf("DTACCTUP", Some(since))])],
        ),
        RequestMessage::BankStatement { trnuid, account, start, end, include_transactions } => statement_request(
            ("STMTTRNRQ", "STMTRQ"),
            trnuid,
            &Account::Bank(account.clone()),
            [start.as_ref(), end.as_ref()],
            *include_transactions,
        ),
        RequestMessage::CreditCardStatement { trnuid, account_id, start, end, include_transactions } => {
            statement_request(
                ("CCSTMTTRNRQ", "CCSTMTRQ"),
                trnuid,
                &Account::CreditCard { account_id: account_id.clone() },
                [start.as_ref(), end.as_ref()],
                *include_transactions,
            )
        }
    }
}

fn statement_request(
    (trn_name, rq_name): (&'static str, &'static str),
    trnuid: &str,
    account: &Account,
    [start, end]: [Option<&OfxDateTime>; 2],
    include: bool,
) -> Node {
    let inctran = aggregate(
        "INCTRAN",
        vec![date_leaf("DTSTART", start), date_leaf("DTEND", end), leaf("INCLUDE", if include { "Y" } else { "N" })],
    );
    aggregate(trn_name, vec![leaf("TRNUID", trnuid), aggregate(rq_name, vec![account_from(account), inctran])])
}

/// Reads a request as written by [`write_request`] (or by a real client).
pub fn parse_request(input: &[u8], options: &ParseOptions) -> Result<OfxRequest, OfxError> {
    let prelude = prelude(input, options)?;
    let ofx = ofx_element(&prelude.text, prelude.body_start, options)?;
    let sonrq = required_child(&ofx, "SIGNONMSGSRQV1").and_then(|set| required_child(set, "SONRQ"))?;
    Ok(OfxRequest {
        version: prelude.version,
        client_date: required_date(sonrq, "DTCLIENT")?,
        signon: read_signon(sonrq)?,
        messages: read_messages(&ofx)?,
    })
}

fn read_signon(sonrq: &Element) -> Result<SignonRequest, OfxError> {
    let fi = sonrq.child("FI");
    Ok(SignonRequest {
        user_id: required(sonrq, "USERID")?.to_owned(),
        password: Password::new(required(sonrq, "USERPASS")?.to_owned()),
        language: required(sonrq, "LANGUAGE")?.to_owned(),
        org: fi.and_then(|fi| string(fi, "ORG")),
        fid: fi.and_then(|fi| string(fi, "FID")),
        app_id: required(sonrq, "APPID")?.to_owned(),
        app_ver: required(sonrq, "APPVER")?.to_owned(),
        client_uid: string(sonrq, "CLIENTUID"),
    })
}

fn read_messages(ofx: &Element) -> Result<Vec<RequestMessage>, OfxError> {
    let mut messages = Vec::new();
    let sets =
        [("SIGNUPMSGSRQV1", "ACCTINFOTRNRQ"), ("BANKMSGSRQV1", "STMTTRNRQ"), ("CREDITCARDMSGSRQV1", "CCSTMTTRNRQ")];
    for (set, trn) in sets {
        for trnrq in ofx.children_named(set).flat_map(|s| s.children_named(trn)) {
            messages.push(read_message(trnrq)?);
        }
    }
    Ok(messages)
}

fn read_message(trnrq: &Element) -> Result<RequestMessage, OfxError> {
    let trnuid = required(trnrq, "TRNUID")?.to_owned();
    if let Some(rq) = trnrq.child("ACCTINFORQ") {
        let since = required_date(rq, "DTACCTUP")?;
        return Ok(RequestMessage::AccountList { trnuid, since });
    }
    if let Some(rq) = trnrq.child("STMTRQ") {
        let from = required_child(rq, "BANKACCTFROM")?;
        let (start, end, include_transactions) = read_inctran(rq)?;
        let account = BankAccount {
            bank_id: required(from, "BANKID")?.to_owned(),
            branch_id: string(from, "BRANCHID"),
            account_id: required(from, "ACCTID")?.to_owned(),
            account_type: required(from, "ACCTTYPE")?.to_owned(),
        };
        return Ok(RequestMessage::BankStatement { trnuid, account, start, end, include_transactions });
    }
    let rq = required_child(trnrq, "CCSTMTRQ")?;
    let from = required_child(rq, "CCACCTFROM")?;
    let (start, end, include_transactions) = read_inctran(rq)?;
    Ok(RequestMessage::CreditCardStatement {
        trnuid,
        account_id: required(from, "ACCTID")?.to_owned(),
        start,
        end,
        include_transactions,
    })
}

type Inctran = (Option<OfxDateTime>, Option<OfxDateTime>, bool);

fn read_inctran(rq: &Element) -> Result<Inctran, OfxError> {
    let Some(inctran) = rq.child("INCTRAN") else {
        return Ok((None, None, false));
    };
    let include = inctran.text_of("INCLUDE").is_some_and(|flag| flag.eq_ignore_ascii_case("Y"));
    Ok((date(inctran, "DTSTART")?, date(inctran, "DTEND")?, include))
}
