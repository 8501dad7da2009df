//! Text as XML's entities write it: `&amp;`, `&#233;` and the like read as their characters,
//! any other `&` as itself (SGML files leave it bare: `AT&T`).

use std::borrow::Cow;

/// `&#x10FFFF;` is the longest entity XML can hold.
const MAX_ENTITY_LEN: usize = 10;

/// The text with each entity XML knows replaced by its character; any other `&` stands
/// for itself.
pub(super) fn decode_entities(raw: &str) -> Cow<'_, str> {
    if !raw.contains('&') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        match entity_at(rest) {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The character of the entity XML knows at the start of `text` (`&amp;`, `&#233;`) and the
/// entity's length. Only a short window is searched for the `;`, so a long run of bare `&`
/// stays linear.
fn entity_at(text: &str) -> Option<(char, usize)> {
    let window = &text.as_bytes()[..text.len().min(MAX_ENTITY_LEN)];
    let end = window.iter().position(|&b| b == b';')?;
    let name = &text[1..end];
    let c = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        _ => numeric_entity_char(name.strip_prefix('#')?).filter(|&c| is_xml_char(c))?,
    };
    Some((c, end + 1))
}

fn numeric_entity_char(number: &str) -> Option<char> {
    let value = match number.strip_prefix(['x', 'X']) {
        Some(hex) if !hex.is_empty() && hex.len() <= 6 => u32::from_str_radix(hex, 16).ok()?,
        Some(_) => return None,
        None if !number.is_empty() && number.len() <= 7 => number.parse().ok()?,
        None => return None,
    };
    char::from_u32(value)
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}
