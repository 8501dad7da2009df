//! Which reader a file needs, decided from its bytes (never its name).

use serde::Serialize;

/// The file kinds the readers know. QFX and QBO are OFX with Intuit's additions; the OFX
/// reader tells them apart afterwards (`StatementFile::web_connect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Ofx,
    Csv,
    Unknown,
}

/// How far into a file the markers of OFX are looked for: headers are short, but some banks
/// pad the start with blank lines or a byte-order mark.
pub(crate) const SNIFF_BYTES: usize = 4096;

pub(crate) fn recognise(input: &[u8]) -> Format {
    let head = &input[..input.len().min(SNIFF_BYTES)];
    let upper: Vec<u8> = head.iter().map(u8::to_ascii_uppercase).collect();
    let has = |needle: &[u8]| upper.windows(needle.len()).any(|w| w == needle);
    if has(b"OFXHEADER") || has(b"<OFX") || has(b"<?OFX") {
        return Format::Ofx;
    }
    if looks_delimited(head) { Format::Csv } else { Format::Unknown }
}

/// Some line holds a delimiter and no NUL byte shows up (binary files).
fn looks_delimited(head: &[u8]) -> bool {
    if head.contains(&0) && !is_utf16(head) {
        return false;
    }
    head.iter().any(|b| matches!(b, b',' | b';' | b'\t' | b'|'))
}

fn is_utf16(head: &[u8]) -> bool {
    head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_decides() {
        assert_eq!(recognise(b"\xEF\xBB\xBF\r\n  OFXHEADER:100\r\n<OFX>"), Format::Ofx);
        assert_eq!(recognise(b"<?xml version=\"1.0\"?><?OFX OFXHEADER=\"200\"?><OFX/>"), Format::Ofx);
        assert_eq!(recognise(b"Date,Description,Amount\n2024-01-01,Coffee,-3.50\n"), Format::Csv);
        assert_eq!(recognise(b"\x89PNG\r\n\x1a\n\0\0\0"), Format::Unknown);
        assert_eq!(recognise(b"hello"), Format::Unknown);
    }
}
