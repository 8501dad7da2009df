//! Which column holds what: the header row is found among the first rows by the names banks
//! give their columns (English, German, French, Dutch, Spanish, Portuguese); without one the
//! columns are told by their content. A caller may name any column itself.

use serde::{Deserialize, Serialize};

use super::amounts;
use super::dates;
use super::records::Record;

/// A column named by its header text (case and punctuation ignored) or its 1-based position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ColumnRef {
    Position(usize),
    Name(String),
}

/// Columns a caller names instead of the reader's detection; unnamed ones are detected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ColumnOverrides {
    pub date: Option<ColumnRef>,
    pub description: Option<ColumnRef>,
    pub amount: Option<ColumnRef>,
    pub debit: Option<ColumnRef>,
    pub credit: Option<ColumnRef>,
    pub balance: Option<ColumnRef>,
    pub reference: Option<ColumnRef>,
}

/// 0-based positions of the columns the reader uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Columns {
    pub date: Option<usize>,
    pub description: Option<usize>,
    /// A second text column (a memo, a counterparty's name), kept beside the description.
    pub memo: Option<usize>,
    pub amount: Option<usize>,
    pub debit: Option<usize>,
    pub credit: Option<usize>,
    /// A column of `DR`/`CR`, `Af`/`Bij`, `S`/`H` giving the sign of an unsigned amount.
    pub direction: Option<usize>,
    pub balance: Option<usize>,
    pub reference: Option<usize>,
    pub currency: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Date,
    ValueDate,
    Description,
    Memo,
    Amount,
    Debit,
    Credit,
    Direction,
    Balance,
    Reference,
    Currency,
}

/// Normalised header names (lower case, letters and digits only) and their role. Order
/// matters within a role: the first column found of a role wins.
const NAMES: &[(&str, Role)] = &[
    ("date", Role::Date),
    ("transactiondate", Role::Date),
    ("postingdate", Role::Date),
    ("posteddate", Role::Date),
    ("postdate", Role::Date),
    ("transdate", Role::Date),
    ("bookingdate", Role::Date),
    ("buchungsdatum", Role::Date),
    ("buchungstag", Role::Date),
    ("datum", Role::Date),
    ("dateoperation", Role::Date),
    ("datedoperation", Role::Date),
    ("datecomptable", Role::Date),
    ("fecha", Role::Date),
    ("fechaoperacion", Role::Date),
    ("data", Role::Date),
    ("datalancamento", Role::Date),
    ("completeddate", Role::Date),
    ("startedDate", Role::Date),
    ("valuedate", Role::ValueDate),
    ("valuta", Role::ValueDate),
    ("wertstellung", Role::ValueDate),
    ("datedevaleur", Role::ValueDate),
    ("fechavalor", Role::ValueDate),
    ("rentedatum", Role::ValueDate),
    ("description", Role::Description),
    ("transactiondescription", Role::Description),
    ("details", Role::Description),
    ("transactiondetails", Role::Description),
    ("narrative", Role::Description),
    ("payee", Role::Description),
    ("name", Role::Description),
    ("naamomschrijving", Role::Description),
    ("omschrijving", Role::Description),
    ("merchant", Role::Description),
    ("beschreibung", Role::Description),
    ("auftraggeberempfaenger", Role::Description),
    ("empfaenger", Role::Description),
    ("buchungstext", Role::Description),
    ("auftraggeberbeguenstigter", Role::Description),
    ("beguenstigterzahlungspflichtiger", Role::Description),
    ("zahlungsempfaengerin", Role::Description),
    ("libelle", Role::Description),
    ("libell", Role::Description),
    ("concepto", Role::Description),
    ("descripcion", Role::Description),
    ("historico", Role::Description),
    ("descricao", Role::Description),
    ("particulars", Role::Description),
    ("memo", Role::Memo),
    ("verwendungszweck", Role::Memo),
    ("mededelingen", Role::Memo),
    ("notes", Role::Memo),
    ("informationscomplementaires", Role::Memo),
    ("amount", Role::Amount),
    ("transactionamount", Role::Amount),
    ("betrag", Role::Amount),
    ("umsatz", Role::Amount),
    ("montant", Role::Amount),
    ("importe", Role::Amount),
    ("bedrag", Role::Amount),
    ("valor", Role::Amount),
    ("value", Role::Amount),
    ("debit", Role::Debit),
    ("debitamount", Role::Debit),
    ("withdrawal", Role::Debit),
    ("withdrawals", Role::Debit),
    ("moneyout", Role::Debit),
    ("paidout", Role::Debit),
    ("soll", Role::Debit),
    ("ausgang", Role::Debit),
    ("cargo", Role::Debit),
    ("credit", Role::Credit),
    ("creditamount", Role::Credit),
    ("deposit", Role::Credit),
    ("deposits", Role::Credit),
    ("moneyin", Role::Credit),
    ("paidin", Role::Credit),
    ("haben", Role::Credit),
    ("eingang", Role::Credit),
    ("abono", Role::Credit),
    ("afbij", Role::Direction),
    ("crdr", Role::Direction),
    ("drcr", Role::Direction),
    ("debitcredit", Role::Direction),
    ("creditdebitindicator", Role::Direction),
    ("sollhaben", Role::Direction),
    ("balance", Role::Balance),
    ("runningbalance", Role::Balance),
    ("saldo", Role::Balance),
    ("solde", Role::Balance),
    ("kontostand", Role::Balance),
    ("reference", Role::Reference),
    ("ref", Role::Reference),
    ("referenz", Role::Reference),
    ("kundenreferenz", Role::Reference),
    ("checknumber", Role::Reference),
    ("chequenumber", Role::Reference),
    ("checkorslip", Role::Reference),
    ("transactionid", Role::Reference),
    ("referencia", Role::Reference),
    ("oesszeg", Role::Amount),
    ("egyenleg", Role::Balance),
    ("koezlemeny", Role::Description),
    ("currency", Role::Currency),
    ("waehrung", Role::Currency),
    ("wahrung", Role::Currency),
    ("devise", Role::Currency),
    ("moneda", Role::Currency),
];

const CURRENCY_UNITS: [&str; 17] = [
    "eur", "usd", "gbp", "chf", "cad", "aud", "nzd", "brl", "sek", "nok", "dkk", "pln", "czk", "jpy", "inr", "zar",
    "mxn",
];

/// Header cells may carry a unit (`Betrag (€)`, `Amount (GBP)`, `Bedrag (EUR)`): a name is
/// also known when it starts the cell and only a unit follows.
fn role_of(cell: &str) -> Option<Role> {
    let name = normalise(cell);
    if name.is_empty() {
        return None;
    }
    let exact = NAMES.iter().find(|(known, _)| known.eq_ignore_ascii_case(&name));
    exact
        .or_else(|| {
            NAMES.iter().find(|(known, role)| {
                matches!(role, Role::Amount | Role::Debit | Role::Credit | Role::Balance)
                    && name.strip_prefix(*known).is_some_and(|unit| CURRENCY_UNITS.contains(&unit))
            })
        })
        .map(|(_, role)| *role)
}

/// Lower case, umlauts spelled out, accents dropped, only letters and digits kept.
pub(crate) fn normalise(cell: &str) -> String {
    let mut out = String::new();
    for c in cell.trim().to_lowercase().chars() {
        match c {
            'ä' => out.push_str("ae"),
            'ö' => out.push_str("oe"),
            'ü' => out.push_str("ue"),
            'ß' => out.push_str("ss"),
            'é' | 'è' | 'ê' => out.push('e'),
            'á' | 'à' | 'â' | 'ã' => out.push('a'),
            'í' => out.push('i'),
            'ó' | 'ô' | 'õ' => out.push('o'),
            'ú' => out.push('u'),
            'ç' => out.push('c'),
            c if c.is_ascii_alphanumeric() => out.push(c),
            _ => {}
        }
    }
    out
}

/// Columns considered for detection: statements have a dozen; a row of thousands of
/// delimiters is damage, and looking at every one of its cells in every row would be slow.
const MAX_COLUMNS: usize = 64;

/// Rows searched for a header: banks put an account summary of a few lines above it.
pub(crate) const HEADER_SEARCH_ROWS: usize = 30;

/// The index (into `records`) of the header row: the first row with a date column and an
/// amount (or debit/credit) column among its names.
pub(crate) fn find_header(records: &[Record]) -> Option<usize> {
    records.iter().take(HEADER_SEARCH_ROWS).position(|record| {
        let roles: Vec<Role> = record.cells.iter().take(MAX_COLUMNS).filter_map(|cell| role_of(cell)).collect();
        let dated = roles.iter().any(|role| matches!(role, Role::Date | Role::ValueDate));
        let valued = roles.iter().any(|role| matches!(role, Role::Amount | Role::Debit | Role::Credit));
        dated && valued
    })
}

pub(crate) fn from_header(header: &Record) -> Columns {
    let mut columns = Columns::default();
    let mut value_date = None;
    for (index, cell) in header.cells.iter().enumerate().take(MAX_COLUMNS) {
        let slot = match role_of(cell) {
            Some(Role::Date) => &mut columns.date,
            Some(Role::ValueDate) => &mut value_date,
            Some(Role::Description) if columns.description.is_some() => &mut columns.memo,
            Some(Role::Description) => &mut columns.description,
            Some(Role::Memo) => &mut columns.memo,
            Some(Role::Amount) => &mut columns.amount,
            Some(Role::Debit) => &mut columns.debit,
            Some(Role::Credit) => &mut columns.credit,
            Some(Role::Direction) => &mut columns.direction,
            Some(Role::Balance) => &mut columns.balance,
            Some(Role::Reference) => &mut columns.reference,
            Some(Role::Currency) => &mut columns.currency,
            None => continue,
        };
        slot.get_or_insert(index);
    }
    columns.date = columns.date.or(value_date);
    if columns.description.is_none() {
        columns.description = columns.memo.take();
    }
    columns
}

/// Without a header: the column where most cells are dates, the one where most are
/// amounts (the last such, balances tend to come after), and the longest text. What decides
/// is counted a row at a time, so the whole file decides without being held.
#[derive(Debug)]
pub(crate) struct Content {
    rows: usize,
    width: usize,
    dates: [usize; MAX_COLUMNS],
    amounts: [usize; MAX_COLUMNS],
    /// Letters in each column.
    text: [usize; MAX_COLUMNS],
}

impl Content {
    pub fn new() -> Self {
        Self { rows: 0, width: 0, dates: [0; MAX_COLUMNS], amounts: [0; MAX_COLUMNS], text: [0; MAX_COLUMNS] }
    }

    pub fn add(&mut self, row: &Record) {
        self.rows += 1;
        let width = row.cells.len().min(MAX_COLUMNS);
        self.width = self.width.max(width);
        for column in 0..width {
            let cell = row.cell(column);
            let date = dates::shape(cell).is_some();
            self.dates[column] += usize::from(date);
            self.amounts[column] += usize::from(!date && amounts::parts(cell).is_some());
            self.text[column] += cell.chars().filter(|c| c.is_alphabetic()).count();
        }
    }

    pub fn columns(&self) -> Columns {
        let share = |hits: &[usize; MAX_COLUMNS], column: usize| hits[column] * 100 / self.rows.max(1);
        let date = (0..self.width).filter(|&c| share(&self.dates, c) >= 60).min_by_key(|&c| c);
        let amount_columns: Vec<usize> =
            (0..self.width).filter(|&c| Some(c) != date && share(&self.amounts, c) >= 60).collect();
        let description =
            (0..self.width).filter(|&c| Some(c) != date && !amount_columns.contains(&c)).max_by_key(|&c| self.text[c]);
        let (amount, balance) = match amount_columns.as_slice() {
            [only] => (Some(*only), None),
            [first, second] => (Some(*first), Some(*second)),
            _ => (amount_columns.first().copied(), None),
        };
        Columns { date, description, amount, balance, ..Columns::default() }
    }
}

/// Applies a caller's overrides; `Err` names one that matches no column.
pub(crate) fn apply(columns: &mut Columns, overrides: &ColumnOverrides, header: Option<&Record>) -> Result<(), String> {
    let resolve = |wanted: &ColumnRef| -> Result<usize, String> {
        match wanted {
            ColumnRef::Position(position) if *position >= 1 => Ok(position - 1),
            ColumnRef::Position(_) => Err("column positions start at 1".to_owned()),
            ColumnRef::Name(name) => header
                .and_then(|header| header.cells.iter().position(|cell| normalise(cell) == normalise(name)))
                .ok_or_else(|| format!("no column is named {name:?}")),
        }
    };
    let pairs: [(&Option<ColumnRef>, &mut Option<usize>); 7] = [
        (&overrides.date, &mut columns.date),
        (&overrides.description, &mut columns.description),
        (&overrides.amount, &mut columns.amount),
        (&overrides.debit, &mut columns.debit),
        (&overrides.credit, &mut columns.credit),
        (&overrides.balance, &mut columns.balance),
        (&overrides.reference, &mut columns.reference),
    ];
    for (wanted, slot) in pairs {
        if let Some(wanted) = wanted {
            *slot = Some(resolve(wanted)?);
        }
    }
    if (overrides.debit.is_some() || overrides.credit.is_some()) && overrides.amount.is_none() {
        columns.amount = None;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn record(cells: &[&str]) -> Record {
        Record { line: 1, cells: cells.iter().map(|c| (*c).to_owned()).collect() }
    }

    #[test]
    fn headers_in_several_languages() {
        let dkb = record(&[
            "Buchungsdatum",
            "Wertstellung",
            "Status",
            "Zahlungspflichtige*r",
            "Zahlungsempfänger*in",
            "Verwendungszweck",
            "Umsatztyp",
            "IBAN",
            "Betrag (€)",
        ]);
        let columns = from_header(&dkb);
        assert_eq!(columns.date, Some(0));
        assert_eq!(columns.amount, Some(8));
        assert_eq!(columns.description, Some(4));
        let ing =
            record(&["Datum", "Naam / Omschrijving", "Rekening", "Tegenrekening", "Code", "Af Bij", "Bedrag (EUR)"]);
        let columns = from_header(&ing);
        assert_eq!(
            (columns.date, columns.description, columns.direction, columns.amount),
            (Some(0), Some(1), Some(5), Some(6))
        );
        let us = record(&["Posting Date", "Description", "Debit", "Credit", "Balance", "Check or Slip #"]);
        let columns = from_header(&us);
        assert_eq!(
            (columns.debit, columns.credit, columns.balance, columns.reference),
            (Some(2), Some(3), Some(4), Some(5))
        );
    }

    #[test]
    fn header_after_a_preamble() {
        let records = [record(&["Account", "DE12"]), record(&[""]), record(&["Buchungstag", "Text", "Betrag"])];
        assert_eq!(find_header(&records), Some(2));
    }
}
