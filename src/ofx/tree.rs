//! Reads normalised XML with quick-xml into a small element tree.

use quick_xml::Reader;
use quick_xml::events::Event;

use super::error::OfxError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
    pub line: usize,
}

impl Element {
    fn new(name: String, line: usize) -> Self {
        Self { name, text: String::new(), children: Vec::new(), line }
    }

    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|child| child.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |child| child.name == name)
    }

    pub fn path(&self, names: &[&str]) -> Option<&Element> {
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
pub(crate) fn build(xml: &str, max_depth: usize) -> Result<Vec<Element>, OfxError> {
    let mut reader = Reader::from_str(xml);
    let mut lines = Lines { xml, counted_to: 0, line: 1 };
    // The bottom entry is a nameless root holding the top-level elements.
    let mut stack = vec![Element::new(String::new(), 1)];
    loop {
        let line = lines.at(reader.buffer_position());
        let event = reader.read_event().map_err(|error| OfxError::Syntax {
            line: lines.at(reader.error_position()),
            message: error.to_string(),
        })?;
        if matches!(event, Event::Eof) {
            return finish(stack, line);
        }
        apply(&mut stack, event, line, max_depth)?;
    }
}

fn apply(stack: &mut Vec<Element>, event: Event, line: usize, max_depth: usize) -> Result<(), OfxError> {
    match event {
        Event::Start(_) if stack.len() > max_depth => Err(OfxError::TooDeep { line, limit: max_depth }),
        Event::Start(start) => {
            stack.push(Element::new(name_of(start.name().as_ref()), line));
            Ok(())
        }
        Event::Empty(start) => {
            push_child(stack, Element::new(name_of(start.name().as_ref()), line));
            Ok(())
        }
        Event::End(_) => close(stack, line),
        Event::Text(text) => {
            let text = text.unescape().map_err(|error| OfxError::Syntax { line, message: error.to_string() })?;
            append_text(stack, &text);
            Ok(())
        }
        Event::CData(data) => {
            append_text(stack, &String::from_utf8_lossy(&data));
            Ok(())
        }
        _ => Ok(()),
    }
}

fn name_of(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

fn push_child(stack: &mut [Element], element: Element) {
    if let Some(parent) = stack.last_mut() {
        parent.children.push(element);
    }
}

fn append_text(stack: &mut [Element], text: &str) {
    if let Some(top) = stack.last_mut() {
        top.text.push_str(text);
    }
}

fn close(stack: &mut Vec<Element>, line: usize) -> Result<(), OfxError> {
    if stack.len() < 2 {
        return Err(OfxError::Syntax { line, message: "end tag without start tag".to_owned() });
    }
    if let Some(done) = stack.pop() {
        push_child(stack, done);
    }
    Ok(())
}

fn finish(mut stack: Vec<Element>, line: usize) -> Result<Vec<Element>, OfxError> {
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
