//! Rendering OFX in either dialect, and the response writer.

use rust_decimal::Decimal;

use super::date::{OfxDateTime, format_date};
use super::model::{
    Account, AccountInfo, AccountListResponse, Balance, CurrencyInfo, OfxDocument, OfxVersion, SignonResponse,
    Statement, StatementKind, Status, Transaction,
};

/// Our STMTTRN extension elements; see [`Transaction`] for why they exist.
pub(crate) const PENDING: &str = "FEEDWATCH.PENDING";
pub(crate) const REPLACES: &str = "FEEDWATCH.REPLACES";

/// An element to write. Leaves with blank values and `Skip` are left out, so
/// optional fields need no special casing by callers.
pub(crate) enum Node {
    Leaf(&'static str, String),
    Aggregate(&'static str, Vec<Node>),
    Skip,
}

pub(crate) fn leaf(name: &'static str, value: impl Into<String>) -> Node {
    Node::Leaf(name, value.into())
}

pub(crate) fn opt_leaf(name: &'static str, value: Option<&str>) -> Node {
    value.map_or(Node::Skip, |value| leaf(name, value))
}

pub(crate) fn date_leaf(name: &'static str, value: Option<&OfxDateTime>) -> Node {
    value.map_or(Node::Skip, |value| leaf(name, format_date(value)))
}

pub(crate) fn aggregate(name: &'static str, children: Vec<Node>) -> Node {
    Node::Aggregate(name, children)
}

impl From<Option<Node>> for Node {
    fn from(node: Option<Node>) -> Self {
        node.unwrap_or(Node::Skip)
    }
}

/// Header plus body. SGML output declares UTF-8 only when it must, since old
/// Direct Connect servers expect `USASCII`/`1252`.
pub(crate) fn render(version: OfxVersion, body: &Node) -> String {
    let mut out = String::new();
    if version.is_sgml() {
        write_sgml(&mut out, body);
    } else {
        write_xml(&mut out, body, 0);
    }
    let mut document = header(version, out.is_ascii());
    document.push_str(&out);
    document
}

fn header(version: OfxVersion, ascii: bool) -> String {
    let number = version.number();
    if !version.is_sgml() {
        return format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n\
             <?OFX OFXHEADER=\"200\" VERSION=\"{number}\" SECURITY=\"NONE\" \
             OLDFILEUID=\"NONE\" NEWFILEUID=\"NONE\"?>\n"
        );
    }
    let (encoding, charset) = if ascii { ("USASCII", "1252") } else { ("UTF-8", "NONE") };
    format!(
        "OFXHEADER:100\r\nDATA:OFXSGML\r\nVERSION:{number}\r\nSECURITY:NONE\r\n\
         ENCODING:{encoding}\r\nCHARSET:{charset}\r\nCOMPRESSION:NONE\r\n\
         OLDFILEUID:NONE\r\nNEWFILEUID:NONE\r\n\r\n"
    )
}

// Tags are pushed piece by piece, not with `format!`: a statement has thousands of them.
fn write_sgml(out: &mut String, node: &Node) {
    match node {
        Node::Leaf(name, value) if !value.trim().is_empty() => {
            push_tag(out, "<", name);
            escape_into(out, value.trim());
            out.push_str("\r\n");
        }
        Node::Aggregate(name, children) => {
            push_tag(out, "<", name);
            out.push_str("\r\n");
            children.iter().for_each(|child| write_sgml(out, child));
            push_tag(out, "</", name);
            out.push_str("\r\n");
        }
        _ => {}
    }
}

fn write_xml(out: &mut String, node: &Node, depth: usize) {
    let indent = |out: &mut String| (0..depth).for_each(|_| out.push_str("  "));
    match node {
        Node::Leaf(name, value) if !value.trim().is_empty() => {
            indent(out);
            push_tag(out, "<", name);
            escape_into(out, value.trim());
            push_tag(out, "</", name);
            out.push('\n');
        }
        Node::Aggregate(name, children) => {
            indent(out);
            push_tag(out, "<", name);
            out.push('\n');
            children.iter().for_each(|child| write_xml(out, child, depth + 1));
            indent(out);
            push_tag(out, "</", name);
            out.push('\n');
        }
        _ => {}
    }
}

fn push_tag(out: &mut String, opener: &str, name: &str) {
    out.push_str(opener);
    out.push_str(name);
    out.push('>');
}

/// Control characters other than tab and line breaks are not allowed in
/// XML at all, so they are dropped rather than escaped.
fn escape_into(out: &mut String, value: &str) {
    // Most values need nothing: copy the runs between the characters that do, not each character.
    let mut rest = value;
    while let Some(at) = rest.find(needs_escape) {
        out.push_str(&rest[..at]);
        let c = rest[at..].chars().next().unwrap_or_default();
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => {}
        }
        rest = &rest[at + c.len_utf8()..];
    }
    out.push_str(rest);
}

/// Markup characters, and the control characters and non-characters a value may not carry
/// (tabs and line ends stay).
fn needs_escape(c: char) -> bool {
    matches!(c, '&' | '<' | '>' | '\u{FFFE}' | '\u{FFFF}') || (c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
}

/// Writes a response document (as a bank would send it) in the dialect of
/// `document.version`. Bank statements are written before credit-card ones,
/// as the message sets require; a statement whose `account` is `None` is
/// written as a bare failure status.
pub fn write_response(document: &OfxDocument) -> String {
    let bank = statements_of(document, StatementKind::Bank);
    let card = statements_of(document, StatementKind::CreditCard);
    let body = aggregate(
        "OFX",
        vec![
            document.signon.as_ref().map(signon).into(),
            document.account_list.as_ref().map(account_list).into(),
            message_set("BANKMSGSRSV1", bank),
            message_set("CREDITCARDMSGSRSV1", card),
        ],
    );
    render(document.version, &body)
}

fn statements_of(document: &OfxDocument, kind: StatementKind) -> Vec<Node> {
    document.statements.iter().filter(|statement| statement.kind == kind).map(statement).collect()
}

pub(crate) fn message_set(name: &'static str, transactions: Vec<Node>) -> Node {
    if transactions.is_empty() {
        return Node::Skip;
    }
    aggregate(name, transactions)
}

pub(crate) fn status(status: &Status) -> Node {
    aggregate(
        "STATUS",
        vec![
            leaf("CODE", status.code.to_string()),
            leaf("SEVERITY", status.severity.as_str()),
            opt_leaf("MESSAGE", status.message.as_deref()),
        ],
    )
}

fn opt_status(value: Option<&Status>) -> Node {
    value.map(status).into()
}

fn signon(signon: &SignonResponse) -> Node {
    let fi = signon
        .fi
        .as_ref()
        .map(|fi| aggregate("FI", vec![opt_leaf("ORG", fi.org.as_deref()), opt_leaf("FID", fi.fid.as_deref())]));
    let sonrs = aggregate(
        "SONRS",
        vec![
            status(&signon.status),
            date_leaf("DTSERVER", signon.server_date.as_ref()),
            opt_leaf("LANGUAGE", signon.language.as_deref()),
            fi.into(),
            opt_leaf("INTU.BID", signon.intu_bid.as_deref()),
        ],
    );
    aggregate("SIGNONMSGSRSV1", vec![sonrs])
}

fn account_list(list: &AccountListResponse) -> Node {
    let has_body = list.updated.is_some() || !list.accounts.is_empty();
    let body = has_body.then(|| {
        let mut children = vec![date_leaf("DTACCTUP", list.updated.as_ref())];
        children.extend(list.accounts.iter().map(account_info));
        aggregate("ACCTINFORS", children)
    });
    let trnrs = aggregate(
        "ACCTINFOTRNRS",
        vec![opt_leaf("TRNUID", list.trnuid.as_deref()), opt_status(list.status.as_ref()), body.into()],
    );
    aggregate("SIGNUPMSGSRSV1", vec![trnrs])
}

fn account_info(info: &AccountInfo) -> Node {
    let (service, from) = match &info.account {
        Account::Bank(_) => ("BANKACCTINFO", account_from(&info.account)),
        Account::CreditCard { .. } => ("CCACCTINFO", account_from(&info.account)),
    };
    let service = aggregate(
        service,
        vec![
            from,
            leaf("SUPTXDL", "Y"),
            leaf("XFERSRC", "N"),
            leaf("XFERDEST", "N"),
            opt_leaf("SVCSTATUS", info.service_status.as_deref()),
        ],
    );
    aggregate(
        "ACCTINFO",
        vec![opt_leaf("DESC", info.description.as_deref()), opt_leaf("PHONE", info.phone.as_deref()), service],
    )
}

pub(crate) fn account_from(account: &Account) -> Node {
    match account {
        Account::Bank(bank) => aggregate(
            "BANKACCTFROM",
            vec![
                leaf("BANKID", bank.bank_id.as_str()),
                opt_leaf("BRANCHID", bank.branch_id.as_deref()),
                leaf("ACCTID", bank.account_id.as_str()),
                leaf("ACCTTYPE", bank.account_type.as_str()),
            ],
        ),
        Account::CreditCard { account_id } => aggregate("CCACCTFROM", vec![leaf("ACCTID", account_id.as_str())]),
    }
}

fn statement(statement: &Statement) -> Node {
    let (trn_name, body_name) = match statement.kind {
        StatementKind::Bank => ("STMTTRNRS", "STMTRS"),
        StatementKind::CreditCard => ("CCSTMTTRNRS", "CCSTMTRS"),
    };
    let body = statement.account.as_ref().map(|account| statement_body(body_name, statement, account));
    aggregate(
        trn_name,
        vec![opt_leaf("TRNUID", statement.trnuid.as_deref()), opt_status(statement.status.as_ref()), body.into()],
    )
}

fn statement_body(name: &'static str, statement: &Statement, account: &Account) -> Node {
    let has_list = statement.start.is_some() || statement.end.is_some() || !statement.transactions.is_empty();
    let list = has_list.then(|| {
        let mut children =
            vec![date_leaf("DTSTART", statement.start.as_ref()), date_leaf("DTEND", statement.end.as_ref())];
        children.extend(statement.transactions.iter().map(transaction));
        aggregate("BANKTRANLIST", children)
    });
    aggregate(
        name,
        vec![
            opt_leaf("CURDEF", statement.currency.as_deref()),
            account_from(account),
            list.into(),
            balance("LEDGERBAL", statement.ledger_balance.as_ref()),
            balance("AVAILBAL", statement.available_balance.as_ref()),
        ],
    )
}

fn transaction(trn: &Transaction) -> Node {
    let payee = trn.payee_name.as_deref().map(|name| aggregate("PAYEE", vec![leaf("NAME", name)]));
    aggregate(
        "STMTTRN",
        vec![
            leaf("TRNTYPE", trn.trntype.as_str()),
            leaf("DTPOSTED", format_date(&trn.posted)),
            date_leaf("DTUSER", trn.user_date.as_ref()),
            amount_leaf("TRNAMT", &trn.amount),
            leaf("FITID", trn.fitid.as_str()),
            opt_leaf("CHECKNUM", trn.check_number.as_deref()),
            opt_leaf("NAME", trn.name.as_deref()),
            payee.into(),
            opt_leaf("MEMO", trn.memo.as_deref()),
            currency("CURRENCY", trn.currency.as_ref()),
            currency("ORIGCURRENCY", trn.orig_currency.as_ref()),
            // Extensions come last so readers that skip unknown elements lose nothing else.
            if trn.pending { leaf(PENDING, "Y") } else { Node::Skip },
            opt_leaf(REPLACES, trn.replaces_fitid.as_deref()),
        ],
    )
}

fn currency(name: &'static str, info: Option<&CurrencyInfo>) -> Node {
    info.map(|info| {
        let rate = info.rate.map(|rate| rate.to_string());
        aggregate(name, vec![opt_leaf("CURRATE", rate.as_deref()), leaf("CURSYM", info.symbol.as_str())])
    })
    .into()
}

fn balance(name: &'static str, value: Option<&Balance>) -> Node {
    value
        .map(|value| {
            aggregate(name, vec![amount_leaf("BALAMT", &value.amount), leaf("DTASOF", format_date(&value.as_of))])
        })
        .into()
}

fn amount_leaf(name: &'static str, amount: &Decimal) -> Node {
    leaf(name, amount.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_stripped_of_what_markup_cannot_carry() {
        let mut out = String::new();
        escape_into(&mut out, "AT&T <café>\u{1}\u{85}\u{FFFE}\tend\u{FFFF}");
        assert_eq!(out, "AT&amp;T &lt;café&gt;\tend");
        let mut plain = String::new();
        escape_into(&mut plain, "PAYROLL 42");
        assert_eq!(plain, "PAYROLL 42");
    }
}
