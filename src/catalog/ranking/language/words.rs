//! How a text becomes words: split at anything not a letter or digit, clauses counted, error class
//! names read as their words, denials spelt one way, British spellings made American.

use std::borrow::Cow;

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

const APOSTROPHE_LESS: &[&str] = &[
    "cant", "dont", "wont", "didnt", "doesnt", "isnt", "hasnt", "havent", "hadnt", "wasnt", "werent", "arent",
    "couldnt", "wouldnt", "shouldnt", "cannot",
];

/// Lowercased words with their clause. A denial is always the word "not": "didn't" and "didnt"
/// read as "did not", "can't" and "cannot" as "can not", so one phrase covers every spelling.
pub(super) fn words(text: &str) -> Vec<(String, u32)> {
    let composed = composed(text);
    let mut words: Vec<(String, u32)> = Vec::new();
    let mut clause = 0;
    let mut rest = composed.as_ref();
    while !rest.is_empty() {
        let start = rest.find(in_word).unwrap_or(rest.len());
        // With the full-width marks Chinese and Japanese end their clauses with.
        if rest[..start].contains([
            ',', '.', ';', ':', '!', '?', '(', ')', '\n', '、', '。', '，', '；', '：', '！', '？', '（', '）',
        ]) {
            clause += 1;
        }
        rest = &rest[start..];
        let end = rest.find(|c: char| !in_word(c)).unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        let token = &rest[..end];
        rest = &rest[end..];
        if let Some(parts) = camel_case_parts(token) {
            words.extend(parts.into_iter().map(|part| (american(part.to_lowercase()), clause)));
            continue;
        }
        let word = american(token.to_lowercase());
        if APOSTROPHE_LESS.contains(&word.as_str()) {
            let stem = word.strip_suffix("not").or_else(|| word.strip_suffix("nt")).unwrap_or(&word);
            words.push((affirmative(stem), clause));
            words.push(("not".to_owned(), clause));
            continue;
        }
        if word == "t"
            && let Some(last) = words.last_mut()
            && last.0.ends_with('n')
            && last.1 == clause
        {
            last.0 = affirmative(last.0.strip_suffix('n').unwrap_or(&last.0));
            words.push(("not".to_owned(), clause));
            continue;
        }
        words.push((word, clause));
    }
    words
}

/// `text` in composed form (NFC), as nearly every keyboard types it: "é" typed as "e" and a
/// combining accent is the same word as "é".
pub(in crate::catalog::ranking) fn composed(text: &str) -> Cow<'_, str> {
    if is_nfc_quick(text.chars()) == IsNormalized::Yes { Cow::Borrowed(text) } else { Cow::Owned(text.nfc().collect()) }
}

/// Letters and digits, and the marks that are part of a letter: a combining accent left over
/// after composing, and Thai's tone and vowel marks, which are not letters of their own but
/// end no word ("รหัสผ่าน" is one).
fn in_word(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '\u{0300}'..='\u{036f}' | '\u{0e31}'..='\u{0e3a}' | '\u{0e47}'..='\u{0e4e}')
}

/// An error's class name as logs quote it ("InstitutionTimeoutError", "AccessExpiredError") is
/// the words it is made of. Two humps or more: a product name with one ("QuickBooks",
/// "GoCardless") is one word, as people also type it.
fn camel_case_parts(token: &str) -> Option<Vec<&str>> {
    let humps: Vec<usize> = token
        .char_indices()
        .zip(token.chars().skip(1))
        .filter(|((_, before), after)| before.is_lowercase() && after.is_uppercase())
        .map(|((index, before), _)| index + before.len_utf8())
        .collect();
    if humps.len() < 2 {
        return None;
    }
    let mut parts = Vec::with_capacity(humps.len() + 1);
    let mut start = 0;
    for hump in humps {
        parts.push(&token[start..hump]);
        start = hump;
    }
    parts.push(&token[start..]);
    Some(parts)
}

/// The verb a denial was made of: "did" of "didn't", "can" of "can't", "will" of "won't".
fn affirmative(stem: &str) -> String {
    match stem {
        "ca" | "can" => "can".to_owned(),
        "wo" => "will".to_owned(),
        other => other.to_owned(),
    }
}

/// "authorise" and "authorize" are one word to the stemmer only if spelt one way.
fn american(mut word: String) -> String {
    for (british, american) in
        [("isation", "ization"), ("ised", "ized"), ("ise", "ize"), ("ises", "izes"), ("ising", "izing")]
    {
        if word.len() > british.len() + 3 && word.ends_with(british) {
            word.truncate(word.len() - british.len());
            word.push_str(american);
            break;
        }
    }
    word
}

#[cfg(test)]
mod tests {
    use super::{camel_case_parts, words};

    fn bare(text: &str) -> Vec<String> {
        words(text).into_iter().map(|(word, _)| word).collect()
    }

    #[test]
    fn an_error_class_name_splits_at_its_humps() {
        assert_eq!(camel_case_parts("InstitutionTimeoutError"), Some(vec!["Institution", "Timeout", "Error"]));
        assert_eq!(camel_case_parts("QuickBooks"), None);
        assert_eq!(camel_case_parts("password"), None);
    }

    #[test]
    fn a_decomposed_accent_is_the_composed_letter() {
        assert_eq!(bare("re\u{301}seau bloque\u{301}"), ["réseau", "bloqué"]);
        assert_eq!(bare("réseau"), ["réseau"]);
    }

    #[test]
    fn thai_marks_end_no_word() {
        // "รหัสผ่าน" (password) carries a tone mark, which is not a letter.
        assert_eq!(bare("รหัสผ่าน ผิด"), ["รหัสผ่าน", "ผิด"]);
    }
}
