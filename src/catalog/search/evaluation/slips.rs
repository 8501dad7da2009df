//! Typing slips: issue 14 asks for a typo model that keeps working. The held-out questions are
//! typed again with slips of the kinds people make, and search must still put first what it put
//! first for the clean question. Damerau (1964) found that about 80 % of misspellings are one
//! slip of four kinds: a letter replaced, dropped or added, or two neighbouring letters swapped;
//! a replaced or added letter is mostly one of the neighbouring keys. The slips here are those
//! four kinds, equally often, at any letter of a word of four ASCII letters or more (the first
//! letter included, which people mistype less often than the rest: a harsher test than typing).
//! Held-out questions only: a studied question is its own entry's example, so its slipped form
//! would still be close to itself.
//!
//! `cargo test --lib slips_keep_what_search_found -- --nocapture` prints the figures.

use super::*;

/// The keys around each letter on a QWERTY keyboard, where a slipping finger lands.
fn neighbours(letter: char) -> &'static str {
    match letter {
        'q' => "wa",
        'w' => "qeas",
        'e' => "wrsd",
        'r' => "etdf",
        't' => "ryfg",
        'y' => "tugh",
        'u' => "yihj",
        'i' => "uojk",
        'o' => "ipkl",
        'p' => "ol",
        'a' => "qwsz",
        's' => "awedxz",
        'd' => "serfcx",
        'f' => "drtgvc",
        'g' => "ftyhbv",
        'h' => "gyujnb",
        'j' => "huikmn",
        'k' => "jiolm",
        'l' => "kop",
        'z' => "asx",
        'x' => "zsdc",
        'c' => "xdfv",
        'v' => "cfgb",
        'b' => "vghn",
        'n' => "bhjm",
        'm' => "njk",
        _ => "",
    }
}

/// A small deterministic generator (xorshift64*): the same slips on every run and machine.
struct Dice(u64);

impl Dice {
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % bound.max(1)
    }

    fn pick(&mut self, letters: &str) -> char {
        letters.chars().nth(self.below(letters.chars().count())).unwrap_or('e')
    }
}

/// Damerau's four kinds of slip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Slip {
    /// By a neighbouring key.
    Replaced,
    Dropped,
    /// A neighbouring key struck with the letter, or the letter struck twice.
    Added,
    /// Two different neighbouring letters: swapping the "ss" of "password" is no slip.
    Swapped,
}

impl Slip {
    const ALL: [Slip; 4] = [Slip::Replaced, Slip::Dropped, Slip::Added, Slip::Swapped];
}

/// One slip of any kind in `word` (lowercase ASCII letters, four or more).
fn slip(word: &str, dice: &mut Dice) -> String {
    let at = dice.below(word.len());
    slip_at(word, at, Slip::ALL[dice.below(Slip::ALL.len())], dice)
}

/// A slip of `kind` at the letter `at` of `word` (a swap at the nearest pair it can swap).
fn slip_at(word: &str, at: usize, kind: Slip, dice: &mut Dice) -> String {
    let mut letters: Vec<char> = word.chars().collect();
    match kind {
        Slip::Replaced => letters[at] = dice.pick(neighbours(letters[at])),
        Slip::Dropped => {
            letters.remove(at);
        }
        Slip::Added => {
            let extra = if dice.below(2) == 0 { letters[at] } else { dice.pick(neighbours(letters[at])) };
            letters.insert(at + dice.below(2), extra);
        }
        Slip::Swapped => {
            let pairs: Vec<usize> = (0..letters.len() - 1).filter(|&at| letters[at] != letters[at + 1]).collect();
            if let Some(&at) = pairs.get(dice.below(pairs.len())) {
                letters.swap(at, at + 1);
            }
        }
    }
    letters.into_iter().collect()
}

/// `text` with `count` slips, each in a different word of four ASCII letters or more (fewer when
/// it has fewer such words).
fn with_slips(text: &str, count: usize, dice: &mut Dice) -> String {
    let mut words: Vec<(usize, usize)> = Vec::new();
    let mut start = None;
    for (at, c) in text.char_indices().chain(std::iter::once((text.len(), ' '))) {
        match (c.is_ascii_alphabetic(), start) {
            (true, None) => start = Some(at),
            (false, Some(from)) => {
                // A word that runs on into other letters ("café") is not an ASCII word.
                let whole =
                    !text[at..].starts_with(char::is_alphabetic) && !text[..from].ends_with(char::is_alphabetic);
                if whole && at - from >= 4 {
                    words.push((from, at));
                }
                start = None;
            }
            _ => {}
        }
    }
    let mut chosen = Vec::new();
    while chosen.len() < count.min(words.len()) {
        let word = words[dice.below(words.len())];
        if !chosen.contains(&word) {
            chosen.push(word);
        }
    }
    chosen.sort_unstable();
    let mut out = String::with_capacity(text.len() + count);
    let mut copied = 0;
    for (from, to) in chosen {
        out.push_str(&text[copied..from]);
        out.push_str(&slip(&text[from..to].to_ascii_lowercase(), dice));
        copied = to;
    }
    out.push_str(&text[copied..]);
    out
}

/// What slips do to a set of questions: each typed three times with one slip and three times with
/// two. The first places of the clean questions, and of those how many each kept.
#[derive(Debug, Default)]
struct Slipped {
    clean: Scores,
    one: Scores,
    two: Scores,
    first: usize,
    kept_one: usize,
    kept_two: usize,
}

impl Slipped {
    fn print(&self, name: &str) {
        println!("{name}:\n{}\n{}\n{}", self.clean.line("clean"), self.one.line("1 slip"), self.two.line("2 slips"));
        println!(
            "first places kept: one slip {} of {}, two slips {} of {}",
            self.kept_one, self.first, self.kept_two, self.first
        );
    }
}

/// The held-out questions with slips; the floors below were measured when this was written.
#[test]
fn slips_keep_what_search_found() {
    let slipped = slipped(questions().into_iter().filter(|question| !question.set.trains()), false);
    slipped.print("held-out splits");
    let (first, kept_one, kept_two) = (slipped.first, slipped.kept_one, slipped.kept_two);
    // Session 28, when this was written: one slip kept 1,015 of 1,050 first places (0.967), two
    // slips 990 (0.943).
    assert!(kept_one as f64 >= 0.96 * first as f64, "one slip kept {kept_one} of {first}");
    assert!(kept_two as f64 >= 0.94 * first as f64, "two slips kept {kept_two} of {first}");
}

/// The studied questions with slips, each read with its whole split left out of the examples (the
/// cross-validation's protocol): where a change to the typo model may be chosen.
/// `SLIPS_ON_STUDIED=1 cargo test --lib studied_questions_with_slips -- --nocapture`
#[test]
fn studied_questions_with_slips() {
    if std::env::var("SLIPS_ON_STUDIED").is_ok() {
        slipped(questions().into_iter().filter(|question| question.set.trains()), true).print("studied splits");
    }
}

fn slipped(questions: impl Iterator<Item = Question>, leave_split_out: bool) -> Slipped {
    let index = shipped_index().unwrap();
    let mut dice = Dice(0x9e37_79b9_7f4a_7c15);
    let mut out = Slipped::default();
    let Slipped { clean, one, two, first, kept_one, kept_two } = &mut out;
    for question in questions {
        if leave_split_out {
            LEFT_OUT.set(Some(LeftOut::Split(question.set)));
        }
        let clean_rank = rank(&index, &question);
        for _ in 0..3 {
            clean.add(clean_rank);
            *first += usize::from(clean_rank == Some(1));
            for (count, scores, kept) in [(1, &mut *one, &mut *kept_one), (2, &mut *two, &mut *kept_two)] {
                let slipped = Question {
                    q: with_slips(&question.q, count, &mut dice),
                    expect: question.expect.clone(),
                    source: String::new(),
                    set: question.set,
                    batch: None,
                };
                let slipped_rank = rank(&index, &slipped);
                scores.add(slipped_rank);
                *kept += usize::from(clean_rank == Some(1) && slipped_rank == Some(1));
            }
        }
        LEFT_OUT.set(None);
    }
    out
}

#[test]
fn a_slip_is_one_of_the_four_kinds() {
    let mut dice = Dice(7);
    for _ in 0..200 {
        let slipped = slip("password", &mut dice);
        let length = slipped.len() as i64 - 8;
        assert!((-1..=1).contains(&length), "{slipped}");
        assert_ne!(slipped, "password", "a slip changes the word (a doubled letter is still a change)");
    }
    let text = "I changed my password at the bank, café crème";
    let slipped = with_slips(text, 2, &mut dice);
    assert!(slipped.ends_with("café crème"), "{slipped}");
    let changed = text.split(' ').zip(slipped.split(' ')).filter(|(a, b)| a != b).count();
    assert_eq!(changed, 2, "{slipped}");
}

/// Word by word, on the studied questions (labels play no part): how often a known word with
/// one slip is read as the word meant, by the slip's kind and the word's length.
/// `SLIPPED_WORDS=1 cargo test --lib slipped_words_read_as_meant -- --nocapture`
#[test]
fn slipped_words_read_as_meant() {
    if std::env::var("SLIPPED_WORDS").is_err() {
        return;
    }
    let index = shipped_index().unwrap();
    let search_index = index.search_index();
    let mut words: Vec<String> = questions()
        .into_iter()
        .filter(|question| question.set.trains())
        .flat_map(|question| {
            question.q.split(|c: char| !c.is_ascii_alphabetic()).map(str::to_ascii_lowercase).collect::<Vec<_>>()
        })
        .filter(|word| word.len() >= 4)
        .collect();
    words.sort();
    words.dedup();
    let mut dice = Dice(11);
    let mut tally: std::collections::BTreeMap<(Slip, usize), (usize, usize)> = Default::default();
    let mut lost = Vec::new();
    for word in words {
        let Some((term, 1.0)) = search_index.word_read_as(&word) else { continue };
        for kind in Slip::ALL {
            let at = dice.below(word.len());
            let slipped = slip_at(&word, at, kind, &mut dice);
            let read = search_index.word_read_as(&slipped).map(|(read, _)| read);
            let entry = tally.entry((kind, word.len().min(9))).or_default();
            entry.1 += 1;
            if read == Some(term) {
                entry.0 += 1;
            } else if lost.len() < 400 {
                lost.push(format!("{word} -> {slipped} ({})", if read.is_some() { "another word" } else { "unread" }));
            }
        }
    }
    for ((kind, length), (kept, all)) in tally {
        println!("{kind:?}, length {length}: {kept} of {all}");
    }
    println!("{}", lost.join("\n"));
}
