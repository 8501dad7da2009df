//! Reads an OFX body, SGML or XML, into an element tree.
//!
//! OFX 1.x leaves elements with a value unclosed (`<NAME>AT&T` then the next
//! tag) and lets `&` stand bare. An element is taken as a leaf when its name
//! is never closed anywhere in the file, or once it has text; a leaf is closed
//! when the next tag arrives. Each element knows the line of its start tag in
//! the original file.

use std::borrow::Cow;

use super::error::OfxError;
use super::tree::{Builder, Element, OnClose, is_blank};

mod entities;
mod names;

use entities::decode_entities;
pub(crate) use names::end_tag_names;
use names::{ClosedNames, split_name, upper};

/// Reads the body of `text` (from `body_start`) into its top-level elements.
pub(crate) fn read(text: &str, body_start: usize, max_depth: usize) -> Result<Vec<Element<'_>>, OfxError> {
    let mut state = State {
        open: Vec::new(),
        tree: Builder::new(),
        closed_names: ClosedNames::of(&text[body_start..]),
        max_depth,
        lines_before: 0,
        last: true,
    };
    let mut normaliser = Normaliser {
        src: text,
        pos: body_start,
        state: &mut state,
        keep: |name| name,
        on_close: None,
        incomplete: false,
        lines: Lines::default(),
    };
    normaliser.run()?;
    let line = normaliser.line_of(text.len());
    state.tree.finish(line)
}

/// The normaliser of a body read piece by piece (a statement file of tens of megabytes): the
/// same rules as [`read`], with the aggregates' names gathered from the whole file first
/// (`Streaming::new`) since whether an element is a leaf depends on the whole file. What it
/// reads is owned, since each piece of text is dropped once read.
pub(crate) struct Streaming {
    state: State<'static>,
}

impl Streaming {
    /// `closed` names every element closed anywhere in the body; `lines_before` counts the
    /// lines of the header, so errors name lines of the file.
    pub fn new(closed: impl IntoIterator<Item = String>, max_depth: usize, lines_before: usize) -> Self {
        let state = State {
            open: Vec::new(),
            tree: Builder::new(),
            closed_names: ClosedNames::from_names(closed.into_iter().map(Cow::Owned)),
            max_depth,
            lines_before,
            last: false,
        };
        Self { state }
    }

    /// Reads what `text` holds of complete markup into the tree, handing each element that
    /// closes to `on_close`, and returns how many bytes of `text` it used; the rest (an
    /// unfinished tag, text not yet followed by a tag) must be given again, with more after
    /// it. With `last`, everything is used and open elements close.
    pub fn feed(&mut self, text: &str, last: bool, on_close: &mut OnClose<'_, 'static>) -> Result<usize, OfxError> {
        self.state.last = last;
        let mut normaliser = Normaliser {
            src: text,
            pos: 0,
            state: &mut self.state,
            keep: |name| Cow::Owned(name.into_owned()),
            on_close: Some(on_close),
            incomplete: false,
            lines: Lines::default(),
        };
        normaliser.run()?;
        let used = normaliser.pos;
        self.state.lines_before += newlines_in(&text[..used]);
        Ok(used)
    }

    /// Elements held (open ones and everything attached to them).
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.state.tree.held()
    }

    /// The top-level elements, once the whole body was fed.
    pub fn finish(self) -> Result<Vec<Element<'static>>, OfxError> {
        let line = 1 + self.state.lines_before;
        self.state.tree.finish(line)
    }
}

/// What the normaliser knows of an open element (its name is the tree's).
struct Open {
    leaf: bool,
    has_text: bool,
    has_children: bool,
}

impl Open {
    fn closes_implicitly(&self) -> bool {
        self.leaf || self.has_text
    }
}

/// What lasts from one piece of the body to the next.
struct State<'n> {
    /// One for each of the tree's open elements.
    open: Vec<Open>,
    tree: Builder<'n>,
    closed_names: ClosedNames<'n>,
    max_depth: usize,
    /// Lines before `src` starts.
    lines_before: usize,
    /// `src` ends where the body does.
    last: bool,
}

/// Markup needs at most this much text after its `<` to tell what it is (`<![CDATA[`).
const LONGEST_OPENER: usize = 9;

/// Newlines counted in `src` up to an offset, each byte once: tags are read in order, so
/// their lines cost one pass in all (counting from the start at each tag made parsing
/// quadratic).
#[derive(Default)]
struct Lines {
    counted_to: usize,
    newlines: usize,
}

struct Normaliser<'a, 'n, 's, 'f> {
    src: &'a str,
    pos: usize,
    state: &'s mut State<'n>,
    /// How a name or text read from `src` is kept in the tree (borrowed while `src` is the
    /// whole body).
    keep: fn(Cow<'a, str>) -> Cow<'n, str>,
    /// Where each element that closes goes; `None` attaches every one to its parent, without a
    /// call through a pointer for each (the whole body read at once).
    on_close: Option<&'s mut OnClose<'f, 'n>>,
    /// The markup at `pos` ends past `src`: wait for more.
    incomplete: bool,
    lines: Lines,
}

impl<'a> Normaliser<'a, '_, '_, '_> {
    fn run(&mut self) -> Result<(), OfxError> {
        while let Some(found) = memchr::memchr(b'<', &self.src.as_bytes()[self.pos..]) {
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
        while !self.state.open.is_empty() {
            self.close_top()?;
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

    /// Decided on the byte after `<`: tags are most of the markup, and comparing every `<`
    /// with each opener in turn showed in profiles.
    fn markup(&mut self) -> Result<(), OfxError> {
        let rest = self.rest();
        match rest.as_bytes().get(1) {
            Some(b'/') => self.end_tag(),
            Some(c) if c.is_ascii_alphabetic() => self.start_tag(),
            Some(b'!') if rest.starts_with("<!--") => self.skip_past("-->", "unterminated comment"),
            Some(b'!') if rest.starts_with("<![CDATA[") => self.cdata(),
            Some(b'!' | b'?') => self.skip_past(">", "unterminated declaration"),
            _ => {
                // SGML lets `<` stand for itself when no tag can start there.
                self.text(&rest[..1]);
                self.pos += 1;
                Ok(())
            }
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
        let found = memchr::memchr2(b'>', b'<', &rest.as_bytes()[1..]).map(|at| at + 1);
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
        self.keep_newlines(inside);
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
        self.close(&upper(name))?;
        self.keep_newlines(inside);
        Ok(())
    }

    /// `start` is where the tag began, for the element's line.
    fn open(&mut self, name: Cow<'a, str>, self_closing: bool, start: usize) -> Result<(), OfxError> {
        self.close_pending_leaves()?;
        if let Some(parent) = self.state.open.last_mut() {
            parent.has_children = true;
        }
        let line = self.line_of(start);
        if self_closing {
            self.state.tree.empty((self.keep)(name), line);
            return Ok(());
        }
        if self.state.open.len() >= self.state.max_depth {
            return Err(OfxError::TooDeep { line, limit: self.state.max_depth });
        }
        let leaf = !self.state.closed_names.contains(&name);
        self.state.tree.open((self.keep)(name), line);
        self.state.open.push(Open { leaf, has_text: false, has_children: false });
        Ok(())
    }

    /// A stray end tag (nothing open by that name) is dropped, as SGML
    /// readers do.
    fn close(&mut self, name: &str) -> Result<(), OfxError> {
        let Some(index) = self.state.tree.open_elements().iter().rposition(|open| open.name == name) else {
            return self.close_pending_leaves();
        };
        while self.state.open.len() > index {
            self.close_top()?;
        }
        Ok(())
    }

    fn close_pending_leaves(&mut self) -> Result<(), OfxError> {
        while self.state.open.last().is_some_and(Open::closes_implicitly) {
            self.close_top()?;
        }
        Ok(())
    }

    fn close_top(&mut self) -> Result<(), OfxError> {
        self.state.open.pop();
        match self.on_close.as_deref_mut() {
            Some(on_close) => self.state.tree.close(on_close),
            None => {
                self.state.tree.close_into_parent();
                Ok(())
            }
        }
    }

    fn text(&mut self, raw: &'a str) {
        self.text_with(raw, true);
    }

    fn text_with(&mut self, raw: &'a str, keep_entities: bool) {
        if is_blank(raw) {
            self.state.tree.text(Cow::Borrowed(raw), self.keep);
            return;
        }
        let Some(top) = self.state.open.last_mut() else {
            return;
        };
        // Text after child elements is stray mixed content, not a leaf value.
        if !top.has_children {
            top.has_text = true;
        }
        let text = if keep_entities { decode_entities(raw) } else { Cow::Borrowed(raw) };
        self.state.tree.text(text, self.keep);
    }

    /// The line breaks of markup that is dropped stay in the text around it, as they would
    /// if the markup had been written out and read back.
    fn keep_newlines(&mut self, skipped: &str) {
        let newlines = newlines_in(skipped);
        if newlines > 0 {
            self.state.tree.text(Cow::Owned("\n".repeat(newlines)), self.keep);
        }
    }

    /// The line of offset `at`, for offsets met in order.
    fn line_of(&mut self, at: usize) -> usize {
        if at > self.lines.counted_to {
            self.lines.newlines += newlines_in(&self.src[self.lines.counted_to..at]);
            self.lines.counted_to = at;
        }
        1 + self.state.lines_before + self.lines.newlines
    }

    /// The line of any offset, counted from the start: only when an error needs it.
    fn line_at(&self, at: usize) -> usize {
        1 + self.state.lines_before + self.src.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count()
    }

    fn syntax(&self, message: &str) -> OfxError {
        OfxError::Syntax { line: self.line_at(self.pos), message: message.to_owned() }
    }
}

fn newlines_in(text: &str) -> usize {
    text.bytes().filter(|&b| b == b'\n').count()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The tree written out as XML (text as read, unescaped), so a test shows the nesting.
    fn render(element: &Element<'_>, out: &mut String) {
        out.push_str(&format!("<{}>{}", element.name, element.text));
        for child in &element.children {
            render(child, out);
        }
        out.push_str(&format!("</{}>", element.name));
    }

    fn xml(body: &str) -> String {
        let mut out = String::new();
        for root in read(body, 0, 64).unwrap() {
            render(&root, &mut out);
        }
        out
    }

    #[test]
    fn unclosed_leaves_are_closed() {
        assert_eq!(xml("<OFX><A><B>1<C>2</A></OFX>"), "<OFX><A><B>1</B><C>2</C></A></OFX>");
    }

    #[test]
    fn bare_ampersand_stands_for_itself_and_entities_are_read() {
        assert_eq!(
            xml("<OFX><N>AT&T<M>AT&amp;T &#233; &#xE9; &bogus; &#0; & x &lt;&gt;&quot;&apos;</OFX>"),
            "<OFX><N>AT&T</N><M>AT&T é é &bogus; &#0; & x <>\"'</M></OFX>"
        );
    }

    #[test]
    fn empty_leaf_closes_before_next_tag() {
        assert_eq!(xml("<OFX><T><MEMO>\r\n<AMT>5\r\n</T></OFX>"), "<OFX><T><MEMO></MEMO><AMT>5\r\n</AMT></T></OFX>");
    }

    #[test]
    fn closed_xml_is_read_as_it_is() {
        assert_eq!(xml("<OFX>\n<A><B>x</B><C></C><D/></A>\n</OFX>"), "<OFX><A><B>x</B><C></C><D></D></A></OFX>");
    }

    #[test]
    fn comments_and_stray_end_tags_are_dropped() {
        assert_eq!(xml("<OFX><!-- a\nb --><A>1</Z></OFX>junk"), "<OFX><A>1</A></OFX>");
        assert_eq!(xml("<OFX><A>1<!-- a\nb -->2</OFX>"), "<OFX><A>1\n2</A></OFX>");
    }

    #[test]
    fn cdata_is_text_as_written() {
        assert_eq!(xml("<OFX><A><![CDATA[a &amp; <b>]]></A></OFX>"), "<OFX><A>a &amp; <b></A></OFX>");
    }

    #[test]
    fn lowercase_names_and_literal_angle() {
        assert_eq!(xml("<ofx><n>a < b > c</ofx>"), "<OFX><N>a < b > c</N></OFX>");
    }

    #[test]
    fn many_bare_ampersands_stay_linear() {
        let body = format!("<OFX><N>{}", "&".repeat(200_000));
        assert!(xml(&body).ends_with("&</N></OFX>"));
    }

    #[test]
    fn elements_know_their_lines() {
        let roots = read("<OFX>\n<A>1\n<B\n>2</B><C/>\n</OFX>", 0, 64).unwrap();
        let lines: Vec<usize> = roots[0].children.iter().map(|child| child.line).collect();
        assert_eq!(lines, [2, 3, 4]);
        let roots = read("HEADER\n\n<OFX>\n<A>1</OFX>", 8, 64).unwrap();
        assert_eq!((roots[0].line, roots[0].children[0].line), (3, 4));
    }

    #[test]
    fn closed_names_tell_names_sharing_a_prefix_apart() {
        let names = ClosedNames::from_names(["BANKTRANLISTX", "AB", "X.Y-Z:9"].into_iter().map(Cow::Borrowed));
        for name in ["BANKTRANLIST", "BANKTRANLISTX", "AB", "X.Y-Z:9", "STMTTRN", "PAYEE"] {
            assert!(names.contains(name), "{name}");
        }
        for name in ["BANKTRAN", "BANKTRANLISTY", "BANKTRANLISTXX", "A", "ABC", "NAME", "TRNAMT", "X.Y-Z:"] {
            assert!(!names.contains(name), "{name}");
        }
    }

    #[test]
    fn depth_is_limited() {
        let deep = "<A>".repeat(100);
        let closes = "</A>".repeat(100);
        let error = read(&format!("{deep}{closes}"), 0, 64).err().unwrap();
        assert_eq!(error, OfxError::TooDeep { line: 1, limit: 64 });
    }

    #[test]
    fn broken_tags_report_their_line() {
        let error = read("<OFX>\n<A\n<B>", 0, 64).err().unwrap();
        assert!(matches!(error, OfxError::Syntax { line: 2, .. }), "{error:?}");
        let error = read("<OFX>\n\n<A", 0, 64).err().unwrap();
        assert!(matches!(error, OfxError::Syntax { line: 3, .. }), "{error:?}");
    }
}
