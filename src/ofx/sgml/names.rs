//! Element names as the normaliser reads them: which names are aggregates (closed somewhere
//! in the file, or known), and how a name is cut from a tag and compared.

use std::borrow::Cow;

/// Aggregates the reader knows. They are never taken for leaves, so a file
/// truncated before their end tags still nests correctly.
const KNOWN_AGGREGATES: [&str; 33] = [
    "OFX",
    "SIGNONMSGSRSV1",
    "SIGNONMSGSRQV1",
    "SONRS",
    "SONRQ",
    "STATUS",
    "FI",
    "SIGNUPMSGSRSV1",
    "SIGNUPMSGSRQV1",
    "ACCTINFOTRNRS",
    "ACCTINFOTRNRQ",
    "ACCTINFORS",
    "ACCTINFORQ",
    "ACCTINFO",
    "BANKACCTINFO",
    "CCACCTINFO",
    "BANKMSGSRSV1",
    "BANKMSGSRQV1",
    "STMTTRNRS",
    "STMTTRNRQ",
    "STMTRS",
    "STMTRQ",
    "CREDITCARDMSGSRSV1",
    "CREDITCARDMSGSRQV1",
    "CCSTMTTRNRS",
    "CCSTMTTRNRQ",
    "CCSTMTRS",
    "CCSTMTRQ",
    "BANKACCTFROM",
    "CCACCTFROM",
    "BANKTRANLIST",
    "STMTTRN",
    "INCTRAN",
];

/// Small aggregates inside transactions and statements.
const KNOWN_INNER_AGGREGATES: [&str; 5] = ["PAYEE", "CURRENCY", "ORIGCURRENCY", "LEDGERBAL", "AVAILBAL"];

fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-' | b':')
}

/// The name at the start of `inside`, and the rest. Name characters are all ASCII, so the name
/// ends at the first byte that is not one (a character of several bytes starts with one that is
/// not ASCII): no characters need decoding.
pub(super) fn split_name(inside: &str) -> (&str, &str) {
    let end = inside.bytes().position(|byte| !is_name_byte(byte)).unwrap_or(inside.len());
    inside.split_at(end)
}

/// Names that are aggregates: closed somewhere in the file, or known. A few dozen distinct
/// names, looked up at every start tag: an open-addressed table keyed by each name's first
/// eight bytes as a number, so a lookup is a multiplication, a compare or two of numbers, and
/// a compare of bytes only for a name longer than eight (a sorted list's binary search, and
/// hashing each name with the standard hasher, both showed in profiles).
pub(super) struct ClosedNames<'a> {
    names: Vec<Cow<'a, str>>,
    /// `(prefix, index in names + 1)`; 0 marks an empty slot. Its length is a power of two,
    /// at least twice the names'.
    slots: Vec<(u64, usize)>,
}

impl<'a> ClosedNames<'a> {
    pub fn of(body: &'a str) -> Self {
        Self::from_names(end_tag_names(body))
    }

    pub fn from_names(closed: impl Iterator<Item = Cow<'a, str>>) -> Self {
        let known = KNOWN_AGGREGATES.iter().chain(&KNOWN_INNER_AGGREGATES);
        let mut names: Vec<Cow<'a, str>> = closed.chain(known.map(|name| Cow::Borrowed(*name))).collect();
        names.sort_unstable();
        names.dedup();
        let mut slots = vec![(0, 0); (names.len() * 2).next_power_of_two().max(16)];
        for (index, name) in names.iter().enumerate() {
            let key = prefix(name);
            let mut slot = Self::home(key, slots.len());
            while slots[slot].1 != 0 {
                slot = (slot + 1) & (slots.len() - 1);
            }
            slots[slot] = (key, index + 1);
        }
        Self { names, slots }
    }

    /// Fibonacci hashing: the top bits of the key times 2^64 / φ.
    fn home(key: u64, slots: usize) -> usize {
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - slots.trailing_zeros())) as usize
    }

    /// Whether `names[index]`, whose prefix is `name`'s, is `name`.
    fn is_name(&self, index: usize, name: &str) -> bool {
        let known = &self.names[index];
        known.len() == name.len() && (name.len() <= 8 || known == name)
    }

    pub fn contains(&self, name: &str) -> bool {
        let key = prefix(name);
        let mut slot = Self::home(key, self.slots.len());
        loop {
            match self.slots[slot] {
                (_, 0) => return false,
                (known, index) if known == key && self.is_name(index - 1, name) => return true,
                _ => slot = (slot + 1) & (self.slots.len() - 1),
            }
        }
    }
}

/// A name's first eight bytes as a number (names hold no NUL, so two names of the same length,
/// up to eight bytes, are the same name exactly when their numbers are equal).
fn prefix(name: &str) -> u64 {
    let mut bytes = [0; 8];
    let head = &name.as_bytes()[..name.len().min(8)];
    bytes[..head.len()].copy_from_slice(head);
    u64::from_le_bytes(bytes)
}

/// The names of the end tags in `text`, upper-cased, as the normaliser reads them. The pair `</`
/// is searched for, not each `<`: most tags of an SGML file are start tags, skipped unread.
pub(crate) fn end_tag_names(text: &str) -> impl Iterator<Item = Cow<'_, str>> {
    memchr::memmem::find_iter(text.as_bytes(), b"</")
        .map(|at| upper(split_name(&text[at + 2..]).0))
        .filter(|name| !name.is_empty())
}

/// Names are compared upper-cased; most already are, and then nothing is copied.
pub(super) fn upper(name: &str) -> Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_lowercase()) {
        Cow::Owned(name.to_ascii_uppercase())
    } else {
        Cow::Borrowed(name)
    }
}
