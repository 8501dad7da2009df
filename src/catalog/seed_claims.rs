//! The seed documents' claims (`catalog/seed-claims.toml`) checked against the shipped catalogue,
//! so an edit that drops a seed's cause or step, or the reason we decline one, fails a test that
//! names the claim.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;

use super::code::Code;
use super::load::Catalog;
use super::model::Entry;

const CLAIMS: &str = include_str!("../../catalog/seed-claims.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimsFile {
    seed: Vec<Seed>,
    claim: Vec<Claim>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Seed {
    file: String,
    #[allow(dead_code)]
    about: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Cause,
    Step,
    Prevention,
    Meaning,
}

/// The entry text a represented claim is looked for in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Field {
    Causes,
    Steps,
    Prevention,
    AgentNotes,
    Meaning,
    UserMessage,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Claim {
    id: String,
    seed: String,
    kind: Kind,
    says: String,
    entry: Option<u32>,
    field: Option<Field>,
    #[serde(default)]
    first: bool,
    declined: Option<u32>,
    contrary_source: Option<String>,
    words: Vec<String>,
    #[allow(dead_code)]
    note: Option<String>,
}

fn claims() -> ClaimsFile {
    toml::from_str(CLAIMS).unwrap_or_else(|error| panic!("catalog/seed-claims.toml: {error}"))
}

fn shipped() -> Catalog {
    Catalog::shipped().unwrap_or_else(|errors| panic!("{errors}"))
}

fn fold(text: &str) -> String {
    text.replace('\u{2019}', "'").to_lowercase()
}

fn contains_all(text: &str, words: &[String]) -> bool {
    let text = fold(text);
    words.iter().all(|word| text.contains(&fold(word)))
}

/// The items a field holds: one per list item, or the whole text.
fn items(entry: &Entry, field: Field) -> Vec<&str> {
    match field {
        Field::Causes => entry.causes.iter().map(String::as_str).collect(),
        Field::Steps => entry.steps.iter().map(String::as_str).collect(),
        Field::Prevention => entry.prevention.iter().map(String::as_str).collect(),
        Field::AgentNotes => vec![entry.agent_notes.as_str()],
        Field::Meaning => vec![entry.meaning.as_str()],
        Field::UserMessage => vec![entry.user_message.as_str()],
    }
}

fn entry(catalog: &Catalog, code: u32) -> Result<&Entry, String> {
    catalog.entries.get(&Code::new(code)).ok_or_else(|| format!("entry {code} does not exist"))
}

/// What is wrong with one claim against the catalogue, if anything.
fn check(claim: &Claim, catalog: &Catalog) -> Result<(), String> {
    if claim.says.trim().is_empty() {
        return Err("needs `says`, the claim in our words".to_owned());
    }
    if claim.words.is_empty() || claim.words.iter().any(|word| word.trim().is_empty()) {
        return Err("needs words to look for".to_owned());
    }
    match (claim.entry, claim.declined) {
        (Some(code), None) => {
            let Some(field) = claim.field else { return Err("a represented claim needs `field`".to_owned()) };
            let entry = entry(catalog, code)?;
            let items = items(entry, field);
            let found = items.iter().position(|item| contains_all(item, &claim.words));
            match found {
                None => Err(format!("entry {code} has no {field:?} item containing all of {:?}", claim.words)),
                Some(index) if claim.first && index != 0 => Err(format!(
                    "entry {code}: {:?} are in {field:?} item {} but must be in the first",
                    claim.words,
                    index + 1
                )),
                Some(_) => Ok(()),
            }
        }
        (None, Some(code)) => {
            let entry = entry(catalog, code)?;
            if !contains_all(&entry.agent_notes, &claim.words) {
                return Err(format!(
                    "entry {code}'s agent_notes do not explain the decline with all of {:?}",
                    claim.words
                ));
            }
            let Some(source) = &claim.contrary_source else {
                return Err("a declined claim needs `contrary_source`".to_owned());
            };
            if entry.sources.iter().any(|cited| &cited.url == source) {
                Ok(())
            } else {
                Err(format!("entry {code} does not cite the contrary source {source}"))
            }
        }
        _ => Err("needs exactly one of `entry` (represented) or `declined`".to_owned()),
    }
}

/// Every problem in the claims list, each naming its claim.
fn problems(file: &ClaimsFile, catalog: &Catalog) -> Vec<String> {
    let seeds: HashSet<&str> = file.seed.iter().map(|seed| seed.file.as_str()).collect();
    let mut ids = HashSet::new();
    let mut problems = Vec::new();
    for claim in &file.claim {
        if !ids.insert(claim.id.as_str()) {
            problems.push(format!("claim {}: id used twice", claim.id));
        }
        if !seeds.contains(claim.seed.as_str()) {
            problems.push(format!("claim {}: seed {} is not listed under [[seed]]", claim.id, claim.seed));
        }
        if let Err(problem) = check(claim, catalog) {
            problems.push(format!("claim {} ({}): {problem}", claim.id, claim.seed));
        }
    }
    for seed in &file.seed {
        if !file.claim.iter().any(|claim| claim.seed == seed.file) {
            problems.push(format!("seed {} has no claims", seed.file));
        }
    }
    problems
}

#[test]
fn every_seed_claim_is_represented_or_declined_in_the_shipped_catalogue() {
    let file = claims();
    let problems = problems(&file, &shipped());
    assert!(problems.is_empty(), "seed claims not found in the catalogue:\n  {}", problems.join("\n  "));

    // Each seed's causes and steps are all listed, not only a token few.
    let mut per_seed: BTreeMap<(&str, Kind), usize> = BTreeMap::new();
    for claim in &file.claim {
        *per_seed.entry((claim.seed.as_str(), claim.kind)).or_default() += 1;
    }
    for seed in &file.seed {
        let steps = per_seed.get(&(seed.file.as_str(), Kind::Step)).copied().unwrap_or_default();
        assert!(steps >= 5, "{} lists {steps} steps", seed.file);
    }
    assert!(file.claim.len() >= 60, "{} claims", file.claim.len());
}

#[test]
fn a_claim_the_catalogue_lost_is_reported_by_its_id() {
    let mut file = claims();
    let catalog = shipped();
    let rename = file.claim.iter_mut().find(|claim| claim.id == "q324-step-rename-duplicates").unwrap();
    rename.words.push("a phrase no entry contains".to_owned());
    let disconnect = file.claim.iter_mut().find(|claim| claim.id == "q324-step-disconnect-reconnect").unwrap();
    disconnect.contrary_source = Some("https://example.com/not-cited".to_owned());
    let update_first = file.claim.iter_mut().find(|claim| claim.id == "q324-step-update-first").unwrap();
    update_first.words = vec!["remap flow".to_owned()];

    let problems = problems(&file, &catalog).join("\n");
    assert!(problems.contains("claim q324-step-rename-duplicates") && problems.contains("no Steps item"), "{problems}");
    assert!(
        problems.contains("claim q324-step-disconnect-reconnect")
            && problems.contains("does not cite the contrary source"),
        "{problems}"
    );
    assert!(
        problems.contains("claim q324-step-update-first") && problems.contains("must be in the first"),
        "{problems}"
    );
}
