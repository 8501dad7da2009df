//! The first two passes of a streamed read: the bytes (the header, and whether the file is
//! UTF-8 or ASCII, which the decoding plan needs) and the decoded text (where the body starts
//! and ends, the names of the elements closed anywhere in it, which the normaliser's leaf rule
//! needs before the first tag of the body is read, and the warnings only the whole file shows).

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};

use super::{Records, io, read_some};
use crate::ofx::ParseOptions;
use crate::ofx::decode::{self, ByteFacts};
use crate::ofx::error::OfxError;
use crate::ofx::repair::{ReadWarning, WarningCode};
use crate::ofx::sgml;

/// The start of the file in which the header must end.
const HEAD: usize = 64 * 1024;

/// What the whole decoded text says before the body is read.
#[derive(Debug, Default)]
pub(super) struct Survey {
    pub(super) start: usize,
    /// Where `</OFX>` last ends; text after it is not part of the file.
    pub(super) end: Option<usize>,
    pub(super) lines_before: usize,
}

/// First pass: the file's start (its header) and whether all of it is UTF-8, ASCII.
pub(super) fn byte_facts(
    source: &mut impl Read,
    options: &ParseOptions,
    piece: usize,
) -> Result<(Vec<u8>, bool, bool), OfxError> {
    let mut facts = ByteFacts::new();
    let mut head = Vec::new();
    let mut buffer = vec![0; piece];
    let mut size = 0;
    loop {
        let read = read_some(source, &mut buffer)?;
        if read == 0 {
            break;
        }
        size += read;
        if size > options.max_bytes {
            return Err(OfxError::TooLarge { size, limit: options.max_bytes });
        }
        facts.update(&buffer[..read]);
        let wanted = HEAD.saturating_sub(head.len()).min(read);
        head.extend_from_slice(&buffer[..wanted]);
    }
    let (utf8, ascii) = facts.finish();
    Ok((head, utf8, ascii))
}

/// Second pass, over the decoded text: where the body starts and ends, the names of the
/// elements closed in it, and the warnings about its tags and what follows `</OFX>`.
pub(super) fn survey(
    source: &mut (impl Read + Seek),
    plan: &decode::Plan,
    records: &mut Records,
    piece: usize,
) -> Result<(Survey, Vec<String>), OfxError> {
    source.seek(SeekFrom::Start(plan.bom_len as u64)).map_err(io)?;
    let mut scan = Scan::default();
    let mut decoder = plan.encoding.new_decoder_without_bom_handling();
    let mut raw = vec![0; piece];
    let mut text = String::new();
    let mut text_at = 0;
    let mut start = None;
    let mut header_lines = 0;
    loop {
        let read = read_some(source, &mut raw)?;
        let last = read == 0;
        text.reserve(decoder.max_utf8_buffer_length(read).unwrap_or(read * 3));
        let _ = decoder.decode_to_string(&raw[..read], &mut text, last);
        if start.is_none() {
            let end = decode::header_end(&text);
            if end == text.len() && !last {
                continue;
            }
            header_lines = text[..end].bytes().filter(|&b| b == b'\n').count();
            scan.lines = header_lines;
            start = Some(end);
            text.drain(..end);
            text_at = end;
        }
        // Tags start at `<`: everything before the last one is scanned now, the rest with more.
        let cut = if last { text.len() } else { text.rfind('<').filter(|&at| at > 0).unwrap_or(0) };
        let cut = if cut == 0 && !last && !text.contains('<') { text.len() } else { cut };
        scan.piece(&text[..cut], text_at);
        text.drain(..cut);
        text_at += cut;
        if last {
            break;
        }
    }
    let start = start.unwrap_or(0);
    let lines_before = header_lines;
    let end = scan.close.map(|close| close.end);
    let within = |at: usize| end.is_none_or(|end| at < end);
    if let Some((at, line, name)) = scan.lowercase.take()
        && within(at)
    {
        let message = format!("element names are written in lower case (<{name}>)");
        records.warn(ReadWarning::at(line, WarningCode::LowercaseTags, message));
    }
    if let Some(close) = scan.close
        && let Some((first, line)) = close.first_after
    {
        let message = format!("{} bytes after </OFX> ignored", close.last_after - first);
        records.warn(ReadWarning::at(line, WarningCode::TrailingBytes, message));
    }
    let closed = scan.closed.into_iter().filter(|(_, at)| within(*at)).map(|(name, _)| name).collect();
    Ok((Survey { start, end, lines_before }, closed))
}

#[derive(Debug, Default)]
struct Scan {
    /// Lines before the piece being scanned (the header's first).
    lines: usize,
    /// Each closed name and where it is first closed.
    closed: BTreeMap<String, usize>,
    /// The first tag written in lower case: where, its line, its name.
    lowercase: Option<(usize, usize, String)>,
    close: Option<Close>,
}

/// The last `</OFX>` so far and what follows it.
#[derive(Debug, Clone, Copy)]
struct Close {
    end: usize,
    /// The first character after it that is not white space, and its line.
    first_after: Option<(usize, usize)>,
    /// Where the last such character ends.
    last_after: usize,
}

impl Scan {
    /// `piece` starts at offset `at` of the decoded file, at a `<` (or the body's start).
    fn piece(&mut self, piece: &str, at: usize) {
        let bytes = piece.as_bytes();
        // Asked at most twice a file: counting from the piece's start each time is cheap.
        let lines = self.lines;
        let line_at = |offset: usize| 1 + lines + bytes[..offset].iter().filter(|&&b| b == b'\n').count();
        let mut after_close = self.close.map(|_| 0);
        for (offset, _) in piece.match_indices('<') {
            let rest = &piece[offset + 1..];
            if let Some(inner) = rest.strip_prefix('/') {
                let name = sgml::end_tag_names(&piece[offset..]).next();
                if let Some(name) = name.filter(|_| !inner.is_empty()) {
                    self.closed.entry(name.into_owned()).or_insert(at + offset);
                }
                if bytes.len() >= offset + 6 && bytes[offset..offset + 6].eq_ignore_ascii_case(b"</OFX>") {
                    self.close = Some(Close { end: at + offset + 6, first_after: None, last_after: 0 });
                    after_close = Some(offset + 6);
                }
            }
            if self.lowercase.is_none() {
                let end = rest.find(|c: char| !c.is_ascii_alphanumeric() && c != '.').unwrap_or(rest.len());
                if rest[..end].bytes().any(|b| b.is_ascii_lowercase()) {
                    self.lowercase = Some((at + offset + 1, line_at(offset + 1), rest[..end].to_owned()));
                }
            }
        }
        if let (Some(from), Some(close)) = (after_close, self.close.as_mut()) {
            for (offset, c) in piece[from..].char_indices().filter(|(_, c)| !c.is_whitespace()) {
                let offset = from + offset;
                if close.first_after.is_none() {
                    close.first_after = Some((at + offset, line_at(offset)));
                }
                close.last_after = at + offset + c.len_utf8();
            }
        }
        self.lines += bytes.iter().filter(|&&b| b == b'\n').count();
    }
}
