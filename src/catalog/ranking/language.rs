//! How search reads a text, entries and questions alike: words, stems, denials ("I did not change
//! my password"), the concepts of `catalog/synonyms.toml` (several phrasings of one cause), and
//! misspelt words in questions. Every word becomes a number once, when the index is built, so
//! reading a question is a few hash lookups per word.

use std::collections::HashMap;

use rust_stemmers::{Algorithm, Stemmer};

use super::super::model::Actor;

mod roles;
mod spelling;
mod synonyms;
mod unspaced;
mod words;
use spelling::Spelling;
pub(super) use synonyms::Synonyms;
use unspaced::UnspacedWords;
pub(super) use words::composed;
use words::words;

pub(super) type TermId = u32;

/// A question's word that no entry and no concept uses.
pub(super) const UNKNOWN: TermId = TermId::MAX;

/// A concept's parts must lie within this many words of each other ("reset" near "password").
const WINDOW: usize = 6;

/// How much a word counts as itself when a concept also stands for it.
const SYNONYM_LITERAL: f32 = 0.5;

/// How much a concept of several parts counts against a word.
const COMPOUND: f32 = 2.0;

/// How much a misspelt word counts against a word typed right.
const CORRECTED: f32 = 0.7;

const STOP: u16 = 1;
const CUE: u16 = 2;
const RULED_OUT: u16 = 4;
const DETERMINER: u16 = 8;
const BLAME: u16 = 16;
const BREAK: u16 = 32;
const REPORTING: u16 = 64;
const ATTEMPT: u16 = 128;
const RECIPIENT: u16 = 256;
const CUE_AFTER: u16 = 512;

/// How much a word counts when it only says what was tried.
const ATTEMPTED: f32 = 0.5;

/// One word of a text, as a term.
#[derive(Debug, Clone, Copy)]
pub(super) struct Token {
    term: TermId,
    /// Words separated by punctuation are in different clauses; a denial stops at the clause.
    clause: u32,
    weight: f32,
    /// For a word the lexicon does not know as typed (unknown, or read as a misspelling), its
    /// [`Prefix`]: what the labelled examples can still learn from it.
    unread: Option<Prefix>,
}

impl Token {
    pub(super) fn is_unknown(&self) -> bool {
        self.term == UNKNOWN
    }

    /// The term this word was read as, and how much it counts (less when read as a misspelling).
    #[cfg(test)]
    pub(super) fn term_and_weight(&self) -> (TermId, f32) {
        (self.term, self.weight)
    }
}

/// The first [`PREFIX_CHARS`] letters of a word no entry or concept knows. Most of the languages
/// the questions come in inflect their words ("hasło", "hasła", "hasłem"), and cutting a word to
/// its first letters is the stemmer that needs no language: the labelled examples learn which
/// entries such prefixes point to, where no translation was written for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Prefix(u64);

/// How many letters of an unread word make its [`Prefix`].
const PREFIX_CHARS: usize = 5;

/// Words shorter than this ("na", "de", "og") are mostly the other languages' small words.
const PREFIX_SHORTEST: usize = 3;

impl Prefix {
    fn of(word: &str) -> Option<Self> {
        use std::hash::{Hash, Hasher};
        if word.chars().count() < PREFIX_SHORTEST || word.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let prefix: String = word.chars().take(PREFIX_CHARS).collect();
        // Fixed keys: the index and every question it reads hash a prefix alike.
        let mut hasher = std::hash::DefaultHasher::new();
        prefix.hash(&mut hasher);
        Some(Self(hasher.finish()))
    }
}

/// What a text says, for scoring: every counted term (words and the concepts that fired, with
/// their weights) and the words alone in order (for adjacent pairs and whole phrases).
#[derive(Debug, Default)]
pub(super) struct Reading {
    pub(super) terms: Vec<(TermId, f32)>,
    pub(super) words: Vec<TermId>,
    /// Whether a concept that names a cause fired: every concept of several parts ("password"
    /// near "reset") and those marked `cause` ("locked", "confirm my identity").
    pub(super) names_a_cause: bool,
    /// The prefixes of the words not read as themselves, for the labelled examples only: no
    /// entry's text holds them.
    pub(super) unread: Vec<Prefix>,
}

#[derive(Debug)]
struct Phrase {
    terms: Box<[TermId]>,
    concept: usize,
    part: usize,
    /// A side named by pronoun ("their end"): whose it is, the party named before it decides.
    pronoun: bool,
}

#[derive(Debug)]
struct Concept {
    term: TermId,
    parts: usize,
    cause: bool,
    /// The concepts a concept of several parts names with `@`: their words stay theirs too.
    references: Vec<usize>,
}

#[derive(Debug, Clone, Copy)]
struct Match {
    concept: usize,
    part: usize,
    start: usize,
    end: usize,
    pronoun: bool,
}

#[derive(Debug, Default)]
pub(super) struct Lexicon {
    unstemmed: Vec<String>,
    stems: HashMap<Box<str>, TermId>,
    /// Lowercased words already seen, with their stem's term: a known word is not stemmed again.
    surface: HashMap<Box<str>, TermId>,
    /// Words of other languages, each with the term of the English word that means the same; read
    /// so in questions and in concepts' phrases (`catalog/synonyms.toml`, `[words]`).
    translations: HashMap<Box<str>, TermId>,
    /// The words of the concepts, translations and denials written in Chinese, Japanese, Korean or
    /// Thai, where a text's words are found by these rather than by its spaces.
    unspaced: UnspacedWords,
    flags: Vec<u16>,
    phrases: Vec<Phrase>,
    phrases_by_first: HashMap<TermId, Vec<usize>>,
    concepts: Vec<Concept>,
    /// For "their end": each concept that names a party, with the who-acts concept of its side.
    pronoun_parties: Vec<(usize, usize)>,
    /// Who-acts concepts: the actor, the concept, and whether a named cause overrides it.
    actors: Vec<(Actor, TermId, bool)>,
    /// The entries' words, for reading a misspelt one as the word meant.
    spelling: Spelling,
    /// In how many entries a term occurs: a correction goes to the likelier word.
    document_frequency: Vec<u32>,
}

/// A text's words as tokens, each word's term and weight from `term_of`.
fn tokens(words: Vec<(String, u32)>, mut term_of: impl FnMut(&str) -> (TermId, f32)) -> Vec<Token> {
    words
        .into_iter()
        .map(|(word, clause)| {
            let (term, weight) = term_of(&word);
            let unread = if weight < 1.0 { Prefix::of(&word) } else { None };
            Token { term, clause, weight, unread }
        })
        .collect()
}

fn stemmer() -> Stemmer {
    Stemmer::create(Algorithm::English)
}

impl Lexicon {
    fn add_phrase(&mut self, stemmer: &Stemmer, text: &str, concept: usize, part: usize) {
        let terms: Box<[TermId]> = words(text)
            .iter()
            .map(|(word, _)| match self.translations.get(word.as_str()) {
                Some(&term) => term,
                None => self.intern_word(stemmer, word),
            })
            .collect();
        if let Some(&first) = terms.first() {
            self.phrases_by_first.entry(first).or_default().push(self.phrases.len());
            self.phrases.push(Phrase { terms, concept, part, pronoun: false });
        }
    }

    fn intern_stem(&mut self, stem: &str) -> TermId {
        if let Some(&term) = self.stems.get(stem) {
            return term;
        }
        let term = self.flags.len() as TermId;
        self.stems.insert(stem.into(), term);
        self.flags.push(0);
        self.document_frequency.push(0);
        term
    }

    fn intern_word(&mut self, stemmer: &Stemmer, word: &str) -> TermId {
        if let Some(&term) = self.surface.get(word) {
            return term;
        }
        let term = if self.unstemmed.iter().any(|kept| kept == word) {
            self.intern_stem(word)
        } else {
            self.intern_stem(&stemmer.stem(word))
        };
        self.surface.insert(word.into(), term);
        term
    }

    /// The tokens of an entry's text, every word becoming a term.
    pub(super) fn intern(&mut self, text: &str) -> Vec<Token> {
        let stemmer = stemmer();
        tokens(self.words(text), |word| (self.intern_word(&stemmer, word), 1.0))
    }

    /// A text's lowercased words with their clauses, runs of unspaced scripts cut at the words
    /// the lexicon knows.
    fn words(&self, text: &str) -> Vec<(String, u32)> {
        let mut words = words(text);
        if words.iter().any(|(word, _)| UnspacedWords::holds_any(word)) {
            words = words
                .into_iter()
                .flat_map(|(word, clause)| self.unspaced.split(&word).into_iter().map(move |piece| (piece, clause)))
                .collect();
        }
        words
    }

    /// The party a who-acts concept points at, in a question that does or does not name a cause.
    pub(super) fn actor_of(&self, term: TermId, names_a_cause: bool) -> Option<Actor> {
        self.actors
            .iter()
            .find(|(_, known, _)| *known == term)
            .filter(|(_, _, unless_a_cause)| !(names_a_cause && *unless_a_cause))
            .map(|(actor, _, _)| *actor)
    }

    /// Whether `term` is a bare symptom ("stopped updating") that a named cause explains: in
    /// "I changed my password and it stopped updating" the password is the diagnosis and the
    /// stall only its consequence.
    pub(super) fn yields_to_a_named_cause(&self, term: TermId) -> bool {
        self.actors.iter().any(|(_, known, unless_a_cause)| *known == term && *unless_a_cause)
    }

    pub(super) fn term_count(&self) -> usize {
        self.flags.len()
    }

    /// Called once every entry is interned: the misspelling tables cover the entries' words.
    pub(super) fn finish(&mut self, document_frequency: Vec<u32>) {
        self.document_frequency = document_frequency;
        let known = self.surface.iter().filter(|(word, term)| {
            !self.has(**term, STOP) && word.chars().count() >= 4 && word.chars().all(char::is_alphabetic)
        });
        self.spelling = Spelling::new(known.map(|(word, term)| (word.clone(), *term)));
    }

    /// Every word's stem, known to the entries or not: for the ranking experiments.
    #[cfg(test)]
    pub(super) fn raw_stems(&self, text: &str) -> Vec<String> {
        let stemmer = stemmer();
        words(text).into_iter().map(|(word, _)| stemmer.stem(&word).into_owned()).collect()
    }

    #[cfg(test)]
    pub(super) fn name(&self, term: TermId) -> String {
        self.stems
            .iter()
            .find(|(_, known)| **known == term)
            .map_or_else(|| "?".to_owned(), |(stem, _)| stem.to_string())
    }

    fn has(&self, term: TermId, flag: u16) -> bool {
        self.flags.get(term as usize).is_some_and(|flags| flags & flag != 0)
    }

    /// The tokens of a question: known words as they are, misspelt ones corrected (and counting
    /// less), unknown ones kept as placeholders so that denials still see them.
    pub(super) fn look_up(&self, text: &str) -> Vec<Token> {
        let stemmer = stemmer();
        tokens(self.words(text), |word| self.term_of(&stemmer, word))
    }

    /// [`Lexicon::look_up`] for many texts at once, each distinct word looked up once: the
    /// labelled examples repeat their words, and a word no entry knows goes through the
    /// misspelling search, which was a third of building the index (session 26).
    pub(super) fn look_up_all<'a>(&self, texts: impl IntoIterator<Item = &'a str>) -> Vec<Vec<Token>> {
        let stemmer = stemmer();
        let mut seen: HashMap<String, (TermId, f32)> = HashMap::new();
        let mut term_of = |word: &str| match seen.get(word) {
            Some(&found) => found,
            None => *seen.entry(word.to_owned()).or_insert_with(|| self.term_of(&stemmer, word)),
        };
        texts.into_iter().map(|text| tokens(self.words(text), &mut term_of)).collect()
    }

    fn term_of(&self, stemmer: &Stemmer, word: &str) -> (TermId, f32) {
        if let Some(&term) = self.translations.get(word).or_else(|| self.surface.get(word)) {
            return (term, 1.0);
        }
        if let Some(&term) = self.stems.get(stemmer.stem(word).as_ref()) {
            return (term, 1.0);
        }
        self.correction(word).map_or((UNKNOWN, 0.0), |term| (term, CORRECTED))
    }

    fn correction(&self, word: &str) -> Option<TermId> {
        let known_word = |candidate: &str| self.surface.get(candidate).copied().filter(|&term| !self.has(term, STOP));
        self.spelling.correct(word, known_word, |term| self.frequency(term))
    }

    fn frequency(&self, term: TermId) -> u32 {
        self.document_frequency.get(term as usize).copied().unwrap_or(0)
    }

    /// What the tokens say: content words not denied, and every concept whose phrases occur
    /// (undenied, and close enough together when it has several parts).
    pub(super) fn read(&self, tokens: &[Token]) -> Reading {
        let matches = self.phrase_matches(tokens);
        let denied = self.denied(tokens, &matches);
        // A phrase holding a denial speaks only as its concept: "not accepted" is not
        // "accepted". A word one of several synonyms stands for counts mostly as the concept:
        // "refresh" and "sync" are one thing, whichever an entry's title happens to use.
        let holds_denial = |m: &Match| tokens[m.start..m.end].iter().any(|token| self.has(token.term, CUE));
        let mut spoken_for = vec![false; tokens.len()];
        let mut in_synonym = vec![false; tokens.len()];
        for m in &matches {
            if holds_denial(m) {
                spoken_for[m.start..m.end].iter_mut().for_each(|flag| *flag = true);
            } else {
                in_synonym[m.start..m.end].iter_mut().for_each(|flag| *flag = true);
            }
        }
        // "nothing changed" says nothing changed: a phrase inside a longer denying one is not said.
        let inside_denial = |m: &Match| {
            !holds_denial(m)
                && matches.iter().any(|outer| {
                    outer.start <= m.start
                        && m.end <= outer.end
                        && outer.end - outer.start > m.end - m.start
                        && holds_denial(outer)
                })
        };
        let mut reading = Reading::default();
        let attempted = self.attempted(tokens);
        let tried = |start: usize, end: usize| if attempted[start..end].iter().all(|&a| a) { ATTEMPTED } else { 1.0 };
        for (position, token) in tokens.iter().enumerate() {
            if token.term != UNKNOWN && !denied[position] && !spoken_for[position] && !self.has(token.term, STOP | CUE)
            {
                let weight = if in_synonym[position] { token.weight * SYNONYM_LITERAL } else { token.weight };
                let weight = weight * tried(position, position + 1);
                reading.terms.push((token.term, weight));
                reading.words.push(token.term);
            }
            if let Some(prefix) = token.unread.filter(|_| !denied[position]) {
                reading.unread.push(prefix);
            }
        }
        let live: Vec<Match> = matches
            .iter()
            .filter(|m| !denied[m.start..m.end].iter().any(|&denied| denied) && !inside_denial(m))
            .filter(|m| !self.is_messenger(tokens, m))
            .map(|m| self.resolve_pronoun(m, &matches))
            .collect();
        let mine = |index: usize| {
            let mut mine: Vec<&Match> = live.iter().filter(|m| m.concept == index).collect();
            // Phrases that stem alike ("expire", "expired", "expires") match the same words once,
            // and so do phrases of one part that share words ("a text" and "text message"): the
            // longest is kept.
            mine.sort_by_key(|m| (std::cmp::Reverse(m.end - m.start), m.start, m.part));
            let mut kept: Vec<&Match> = Vec::with_capacity(mine.len());
            for m in mine {
                if !kept.iter().any(|other| other.part == m.part && other.start < m.end && m.start < other.end) {
                    kept.push(m);
                }
            }
            kept.sort_by_key(|m| (m.start, m.end, m.part));
            kept
        };
        // The words each concept of several parts was made of, where it fired.
        let claimed: Vec<(usize, Vec<Match>)> = (0..self.concepts.len())
            .filter(|&index| self.concepts[index].parts > 1)
            .filter_map(|index| Some((index, all_parts_near(&mine(index), self.concepts[index].parts)?)))
            .collect();
        for (index, concept) in self.concepts.iter().enumerate() {
            let mut mine = mine(index);
            if concept.parts == 1 {
                mine.retain(|m| !self.claimed_by_another(index, m, &claimed));
            }
            if mine.is_empty() {
                continue;
            }
            // A concept of several parts ("password" near "reset") names a cause, not a topic;
            // so do those marked `cause`.
            let weights: Vec<f32> = if concept.parts == 1 {
                mine.iter().map(|m| tried(m.start, m.end)).collect()
            } else {
                claimed
                    .iter()
                    .filter(|(compound, _)| *compound == index)
                    .map(|(_, parts)| {
                        let all_tried = parts.iter().all(|part| tried(part.start, part.end) < 1.0);
                        COMPOUND * if all_tried { ATTEMPTED } else { 1.0 }
                    })
                    .collect()
            };
            reading.names_a_cause |= concept.cause && !weights.is_empty();
            for weight in weights {
                reading.terms.push((concept.term, weight));
            }
        }
        reading
    }

    /// Every concept phrase that occurs, except one inside a longer phrase of another concept:
    /// "shut down my account" says closed, not "down". A who-acts phrase says who, not what, so
    /// it hides nothing: "the bank is down" is still an outage. Nor does a part of a concept of
    /// several parts: "I changed" (who changed the password) still says "changed".
    fn phrase_matches(&self, tokens: &[Token]) -> Vec<Match> {
        let matches = self.all_phrase_matches(tokens);
        let hides_nothing = |m: &Match| {
            let concept = &self.concepts[m.concept];
            concept.parts > 1 || self.actors.iter().any(|(_, known, _)| *known == concept.term)
        };
        matches
            .iter()
            .filter(|m| {
                !matches.iter().any(|outer| {
                    outer.concept != m.concept
                        && !hides_nothing(outer)
                        && outer.start <= m.start
                        && m.end <= outer.end
                        && outer.end - outer.start > m.end - m.start
                })
            })
            .copied()
            .collect()
    }

    fn all_phrase_matches(&self, tokens: &[Token]) -> Vec<Match> {
        let mut matches = Vec::new();
        for (start, token) in tokens.iter().enumerate() {
            let Some(candidates) = self.phrases_by_first.get(&token.term) else { continue };
            for &index in candidates {
                let phrase = &self.phrases[index];
                let end = start + phrase.terms.len();
                if tokens.get(start..end).is_some_and(|span| span.iter().zip(&phrase.terms).all(|(t, p)| t.term == *p))
                {
                    let (concept, part, pronoun) = (phrase.concept, phrase.part, phrase.pronoun);
                    matches.push(Match { concept, part, start, end, pronoun });
                }
            }
        }
        matches
    }
}

/// One match of every part within [`WINDOW`] words, without sharing words, if there is one.
fn all_parts_near(matches: &[&Match], parts: usize) -> Option<Vec<Match>> {
    fn extend(matches: &[&Match], parts: usize, chosen: &mut Vec<Match>) -> bool {
        let part = chosen.len();
        if part == parts {
            return true;
        }
        for candidate in matches.iter().filter(|m| m.part == part) {
            let near = chosen.iter().all(|other| {
                candidate.start.abs_diff(other.start) <= WINDOW
                    && (candidate.end <= other.start || other.end <= candidate.start)
            });
            if near {
                chosen.push(**candidate);
                if extend(matches, parts, chosen) {
                    return true;
                }
                chosen.pop();
            }
        }
        false
    }
    let mut chosen = Vec::with_capacity(parts);
    extend(matches, parts, &mut chosen).then_some(chosen)
}

#[cfg(test)]
mod tests;
