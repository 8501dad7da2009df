//! Header detection and byte-to-text decoding.
//!
//! The header is ASCII in every dialect, so it is read from the raw bytes to
//! choose the encoding before the whole file is decoded.

use std::collections::BTreeMap;

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};

use super::error::OfxError;
use super::model::{OfxHeader, OfxVersion};
use super::repair::{ReadWarning, WarningCode};

/// A decoded file: its header and the full text, with the body (from the
/// first element on) starting at `body_start`.
pub(crate) struct Prelude {
    pub version: OfxVersion,
    pub header: OfxHeader,
    pub text: String,
    pub body_start: usize,
}

pub(crate) fn decode(input: &[u8]) -> Result<Prelude, OfxError> {
    let (text, encoding) = decode_text(input)?;
    let body_start = header_end(&text);
    let header = read_header(&text[..body_start])?;
    Ok(Prelude {
        version: header.version,
        header: OfxHeader { fields: header.fields, encoding: encoding.name().to_owned() },
        text,
        body_start,
    })
}

struct RawHeader {
    version: OfxVersion,
    fields: BTreeMap<String, String>,
    declared_encoding: Option<String>,
}

fn decode_text(input: &[u8]) -> Result<(String, &'static Encoding), OfxError> {
    if let Some((encoding, bom_len)) = Encoding::for_bom(input) {
        let (text, _) = encoding.decode_without_bom_handling(&input[bom_len..]);
        return Ok((text.into_owned(), encoding));
    }
    let sniffed = String::from_utf8_lossy(&input[..header_end_bytes(input)]);
    let encoding = choose_encoding(&read_header(&sniffed)?);
    Ok(decode_with(input, encoding))
}

/// Declared UTF-8 that is not valid UTF-8 is common in bank exports; those
/// bytes are almost always CP1252, so fall back rather than fail.
fn decode_with(input: &[u8], encoding: &'static Encoding) -> (String, &'static Encoding) {
    if encoding == UTF_8 {
        return match std::str::from_utf8(input) {
            Ok(text) => (text.to_owned(), UTF_8),
            Err(_) => decode_with(input, WINDOWS_1252),
        };
    }
    let (text, _) = encoding.decode_without_bom_handling(input);
    (text.into_owned(), encoding)
}

/// ISO-8859-1 labels resolve to windows-1252 (the WHATWG rule, followed by
/// encoding_rs): files labelled Latin-1 routinely carry CP1252 punctuation.
fn choose_encoding(header: &RawHeader) -> &'static Encoding {
    let label = header.declared_encoding.as_deref().unwrap_or("");
    let declared = match label.to_ascii_uppercase().as_str() {
        "1252" | "WINDOWS-1252" | "CP1252" => Some(WINDOWS_1252),
        "UTF-8" | "UTF8" => Some(UTF_8),
        "8859-1" => Encoding::for_label(b"iso-8859-1"),
        _ => Encoding::for_label(label.as_bytes()),
    };
    match declared {
        // A multi-byte non-UTF-8 label cannot be true: the header was ASCII.
        Some(encoding) if encoding == UTF_8 || encoding.is_single_byte() => encoding,
        _ => UTF_8,
    }
}

/// Whether a whole file's bytes are UTF-8, and ASCII: what [`plan`] needs besides the start.
/// Gathered a piece at a time, so the file need not be held.
#[derive(Debug)]
pub(crate) struct ByteFacts {
    utf8: bool,
    ascii: bool,
    /// The start of a character the previous piece cut.
    pending: Vec<u8>,
}

impl ByteFacts {
    pub fn new() -> Self {
        Self { utf8: true, ascii: true, pending: Vec::new() }
    }

    pub fn update(&mut self, piece: &[u8]) {
        if self.pending.is_empty() && piece.is_ascii() {
            return;
        }
        self.ascii = false;
        if !self.utf8 {
            return;
        }
        let mut bytes = std::mem::take(&mut self.pending);
        bytes.extend_from_slice(piece);
        match std::str::from_utf8(&bytes) {
            Ok(_) => {}
            Err(error) if error.error_len().is_none() => self.pending = bytes[error.valid_up_to()..].to_vec(),
            Err(_) => self.utf8 = false,
        }
    }

    /// (valid UTF-8, ASCII only)
    pub fn finish(self) -> (bool, bool) {
        (self.utf8 && self.pending.is_empty(), self.ascii)
    }
}

/// How a file read piece by piece is decoded: its header, the encoding and the BOM to skip.
pub(crate) struct Plan {
    pub version: OfxVersion,
    pub header: OfxHeader,
    pub encoding: &'static Encoding,
    pub bom_len: usize,
}

/// Decides the encoding from the file's start (`head`, which holds the header) and the facts
/// of all its bytes, as [`decode`] does for a whole file, and more leniently: files whose
/// header names a single-byte charset (USASCII, 1252) but whose bytes are UTF-8 are read as
/// UTF-8, since reading them as declared would garble every accented letter; declared UTF-8
/// that is not is read as CP1252. Both are warned.
pub(crate) fn plan(head: &[u8], utf8: bool, ascii: bool, warnings: &mut Vec<ReadWarning>) -> Result<Plan, OfxError> {
    if let Some((encoding, bom_len)) = Encoding::for_bom(head) {
        let (text, _) = encoding.decode_without_bom_handling(&head[bom_len..]);
        let header = read_header(&text[..header_end(&text)])?;
        let header_out = OfxHeader { fields: header.fields, encoding: encoding.name().to_owned() };
        return Ok(Plan { version: header.version, header: header_out, encoding, bom_len });
    }
    let sniffed = String::from_utf8_lossy(&head[..header_end_bytes(head)]);
    let mut encoding = choose_encoding(&read_header(&sniffed)?);
    if encoding == UTF_8 && !utf8 {
        encoding = WINDOWS_1252;
    }
    let (text, _) = encoding.decode_without_bom_handling(head);
    let region = &text[..header_end(&text)];
    let header = read_header(region)?;
    let declared = declared_label(region, &header.fields);
    if encoding != UTF_8 && !ascii && utf8 {
        let message = format!("header declares {declared} but the bytes are UTF-8; read as UTF-8");
        warnings.push(ReadWarning::at(1, WarningCode::CharsetMismatch, message));
        encoding = UTF_8;
    } else if (declared.eq_ignore_ascii_case("UTF-8") || declared.eq_ignore_ascii_case("UTF8")) && encoding != UTF_8 {
        let message = format!("header declares UTF-8 but the bytes are not; read as {}", encoding.name());
        warnings.push(ReadWarning::at(1, WarningCode::CharsetMismatch, message));
    }
    let header_out = OfxHeader { fields: header.fields, encoding: encoding.name().to_owned() };
    Ok(Plan { version: header.version, header: header_out, encoding, bom_len: 0 })
}

fn declared_label(head: &str, fields: &BTreeMap<String, String>) -> String {
    if head.trim_start().starts_with("<?") {
        let declaration = processing_instruction(head, "xml");
        return pi_attributes(declaration).remove("ENCODING").unwrap_or_else(|| "UTF-8".to_owned());
    }
    sgml_encoding_label(fields).unwrap_or_else(|| "no charset".to_owned())
}

fn header_end_bytes(input: &[u8]) -> usize {
    let mut at = 0;
    while let Some(found) = input[at..].iter().position(|&b| b == b'<') {
        let start = at + found;
        if input.get(start + 1) != Some(&b'?') {
            return start;
        }
        at = match find_bytes(&input[start..], b"?>") {
            Some(end) => start + end + 2,
            None => return input.len(),
        };
    }
    input.len()
}

pub(crate) fn header_end(text: &str) -> usize {
    header_end_bytes(text.as_bytes())
}

fn find_bytes(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn read_header(region: &str) -> Result<RawHeader, OfxError> {
    if region.trim_start().starts_with("<?") { Ok(read_xml_header(region)) } else { read_sgml_header(region) }
}

fn read_xml_header(region: &str) -> RawHeader {
    let declaration = processing_instruction(region, "xml");
    let declared_encoding = pi_attributes(declaration).remove("ENCODING");
    let fields = pi_attributes(processing_instruction(region, "OFX"));
    let version = fields.get("VERSION").and_then(|v| v.parse().ok()).map_or(OfxVersion::V2(200), OfxVersion::V2);
    RawHeader { version, fields, declared_encoding }
}

fn processing_instruction<'a>(region: &'a str, target: &str) -> &'a str {
    let opener = format!("<?{target}");
    let Some(start) = region.find(&opener) else {
        return "";
    };
    let rest = &region[start + opener.len()..];
    rest.find("?>").map_or(rest, |end| &rest[..end])
}

fn pi_attributes(body: &str) -> BTreeMap<String, String> {
    body.split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| {
            let value = value.trim_matches(|c| c == '"' || c == '\'');
            (key.to_ascii_uppercase(), value.to_owned())
        })
        .collect()
}

/// `KEY:VALUE` pairs, one a line in the spec, though some banks put several
/// on one line separated by spaces.
fn read_sgml_header(region: &str) -> Result<RawHeader, OfxError> {
    let mut fields = BTreeMap::new();
    for (index, line) in region.split('\n').enumerate() {
        let pairs = header_pairs(line).ok_or_else(|| OfxError::Header {
            line: index + 1,
            message: "expected KEY:VALUE lines before <OFX>".to_owned(),
        })?;
        for (key, value) in pairs {
            fields.insert(key.to_ascii_uppercase(), value.to_owned());
        }
    }
    let version = fields.get("VERSION").and_then(|v| v.parse().ok()).map_or(OfxVersion::V1(102), OfxVersion::V1);
    let declared_encoding = sgml_encoding_label(&fields);
    Ok(RawHeader { version, fields, declared_encoding })
}

/// `KEY:VALUE` (spaces around the value allowed) or several `KEY:VALUE`
/// tokens on one line; `None` when the line is neither.
fn header_pairs(line: &str) -> Option<Vec<(&str, &str)>> {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    if tokens.iter().all(|token| token.contains(':')) {
        return tokens.iter().map(|token| token.split_once(':')).collect();
    }
    let (key, value) = line.split_once(':')?;
    Some(vec![(key.trim(), value.trim())])
}

/// `ENCODING:UTF-8` wins; otherwise CHARSET names the code page, and an
/// unknown 8-bit charset (NONE, missing) is read as CP1252 unless the bytes
/// are valid UTF-8, which `decode_with` settles.
fn sgml_encoding_label(fields: &BTreeMap<String, String>) -> Option<String> {
    let encoding = fields.get("ENCODING").map(|e| e.to_ascii_uppercase());
    if encoding.as_deref() == Some("UTF-8") {
        return Some("UTF-8".to_owned());
    }
    match fields.get("CHARSET").map(|c| c.to_ascii_uppercase()) {
        Some(charset) if charset != "NONE" => Some(charset),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sgml_header_with_cp1252() {
        let input =
            b"OFXHEADER:100\r\nDATA:OFXSGML\r\nVERSION:103\r\nENCODING:USASCII\r\nCHARSET:1252\r\n\r\n<OFX>Caf\xe9";
        let prelude = decode(input).unwrap();
        assert_eq!(prelude.version, OfxVersion::V1(103));
        assert_eq!(prelude.header.encoding, "windows-1252");
        assert_eq!(&prelude.text[prelude.body_start..], "<OFX>Café");
    }

    #[test]
    fn one_line_header_and_no_blank_line() {
        let input = b"  OFXHEADER:100 DATA:OFXSGML VERSION:102\n<OFX></OFX>";
        let prelude = decode(input).unwrap();
        assert_eq!(prelude.version, OfxVersion::V1(102));
        assert_eq!(prelude.header.fields["DATA"], "OFXSGML");
    }

    #[test]
    fn spaces_after_colons_are_tolerated() {
        let input = b"OFXHEADER: 100\r\nVERSION : 103\r\nCHARSET: 1252\r\n\r\n<OFX>";
        let prelude = decode(input).unwrap();
        assert_eq!(prelude.version, OfxVersion::V1(103));
        assert_eq!(prelude.header.encoding, "windows-1252");
    }

    #[test]
    fn xml_header_reads_version_and_encoding() {
        let input = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<?OFX OFXHEADER=\"200\" VERSION=\"211\"?>\n<OFX>\xe9</OFX>";
        let prelude = decode(input).unwrap();
        assert_eq!(prelude.version, OfxVersion::V2(211));
        assert_eq!(prelude.header.encoding, "windows-1252");
        assert!(prelude.text.ends_with("<OFX>é</OFX>"));
    }

    #[test]
    fn declared_utf8_that_is_not_falls_back_to_cp1252() {
        let input = b"OFXHEADER:100\nENCODING:UTF-8\n\n<OFX>\xe9";
        let prelude = decode(input).unwrap();
        assert_eq!(prelude.header.encoding, "windows-1252");
    }

    #[test]
    fn junk_before_ofx_is_a_header_error() {
        let error = decode(b"hello world\n<OFX>").err().unwrap();
        assert!(matches!(error, OfxError::Header { line: 1, .. }));
    }
}
