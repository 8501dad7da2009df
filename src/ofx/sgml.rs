//! Normalises an OFX body, SGML or XML, into well-formed XML.
//!
//! OFX 1.x leaves elements with a value unclosed (`<NAME>AT&T` then the next
//! tag) and lets `&` stand bare. An element is taken as a leaf when its name
//! is never closed anywhere in the file, or once it has text; a leaf is closed
//! when the next tag arrives. Output keeps every newline of the input, so
//! line numbers found in the XML are line numbers of the original file.

use std::borrow::Cow;

use super::error::OfxError;

/// `&#x10FFFF;` is the longest entity XML can hold.
const MAX_ENTITY_LEN: usize = 10;

const PREDEFINED: [&str; 5] = ["amp", "lt", "gt", "quot", "apos"];

/// Aggregates this module reads. They are never taken for leaves, so a file
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

pub(crate) fn to_xml(text: &str, body_start: usize, max_depth: usize) -> Result<String, OfxError> {
    let mut state = State {
        stack: Vec::new(),
        closed_names: ClosedNames::of(&text[body_start..]),
        max_depth,
        lines_before: 0,
        last: true,
    };
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    out.extend(std::iter::repeat_n('\n', newlines_in(&text[..body_start])));
    Normaliser { src: text, pos: body_start, out: &mut out, state: &mut state, keep: |name| name, incomplete: false }
        .run()?;
    Ok(out)
}

/// The normaliser of a body read piece by piece (a statement file of tens of megabytes): the
/// same rules as [`to_xml`], with the aggregates' names gathered from the whole file first
/// (`Streaming::new`) since whether an element is a leaf depends on the whole file.
pub(crate) struct Streaming {
    state: State<'static>,
}

impl Streaming {
    /// `closed` names every element closed anywhere in the body; `lines_before` counts the
    /// lines of the header, so errors name lines of the file.
    pub fn new(closed: impl IntoIterator<Item = String>, max_depth: usize, lines_before: usize) -> Self {
        let state = State {
            stack: Vec::new(),
            closed_names: ClosedNames::from_names(closed.into_iter().map(Cow::Owned)),
            max_depth,
            lines_before,
            last: false,
        };
        Self { state }
    }

    /// Normalises what `text` holds of complete markup into `out` and returns how many bytes
    /// of `text` it used; the rest (an unfinished tag, text not yet followed by a tag) must be
    /// given again, with more after it. With `last`, everything is used and open elements close.
    pub fn feed(&mut self, text: &str, last: bool, out: &mut String) -> Result<usize, OfxError> {
        self.state.last = last;
        let mut normaliser = Normaliser {
            src: text,
            pos: 0,
            out,
            state: &mut self.state,
            keep: |name| Cow::Owned(name.into_owned()),
            incomplete: false,
        };
        normaliser.run()?;
        let used = normaliser.pos;
        self.state.lines_before += newlines_in(&text[..used]);
        Ok(used)
    }
}

struct Open<'a> {
    name: Cow<'a, str>,
    leaf: bool,
    has_text: bool,
    has_children: bool,
}

impl Open<'_> {
    fn closes_implicitly(&self) -> bool {
        self.leaf || self.has_text
    }
}

/// What lasts from one piece of the body to the next.
struct State<'n> {
    stack: Vec<Open<'n>>,
    closed_names: ClosedNames<'n>,
    max_depth: usize,
    /// Lines before `src` starts.
    lines_before: usize,
    /// `src` ends where the body does.
    last: bool,
}

/// Markup needs at most this much text after its `<` to tell what it is (`<![CDATA[`).
const LONGEST_OPENER: usize = 9;

struct Normaliser<'a, 'n, 's> {
    src: &'a str,
    pos: usize,
    out: &'s mut String,
    state: &'s mut State<'n>,
    /// How a name read from `src` is kept on the stack (borrowed while `src` is the whole body).
    keep: fn(Cow<'a, str>) -> Cow<'n, str>,
    /// The markup at `pos` ends past `src`: wait for more.
    incomplete: bool,
}

impl<'a> Normaliser<'a, '_, '_> {
    fn run(&mut self) -> Result<(), OfxError> {
        while let Some(found) = self.src[self.pos..].find('<') {
            if !self.state.last && self.src.len() - (self.pos + found) < LONGEST_OPENER {
                return Ok(());
            }
            let before = self.pos;
            self.pos += found;
            self.text(&self.src[before..self.pos]);
            self.markup()?;
            if self.incomplete {
                return Ok(());
            }
        }
        if !self.state.last {
            return Ok(());
        }
        self.text(&self.src[self.pos..]);
        self.pos = self.src.len();
        while let Some(open) = self.state.stack.pop() {
            self.emit_close(&open.name);
        }
        Ok(())
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    /// Leaves `pos` where it is and flags the markup as unfinished, unless the body ends here.
    fn wait_or(&mut self, problem: &str) -> Result<(), OfxError> {
        if self.state.last {
            return Err(self.syntax(problem));
        }
        self.incomplete = true;
        Ok(())
    }

    fn markup(&mut self) -> Result<(), OfxError> {
        let rest = self.rest();
        if rest.starts_with("<!--") {
            self.skip_past("-->", "unterminated comment")
        } else if rest.starts_with("<![CDATA[") {
            self.cdata()
        } else if rest.starts_with("<!") || rest.starts_with("<?") {
            self.skip_past(">", "unterminated declaration")
        } else if rest.starts_with("</") {
            self.end_tag()
        } else if rest[1..].starts_with(|c: char| c.is_ascii_alphabetic()) {
            self.start_tag()
        } else {
            // SGML lets `<` stand for itself when no tag can start there.
            self.text("<");
            self.pos += 1;
            Ok(())
        }
    }

    fn skip_past(&mut self, terminator: &str, problem: &str) -> Result<(), OfxError> {
        let Some(found) = self.rest().find(terminator) else {
            return self.wait_or(problem);
        };
        let end = self.pos + found + terminator.len();
        self.keep_newlines(&self.src[self.pos..end]);
        self.pos = end;
        Ok(())
    }

    fn cdata(&mut self) -> Result<(), OfxError> {
        let body_start = self.pos + "<![CDATA[".len();
        let Some(found) = self.src[body_start..].find("]]>") else {
            return self.wait_or("unterminated CDATA section");
        };
        let body = &self.src[body_start..body_start + found];
        self.pos = body_start + found + 3;
        self.text_with(body, false);
        Ok(())
    }

    /// Returns the tag's inside (between `<` and `>`) and moves past it; `None` when the tag
    /// ends past `src`. One pass to the first `>` or `<`: tags are short, the text after them
    /// may not be.
    fn take_tag(&mut self) -> Result<Option<&'a str>, OfxError> {
        let rest = self.rest();
        let found = rest.as_bytes()[1..].iter().position(|&b| b == b'>' || b == b'<').map(|at| at + 1);
        match found {
            Some(close) if rest.as_bytes()[close] == b'>' => {
                let start = self.pos + 1;
                self.pos += close + 1;
                Ok(Some(&self.src[start..start + close - 1]))
            }
            Some(open) if rest[open..].contains('>') => Err(self.syntax("'<' inside a tag")),
            _ => self.wait_or("unterminated tag").map(|()| None),
        }
    }

    fn start_tag(&mut self) -> Result<(), OfxError> {
        let start = self.pos;
        let Some(inside) = self.take_tag()? else { return Ok(()) };
        let (name, after) = split_name(inside);
        if !after.is_empty() && !after.starts_with(|c: char| c.is_whitespace() || c == '/') {
            let line = self.line_at(start);
            return Err(OfxError::Syntax { line, message: format!("bad character in tag <{}>", name) });
        }
        let self_closing = after.trim_end().ends_with('/');
        self.open(upper(name), self_closing, start)?;
        self.out.extend(std::iter::repeat_n('\n', newlines_in(inside)));
        Ok(())
    }

    fn end_tag(&mut self) -> Result<(), OfxError> {
        let start = self.pos;
        let Some(inside) = self.take_tag()? else { return Ok(()) };
        let (name, after) = split_name(&inside[1..]);
        if !after.trim().is_empty() {
            let line = self.line_at(start);
            return Err(OfxError::Syntax { line, message: format!("bad character in end tag </{}>", name) });
        }
        self.close(&upper(name));
        self.out.extend(std::iter::repeat_n('\n', newlines_in(inside)));
        Ok(())
    }

    /// `start` is where the tag began, for the line of an error.
    fn open(&mut self, name: Cow<'a, str>, self_closing: bool, start: usize) -> Result<(), OfxError> {
        self.close_pending_leaves();
        if let Some(parent) = self.state.stack.last_mut() {
            parent.has_children = true;
        }
        if self_closing {
            self.out.push('<');
            self.out.push_str(&name);
            self.out.push_str("/>");
            return Ok(());
        }
        if self.state.stack.len() >= self.state.max_depth {
            return Err(OfxError::TooDeep { line: self.line_at(start), limit: self.state.max_depth });
        }
        self.out.push('<');
        self.out.push_str(&name);
        self.out.push('>');
        let leaf = !self.state.closed_names.contains(&name);
        self.state.stack.push(Open { name: (self.keep)(name), leaf, has_text: false, has_children: false });
        Ok(())
    }

    /// A stray end tag (nothing open by that name) is dropped, as SGML
    /// readers do.
    fn close(&mut self, name: &str) {
        let Some(index) = self.state.stack.iter().rposition(|open| open.name == name) else {
            self.close_pending_leaves();
            return;
        };
        for open in self.state.stack.split_off(index).into_iter().rev() {
            self.emit_close(&open.name);
        }
    }

    fn close_pending_leaves(&mut self) {
        while self.state.stack.last().is_some_and(Open::closes_implicitly) {
            if let Some(open) = self.state.stack.pop() {
                self.emit_close(&open.name);
            }
        }
    }

    fn emit_close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    fn text(&mut self, raw: &str) {
        self.text_with(raw, true);
    }

    fn text_with(&mut self, raw: &str, keep_entities: bool) {
        if raw.trim().is_empty() {
            self.out.push_str(raw);
            return;
        }
        let Some(top) = self.state.stack.last_mut() else {
            self.keep_newlines(raw);
            return;
        };
        // Text after child elements is stray mixed content, not a leaf value.
        if !top.has_children {
            top.has_text = true;
        }
        escape_into(self.out, raw, keep_entities);
    }

    fn keep_newlines(&mut self, skipped: &str) {
        self.out.extend(std::iter::repeat_n('\n', newlines_in(skipped)));
    }

    /// Counted only when an error needs it: counting at every tag made parsing quadratic
    /// (a 60 KB statement spent 90% of its parse time here).
    fn line_at(&self, at: usize) -> usize {
        1 + self.state.lines_before + self.src.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count()
    }

    fn syntax(&self, message: &str) -> OfxError {
        OfxError::Syntax { line: self.line_at(self.pos), message: message.to_owned() }
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':')
}

fn split_name(inside: &str) -> (&str, &str) {
    let end = inside.find(|c: char| !is_name_char(c)).unwrap_or(inside.len());
    inside.split_at(end)
}

/// Names that are aggregates: closed somewhere in the file, or known. A sorted list rather
/// than a hash set: a few dozen distinct names, hundreds of end tags, and hashing each showed.
struct ClosedNames<'a>(Vec<Cow<'a, str>>);

impl<'a> ClosedNames<'a> {
    fn of(body: &'a str) -> Self {
        Self::from_names(end_tag_names(body))
    }

    fn from_names(closed: impl Iterator<Item = Cow<'a, str>>) -> Self {
        let known = KNOWN_AGGREGATES.iter().chain(&KNOWN_INNER_AGGREGATES);
        let mut names: Vec<Cow<'a, str>> = closed.chain(known.map(|name| Cow::Borrowed(*name))).collect();
        names.sort_unstable();
        names.dedup();
        Self(names)
    }

    fn contains(&self, name: &str) -> bool {
        self.0.binary_search_by(|known| known.as_ref().cmp(name)).is_ok()
    }
}

/// The names of the end tags in `text`, upper-cased, as the normaliser reads them.
pub(crate) fn end_tag_names(text: &str) -> impl Iterator<Item = Cow<'_, str>> {
    text.match_indices("</").map(|(at, _)| upper(split_name(&text[at + 2..]).0)).filter(|name| !name.is_empty())
}

/// Names are compared upper-cased; most already are, and then nothing is copied.
fn upper(name: &str) -> Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_lowercase()) {
        Cow::Owned(name.to_ascii_uppercase())
    } else {
        Cow::Borrowed(name)
    }
}

fn newlines_in(text: &str) -> usize {
    text.bytes().filter(|&b| b == b'\n').count()
}

/// Escapes `&` unless it starts an entity XML knows, and `<`/`>` always.
fn escape_into(out: &mut String, raw: &str, keep_entities: bool) {
    if !raw.bytes().any(|b| matches!(b, b'&' | b'<' | b'>')) {
        out.push_str(raw);
        return;
    }
    for (at, c) in raw.char_indices() {
        match c {
            '&' if keep_entities && starts_entity(&raw[at..]) => out.push('&'),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
}

/// Only a short window is searched for the `;`, so a long run of bare `&`
/// stays linear.
fn starts_entity(text: &str) -> bool {
    let window = &text.as_bytes()[..text.len().min(MAX_ENTITY_LEN)];
    let Some(end) = window.iter().position(|&b| b == b';') else {
        return false;
    };
    let name = &text[1..end];
    if let Some(number) = name.strip_prefix('#') {
        return numeric_entity_char(number).is_some_and(is_xml_char);
    }
    PREDEFINED.contains(&name)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn xml(body: &str) -> String {
        to_xml(body, 0, 64).unwrap()
    }

    #[test]
    fn unclosed_leaves_are_closed() {
        assert_eq!(xml("<OFX><A><B>1<C>2</A></OFX>"), "<OFX><A><B>1</B><C>2</C></A></OFX>");
    }

    #[test]
    fn bare_ampersand_is_escaped_and_entities_kept() {
        assert_eq!(
            xml("<OFX><N>AT&T<M>AT&amp;T &#233; &#xE9; &bogus; &#0; & x</OFX>"),
            "<OFX><N>AT&amp;T</N><M>AT&amp;T &#233; &#xE9; &amp;bogus; &amp;#0; &amp; x</M></OFX>"
        );
    }

    #[test]
    fn empty_leaf_closes_before_next_tag() {
        assert_eq!(
            xml("<OFX><T><MEMO>\r\n<AMT>5\r\n</T></OFX>"),
            "<OFX><T><MEMO>\r\n</MEMO><AMT>5\r\n</AMT></T></OFX>"
        );
    }

    #[test]
    fn closed_xml_passes_through() {
        let input = "<OFX>\n<A><B>x</B><C></C><D/></A>\n</OFX>";
        assert_eq!(xml(input), input);
    }

    #[test]
    fn comments_and_stray_end_tags_are_dropped() {
        assert_eq!(xml("<OFX><!-- a\nb --><A>1</Z></OFX>junk"), "<OFX>\n<A>1</A></OFX>");
    }

    #[test]
    fn lowercase_names_and_literal_angle() {
        assert_eq!(xml("<ofx><n>a < b > c</ofx>"), "<OFX><N>a &lt; b &gt; c</N></OFX>");
    }

    #[test]
    fn many_bare_ampersands_stay_linear() {
        let body = format!("<OFX><N>{}", "&".repeat(200_000));
        assert!(xml(&body).ends_with("&amp;</N></OFX>"));
    }

    #[test]
    fn depth_is_limited() {
        let deep = "<A>".repeat(100);
        let closes = "</A>".repeat(100);
        let error = to_xml(&format!("{deep}{closes}"), 0, 64).err().unwrap();
        assert_eq!(error, OfxError::TooDeep { line: 1, limit: 64 });
    }

    #[test]
    fn broken_tags_report_their_line() {
        let error = to_xml("<OFX>\n<A\n<B>", 0, 64).err().unwrap();
        assert!(matches!(error, OfxError::Syntax { line: 2, .. }), "{error:?}");
        let error = to_xml("<OFX>\n\n<A", 0, 64).err().unwrap();
        assert!(matches!(error, OfxError::Syntax { line: 3, .. }), "{error:?}");
    }
}
