//! Words of scripts that do not put a space after every word. Chinese, Japanese and Thai write a
//! whole clause as one run of characters ("パスワードを変更しました"), and Korean joins a word and its
//! particles ("비밀번호를"), so splitting at spaces leaves one "word" per clause that nothing can
//! match. Such a run is cut at the words search knows (the concepts' phrases and the translated
//! words of `catalog/synonyms.toml`), the longest known word first at each place: dictionary
//! longest-match, the simplest segmentation that needs no model. What lies between known words
//! (particles, endings, words nobody wrote down) stays together as one unknown piece.

use std::collections::HashSet;

/// The known words written in these scripts, and the longest one's length in characters.
#[derive(Debug, Default)]
pub(super) struct UnspacedWords {
    known: HashSet<Box<str>>,
    longest: usize,
}

/// Thai, Han (Chinese characters, Japanese kanji), hiragana, katakana (with the prolonged sound
/// mark and the half-width forms) and Hangul syllables and letters.
fn unspaced(c: char) -> bool {
    matches!(
        c,
        '\u{3040}'..='\u{30ff}'
            | '\u{3130}'..='\u{318f}'
            | '\u{0e00}'..='\u{0e7f}'
            | '\u{3400}'..='\u{4dbf}'
            | '\u{4e00}'..='\u{9fff}'
            | '\u{f900}'..='\u{faff}'
            | '\u{ff66}'..='\u{ff9f}'
            | '\u{1100}'..='\u{11ff}'
            | '\u{ac00}'..='\u{d7af}'
    )
}

impl UnspacedWords {
    /// Remembers `word` if it is written in one of these scripts.
    pub(super) fn learn(&mut self, word: &str) {
        if word.chars().all(unspaced) && !word.is_empty() {
            self.longest = self.longest.max(word.chars().count());
            self.known.insert(word.into());
        }
    }

    /// Whether `word` has a letter of these scripts: most words have none and need no cutting.
    pub(super) fn holds_any(word: &str) -> bool {
        !word.is_ascii() && word.chars().any(unspaced)
    }

    /// `word` (lowercased, no spaces or punctuation) cut into the words it is made of: runs of
    /// other scripts as they are, runs of these at the known words.
    pub(super) fn split(&self, word: &str) -> Vec<String> {
        if !Self::holds_any(word) {
            return vec![word.to_owned()];
        }
        let chars: Vec<char> = word.chars().collect();
        let mut pieces = Vec::new();
        let mut pending = String::new();
        let mut at = 0;
        while at < chars.len() {
            let Some(length) = self.known_at(&chars[at..]) else {
                // A change of script ends a piece: "plaidのエラー" is "plaid" and the rest.
                if pending.chars().last().is_some_and(|last| unspaced(last) != unspaced(chars[at])) {
                    pieces.push(std::mem::take(&mut pending));
                }
                pending.push(chars[at]);
                at += 1;
                continue;
            };
            if !pending.is_empty() {
                pieces.push(std::mem::take(&mut pending));
            }
            pieces.push(chars[at..at + length].iter().collect());
            at += length;
        }
        if !pending.is_empty() {
            pieces.push(pending);
        }
        pieces
    }

    /// The length of the longest known word `rest` begins with.
    fn known_at(&self, rest: &[char]) -> Option<usize> {
        if !rest.first().copied().is_some_and(unspaced) {
            return None;
        }
        let mut candidate: String = rest.iter().take(self.longest).collect();
        for length in (1..=rest.len().min(self.longest)).rev() {
            if self.known.contains(candidate.as_str()) {
                return Some(length);
            }
            candidate.pop();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(words: &[&str]) -> UnspacedWords {
        let mut known = UnspacedWords::default();
        for word in words {
            known.learn(word);
        }
        known
    }

    #[test]
    fn a_run_is_cut_at_the_longest_known_words() {
        let known = known(&["パスワード", "変更", "銀行", "銀行口座", "口座"]);
        assert_eq!(
            known.split("銀行口座のパスワードを変更しました"),
            ["銀行口座", "の", "パスワード", "を", "変更", "しました"]
        );
        assert_eq!(known.split("銀行の口座"), ["銀行", "の", "口座"]);
    }

    #[test]
    fn a_korean_word_sheds_its_particle() {
        let known = known(&["비밀번호", "변경"]);
        assert_eq!(known.split("비밀번호를"), ["비밀번호", "를"]);
        assert_eq!(known.split("비밀번호변경"), ["비밀번호", "변경"]);
    }

    #[test]
    fn other_scripts_pass_through() {
        let known = known(&["エラー", "konto"]);
        assert_eq!(known.split("konto"), ["konto"]);
        assert_eq!(known.split("plaidのエラー"), ["plaid", "の", "エラー"]);
        assert_eq!(known.split("未知"), ["未知"]);
    }
}
