//! The small element tree the normaliser (`sgml`) builds as it reads a body.
//!
//! Names and text borrow from the decoded file wherever they can: a statement has thousands
//! of elements, and allocating (then freeing) a string or two for each was a large share of a
//! parse. The normaliser builds it directly: writing well-formed XML first and reading it back
//! with an XML parser cost two thirds of a statement's parse (session 20's profile).

use std::borrow::Cow;

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

/// What the caller does with an element that just closed, given the open elements around it
/// (outermost first, the nameless root at 0): `Ok(None)` keeps it out of the tree (a statement
/// file's transactions are handed out one by one), `Ok(Some)` gives it back to be attached to
/// its parent.
pub(crate) type OnClose<'f, 'n> = dyn FnMut(&[Element<'n>], Element<'n>) -> Result<Option<Element<'n>>, OfxError> + 'f;

/// The tree as the normaliser reads it: one event at a time, every element closed by the
/// normaliser (so nothing here can be mis-nested). The bottom entry is a nameless root
/// holding the top-level elements.
pub(crate) struct Builder<'n> {
    stack: Vec<Element<'n>>,
}

impl<'n> Builder<'n> {
    pub fn new() -> Self {
        Self { stack: vec![Element::new(Cow::Borrowed(""), 1)] }
    }

    /// The open elements, outermost first (the root not among them).
    pub fn open_elements(&self) -> &[Element<'n>] {
        &self.stack[1..]
    }

    pub fn open(&mut self, name: Cow<'n, str>, line: usize) {
        self.stack.push(Element::new(name, line));
    }

    /// An element with nothing inside (`<NAME/>`).
    pub fn empty(&mut self, name: Cow<'n, str>, line: usize) {
        self.attach(Element::new(name, line));
    }

    /// Text inside the innermost open element. The first non-blank piece is kept as it is
    /// (borrowed, most often); leading blanks (the line breaks between an aggregate's children)
    /// are dropped, as trimming would; `keep` makes what is kept outlive the source when it
    /// must.
    pub fn text<'a>(&mut self, text: Cow<'a, str>, keep: fn(Cow<'a, str>) -> Cow<'n, str>) {
        // Text outside every element (between the root's children) has no use.
        let [_, .., top] = self.stack.as_mut_slice() else { return };
        if top.text.is_empty() {
            if !is_blank(&text) {
                top.text = keep(text);
            }
        } else {
            top.text.to_mut().push_str(&text);
        }
    }

    /// Closes the innermost open element and lets `on_close` decide where it goes.
    pub fn close(&mut self, on_close: &mut OnClose<'_, 'n>) -> Result<(), OfxError> {
        if self.stack.len() < 2 {
            return Ok(());
        }
        if let Some(done) = self.stack.pop()
            && let Some(kept) = on_close(&self.stack, done)?
        {
            self.attach(kept);
        }
        Ok(())
    }

    /// Closes the innermost open element into its parent: [`close`](Self::close) keeping every
    /// element.
    pub fn close_into_parent(&mut self) {
        if self.stack.len() < 2 {
            return;
        }
        if let Some(done) = self.stack.pop() {
            self.attach(done);
        }
    }

    fn attach(&mut self, element: Element<'n>) {
        if let Some(parent) = self.stack.last_mut() {
            parent.children.push(element);
        }
    }

    /// Elements held (open ones and everything attached to them).
    #[cfg(test)]
    pub fn held(&self) -> usize {
        fn count(element: &Element<'_>) -> usize {
            1 + element.children.iter().map(count).sum::<usize>()
        }
        self.stack.iter().map(count).sum()
    }

    /// The top-level elements, once every element was closed.
    pub fn finish(mut self, line: usize) -> Result<Vec<Element<'n>>, OfxError> {
        if self.stack.len() != 1 {
            return Err(OfxError::Syntax { line, message: "element left open at end of input".to_owned() });
        }
        Ok(self.stack.pop().map(|root| root.children).unwrap_or_default())
    }
}

/// Whether `text` is empty or whitespace alone, as `str::trim` reads whitespace. Most text between
/// tags is a line break and an indent, so the ASCII bytes are looked at first, without decoding
/// characters; only text with other bytes in it is trimmed.
pub(crate) fn is_blank(text: &str) -> bool {
    // The ASCII characters `char::is_whitespace` accepts (`u8::is_ascii_whitespace` leaves out the
    // vertical tab).
    let ascii_blank = |byte: &u8| matches!(byte, b' ' | b'\t' | b'\n' | b'\x0B' | b'\x0C' | b'\r');
    match text.bytes().position(|byte| !ascii_blank(&byte)) {
        None => true,
        Some(at) if text.as_bytes()[at].is_ascii() => false,
        Some(at) => text[at..].trim().is_empty(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn keep(text: Cow<'_, str>) -> Cow<'_, str> {
        text
    }

    #[test]
    fn text_skips_leading_blanks_and_appends_the_rest() {
        let mut tree = Builder::new();
        tree.open(Cow::Borrowed("OFX"), 1);
        tree.text(Cow::Borrowed("\n  "), keep);
        tree.open(Cow::Borrowed("A"), 2);
        tree.text(Cow::Borrowed("AT&T"), keep);
        tree.text(Cow::Borrowed("\n"), keep);
        tree.close_into_parent();
        tree.empty(Cow::Borrowed("B"), 3);
        tree.close_into_parent();
        let roots = tree.finish(4).unwrap();
        let ofx = &roots[0];
        assert_eq!(ofx.text, "");
        assert_eq!(ofx.child("A").unwrap().text, "AT&T\n");
        assert_eq!(ofx.text_of("A"), Some("AT&T"));
        assert_eq!(ofx.child("B").unwrap().line, 3);
        assert_eq!(ofx.child("B").unwrap().value(), None);
    }

    #[test]
    fn blank_is_what_trimming_leaves_empty() {
        for text in ["", " ", "\r\n\t", "\x0B\x0C", "\n\u{a0}", "\u{2003}", " \u{3000}\n"] {
            assert!(is_blank(text), "{text:?}");
            assert!(text.trim().is_empty(), "{text:?}");
        }
        for text in ["x", " x ", "\n\u{a0}x", "\u{200b}", "\r\n-5.00\r\n", "\u{e9}"] {
            assert!(!is_blank(text), "{text:?}");
            assert!(!text.trim().is_empty(), "{text:?}");
        }
    }

    #[test]
    fn an_element_left_open_is_an_error() {
        let mut tree = Builder::new();
        tree.open(Cow::Borrowed("A"), 1);
        assert!(matches!(tree.finish(2), Err(OfxError::Syntax { line: 2, .. })));
    }

    #[test]
    fn on_close_can_keep_an_element_out() {
        let mut tree = Builder::new();
        tree.open(Cow::Borrowed("A"), 1);
        tree.open(Cow::Borrowed("B"), 1);
        let mut seen = Vec::new();
        tree.close(&mut |path: &[Element<'_>], element: Element<'_>| {
            seen.push((path.len(), element.name.to_string()));
            Ok(None)
        })
        .unwrap();
        tree.close_into_parent();
        assert_eq!(seen, [(2, "B".to_owned())]);
        assert!(tree.finish(1).unwrap()[0].children.is_empty());
    }
}
