//! How `catalog/synonyms.toml` is written and how it becomes a [`Lexicon`]: stopwords, the
//! words of denials and of who-acts cues, and the concepts (several phrasings of one cause), each
//! phrase interned as the terms the entries and questions are read in.

use std::collections::{BTreeMap, HashMap};

use rust_stemmers::Stemmer;
use serde::Deserialize;

use super::words::words;
use super::{
    ATTEMPT, BLAME, BREAK, CUE, CUE_AFTER, Concept, DETERMINER, Lexicon, RECIPIENT, REPORTING, RULED_OUT, STOP, stemmer,
};
use crate::catalog::model::Actor;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::catalog::ranking) struct Synonyms {
    stopwords: Vec<String>,
    /// Words the stemmer would merge with a word of another meaning ("activity", "activate").
    #[serde(default)]
    unstemmed: Vec<String>,
    negation: NegationWords,
    /// Verbs that pass a message on ("the aggregator says ..."): a party named just before one
    /// is the messenger, not the one who must act.
    #[serde(default)]
    reporting: Vec<String>,
    /// Words before a party that make it the one acted for or on ("stop sharing for the
    /// aggregator"): a party named after one of these is not who must act.
    #[serde(default)]
    recipients: Vec<String>,
    #[serde(default)]
    pronoun: Option<PronounSpec>,
    /// Words that say what was tried ("I tried to reconnect but it times out"): what follows,
    /// up to the end of the clause, is a remedy attempted, not the problem.
    #[serde(default)]
    attempts: Vec<String>,
    #[serde(default)]
    concept: Vec<ConceptSpec>,
    /// Words of other languages read as the English word that means the same ("konto" is
    /// "account"), so a question in German, French or Russian meets the entries' own words.
    #[serde(default)]
    words: BTreeMap<String, String>,
}

/// "Their end" is the side of whoever was named last before it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PronounSpec {
    phrases: Vec<String>,
    /// A concept that names a party, and the who-acts concept of its side.
    parties: Vec<(String, String)>,
    /// The side when no party was named before the phrase.
    default: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NegationWords {
    cues: Vec<String>,
    /// Denials that follow the action they deny, as Japanese and Korean verb endings do.
    #[serde(default)]
    cues_after: Vec<String>,
    ruled_out: Vec<String>,
    determiners: Vec<String>,
    blame: Vec<String>,
    clause_breaks: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConceptSpec {
    name: String,
    #[serde(default)]
    means: Vec<String>,
    #[serde(default)]
    all: Vec<Vec<String>>,
    actor: Option<Actor>,
    /// The actor is a default for when the question names no cause: "it stopped updating" is
    /// most often the bank's side, "I changed my password and it stopped updating" is not.
    #[serde(default)]
    actor_unless_a_cause_is_named: bool,
    /// Saying it names a cause ("locked", "closed", "confirm my identity"), as a concept of
    /// several parts always does; a topic ("password", "bank", "update") names none.
    #[serde(default)]
    cause: bool,
}

impl Synonyms {
    pub(in crate::catalog::ranking) fn parse(text: &str) -> Result<Self, String> {
        let synonyms: Self = toml::from_str(text).map_err(|error| error.to_string())?;
        for (word, english) in &synonyms.words {
            if words(word).len() != 1 || words(english).len() != 1 {
                return Err(format!("words: {word} = {english}: one word on each side"));
            }
        }
        for concept in &synonyms.concept {
            if concept.means.is_empty() == concept.all.is_empty() {
                return Err(format!("concept {}: give either `means` or `all`", concept.name));
            }
            for phrase in concept.all.iter().flatten() {
                if let Some(name) = phrase.strip_prefix('@')
                    && !synonyms.concept.iter().any(|other| other.name == name && !other.means.is_empty())
                {
                    return Err(format!("concept {}: no concept {name} with `means`", concept.name));
                }
            }
        }
        Ok(synonyms)
    }
}

impl Lexicon {
    pub(in crate::catalog::ranking) fn new(synonyms: &Synonyms) -> Self {
        let mut lexicon = Self { unstemmed: synonyms.unstemmed.clone(), ..Self::default() };
        let stemmer = stemmer();
        // First, so that a concept's phrase reads the word as a question does. Entries' own text
        // keeps its words as written: an English entry quoting a German reply ("Konto gesperrt")
        // is not made to say "account" once more, which would move every English question's
        // weights.
        let phrases =
            synonyms.concept.iter().flat_map(|concept| concept.means.iter().chain(concept.all.iter().flatten()));
        let negation = &synonyms.negation;
        let denials = negation.cues.iter().chain(&negation.cues_after).chain(&negation.ruled_out);
        for text in synonyms.words.keys().chain(phrases).chain(denials) {
            for (word, _) in words(text) {
                lexicon.unspaced.learn(&word);
            }
        }
        for (word, english) in &synonyms.words {
            let term = lexicon.intern_word(&stemmer, &words(english)[0].0);
            lexicon.translations.insert(words(word)[0].0.as_str().into(), term);
        }
        let negation = &synonyms.negation;
        for (list, flag) in [
            (&synonyms.stopwords, STOP),
            (&negation.cues, CUE),
            (&negation.cues_after, CUE_AFTER),
            (&negation.ruled_out, RULED_OUT),
            (&negation.determiners, DETERMINER),
            (&negation.blame, BLAME),
            (&negation.clause_breaks, BREAK),
            (&synonyms.reporting, REPORTING),
            (&synonyms.recipients, RECIPIENT),
            (&synonyms.attempts, ATTEMPT),
        ] {
            for word in list {
                let term = lexicon.intern_word(&stemmer, word);
                lexicon.flags[term as usize] |= flag;
            }
        }
        let means: HashMap<&str, &[String]> = synonyms
            .concept
            .iter()
            .filter(|concept| !concept.means.is_empty())
            .map(|concept| (concept.name.as_str(), concept.means.as_slice()))
            .collect();
        for spec in &synonyms.concept {
            let term = lexicon.intern_stem(&format!("#{}", spec.name));
            let concept = lexicon.concepts.len();
            let parts: Vec<&[String]> = if spec.all.is_empty() {
                vec![spec.means.as_slice()]
            } else {
                spec.all.iter().map(Vec::as_slice).collect()
            };
            let references = spec
                .all
                .iter()
                .flatten()
                .filter_map(|phrase| phrase.strip_prefix('@'))
                .filter_map(|name| synonyms.concept.iter().position(|other| other.name == name))
                .collect();
            lexicon.concepts.push(Concept {
                term,
                parts: parts.len(),
                cause: spec.cause || parts.len() > 1,
                references,
            });
            if let Some(actor) = spec.actor {
                lexicon.actors.push((actor, term, spec.actor_unless_a_cause_is_named));
            }
            for (part, phrases) in parts.into_iter().enumerate() {
                for phrase in phrases {
                    let expanded = match phrase.strip_prefix('@') {
                        Some(name) => means.get(name).copied().unwrap_or_default(),
                        None => std::slice::from_ref(phrase),
                    };
                    for text in expanded {
                        lexicon.add_phrase(&stemmer, text, concept, part);
                    }
                }
            }
        }
        if let Some(pronoun) = &synonyms.pronoun {
            lexicon.add_pronouns(&stemmer, synonyms, pronoun);
        }
        lexicon
    }

    /// The pronoun phrases, read as the default side until a party named before them says whose.
    fn add_pronouns(&mut self, stemmer: &Stemmer, synonyms: &Synonyms, pronoun: &PronounSpec) {
        let index = |name: &str| synonyms.concept.iter().position(|concept| concept.name == name);
        self.pronoun_parties =
            pronoun.parties.iter().filter_map(|(party, side)| Some((index(party)?, index(side)?))).collect();
        let Some(default) = index(&pronoun.default) else { return };
        for text in &pronoun.phrases {
            self.add_phrase(stemmer, text, default, 0);
            if let Some(phrase) = self.phrases.last_mut() {
                phrase.pronoun = true;
            }
        }
    }
}
