//! Reads normalised XML with quick-xml into a small element tree.
//!
//! Names and text borrow from the XML wherever they can: a statement has thousands of
//! elements, and allocating (then freeing) a string or two for each was a large share of a
//! parse.

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::events::Event;

use super::error::OfxError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Element<'a> {
    pub name: Cow<'a, str>,
    /// The element's own text; leading whitespace may be left out (values are trimmed).
    pub text: Cow<'a, str>,
    pub children: Vec<Element<'a>>,
    pub line: usize,
}

impl<'a> Element<'a> {
    fn new(name: Cow<'a, str>, line: usize) -> Self {
        Self { name, text: Cow::Borrowed(""), children: Vec::new(), line }
    }

    pub fn child(&self, name: &str) -> Option<&Element<'a>> {
        self.children.iter().find(|child| child.name == name)
    }

    pub fn children_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s Element<'a>> {
        self.children.iter().filter(move |child| child.name == name)
    }

    pub fn path(&self, names: &[&str]) -> Option<&Element<'a>> {
        names.iter().try_fold(self, |element, name| element.child(name))
    }

    /// The trimmed text, or `None` when empty: OFX has no use for blanks.
    pub fn value(&self) -> Option<&str> {
        Some(self.text.trim()).filter(|text| !text.is_empty())
    }

    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).and_then(Element::value)
    }
}

/// Tracks line numbers as the reader advances, counting each byte once.
struct Lines<'a> {
    xml: &'a str,
    counted_to: usize,
    line: usize,
}

impl Lines<'_> {
    fn at(&mut self, position: u64) -> usize {
        let position = usize::try_from(position).unwrap_or(usize::MAX).min(self.xml.len());
        if position > self.counted_to {
            let bytes = &self.xml.as_bytes()[self.counted_to..position];
            self.line += bytes.iter().filter(|&&b| b == b'\n').count();
            self.counted_to = position;
        }
        self.line
    }
}

/// Returns the top-level elements of `xml`.
pub(crate) fn build(xml: &str, max_depth: usize) -> Result<Vec<Element<'_>>, OfxError> {
    let mut reader = Reader::from_str(xml);
    let mut lines = Lines { xml, counted_to: 0, line: 1 };
    // The bottom entry is a nameless root holding the top-level elements.
    let mut stack = vec![Element::new(Cow::Borrowed(""), 1)];
    loop {
        let at = reader.buffer_position();
        let line = lines.at(at);
        let event = reader.read_event().map_err(|error| OfxError::Syntax {
            line: lines.at(reader.error_position()),
            message: error.to_string(),
        })?;
        if matches!(event, Event::Eof) {
            return finish(stack, line);
        }
        apply(&mut stack, event, Tag { xml, at, line }, max_depth)?;
    }
}

/// A tree built from XML that arrives in pieces (each a run of complete events, as
/// `sgml::Streaming` writes them), with a say for the caller over each element as it closes:
/// a statement file's transactions are handed out one by one instead of kept in the tree.
pub(crate) struct Streaming {
    stack: Vec<Element<'static>>,
    max_depth: usize,
    lines_before: usize,
}

/// What the caller does with an element that just closed, given the open elements around it
/// (outermost first, the nameless root at 0).
pub(crate) type OnClose<'f> =
    dyn FnMut(&[Element<'static>], Element<'static>) -> Result<Option<Element<'static>>, OfxError> + 'f;

impl Streaming {
    pub fn new(max_depth: usize, lines_before: usize) -> Self {
        Self { stack: vec![Element::new(Cow::Borrowed(""), 1)], max_depth, lines_before }
    }

    /// Adds `xml`'s events; `on_close` keeps each closed element out of the tree (`Ok(None)`)
    /// or gives it back to be attached to its parent.
    pub fn feed(&mut self, xml: &str, on_close: &mut OnClose<'_>) -> Result<(), OfxError> {
        // A piece may close elements a previous piece opened: the reader is told of them first
        // (their start tags, skipped below), so it sees one well-nested document.
        let reopened: String = self.stack[1..].iter().map(|open| format!("<{}>", open.name)).collect();
        let whole = format!("{reopened}{xml}");
        let mut reader = Reader::from_str(&whole);
        let mut lines = Lines { xml: &whole, counted_to: 0, line: 1 + self.lines_before };
        let mut skip = self.stack.len() - 1;
        loop {
            let at = reader.buffer_position();
            let line = lines.at(at);
            let event = reader.read_event().map_err(|error| OfxError::Syntax {
                line: lines.at(reader.error_position()),
                message: error.to_string(),
            })?;
            if skip > 0 {
                skip -= 1;
                continue;
            }
            match event {
                Event::Eof => break,
                Event::End(_) => {
                    if self.stack.len() < 2 {
                        return Err(OfxError::Syntax { line, message: "end tag without start tag".to_owned() });
                    }
                    if let Some(done) = self.stack.pop()
                        && let Some(kept) = on_close(&self.stack, done)?
                    {
                        push_child(&mut self.stack, kept);
                    }
                }
                event => apply(&mut self.stack, event.into_owned(), Tag { xml: "", at, line }, self.max_depth)?,
            }
        }
        self.lines_before += xml.bytes().filter(|&b| b == b'\n').count();
        Ok(())
    }

    /// Elements held (open ones and everything attached to them).
    #[cfg(test)]
    pub fn held(&self) -> usize {
        fn count(element: &Element<'_>) -> usize {
            1 + element.children.iter().map(count).sum::<usize>()
        }
        self.stack.iter().map(count).sum()
    }

    /// The top-level elements, once the whole body was fed.
    pub fn finish(self) -> Result<Vec<Element<'static>>, OfxError> {
        let line = 1 + self.lines_before;
        finish(self.stack, line)
    }
}

/// Where an event starts: its offset in the XML and its line.
#[derive(Clone, Copy)]
struct Tag<'a> {
    xml: &'a str,
    at: u64,
    line: usize,
}

impl<'a> Tag<'a> {
    /// The name as a slice of the XML when it sits right after the `<` (always, for the
    /// normaliser's output), else a copy.
    fn name(&self, raw: &[u8]) -> Cow<'a, str> {
        let start = usize::try_from(self.at).unwrap_or(usize::MAX).saturating_add(1);
        match self.xml.get(start..start.saturating_add(raw.len())) {
            Some(name) if name.as_bytes() == raw => Cow::Borrowed(name),
            _ => Cow::Owned(String::from_utf8_lossy(raw).into_owned()),
        }
    }
}

fn apply<'a>(stack: &mut Vec<Element<'a>>, event: Event<'a>, tag: Tag<'a>, max_depth: usize) -> Result<(), OfxError> {
    let line = tag.line;
    match event {
        Event::Start(_) if stack.len() > max_depth => Err(OfxError::TooDeep { line, limit: max_depth }),
        Event::Start(start) => {
            stack.push(Element::new(tag.name(start.name().as_ref()), line));
            Ok(())
        }
        Event::Empty(start) => {
            push_child(stack, Element::new(tag.name(start.name().as_ref()), line));
            Ok(())
        }
        Event::End(_) => close(stack, line),
        Event::Text(text) => {
            let text = text.unescape().map_err(|error| OfxError::Syntax { line, message: error.to_string() })?;
            append_text(stack, text);
            Ok(())
        }
        Event::CData(data) => {
            append_text(stack, Cow::Owned(String::from_utf8_lossy(&data).into_owned()));
            Ok(())
        }
        _ => Ok(()),
    }
}

fn push_child<'a>(stack: &mut [Element<'a>], element: Element<'a>) {
    if let Some(parent) = stack.last_mut() {
        parent.children.push(element);
    }
}

/// The first non-blank piece of text is kept as it is (borrowed, most often); leading blanks
/// (the line breaks between an aggregate's children) are dropped, as trimming would.
fn append_text<'a>(stack: &mut [Element<'a>], text: Cow<'a, str>) {
    let Some(top) = stack.last_mut() else { return };
    if top.text.is_empty() {
        if !text.trim().is_empty() {
            top.text = text;
        }
    } else {
        top.text.to_mut().push_str(&text);
    }
}

fn close(stack: &mut Vec<Element<'_>>, line: usize) -> Result<(), OfxError> {
    if stack.len() < 2 {
        return Err(OfxError::Syntax { line, message: "end tag without start tag".to_owned() });
    }
    if let Some(done) = stack.pop() {
        push_child(stack, done);
    }
    Ok(())
}

fn finish(mut stack: Vec<Element<'_>>, line: usize) -> Result<Vec<Element<'_>>, OfxError> {
    if stack.len() != 1 {
        return Err(OfxError::Syntax { line, message: "element left open at end of input".to_owned() });
    }
    Ok(stack.pop().map(|root| root.children).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn builds_tree_with_lines_and_entities() {
        let roots = build("<OFX>\n<A>AT&amp;T &#233;</A>\n<B/></OFX>", 64).unwrap();
        let ofx = &roots[0];
        assert_eq!(ofx.text_of("A"), Some("AT&T é"));
        assert_eq!(ofx.child("A").unwrap().line, 2);
        assert_eq!(ofx.child("B").unwrap().line, 3);
        assert_eq!(ofx.child("B").unwrap().value(), None);
    }

    #[test]
    fn depth_and_mismatch_are_errors() {
        let deep = format!("{}{}", "<A>".repeat(10), "</A>".repeat(10));
        assert!(matches!(build(&deep, 5), Err(OfxError::TooDeep { .. })));
        assert!(matches!(build("<A>\n</B>", 5), Err(OfxError::Syntax { line: 2, .. })));
        assert!(matches!(build("<A>", 5), Err(OfxError::Syntax { .. })));
    }
}
