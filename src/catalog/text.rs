//! Plain-text rendering for terminals (`feedwatch errors`).

use std::fmt::Write;

use super::code::Code;
use super::index::{CatalogIndex, MatchedBy, Resolution};
use super::search::{Hit, HitKind};

/// What `feedwatch errors <code>` prints, and whether the code was found.
pub fn lookup(index: &CatalogIndex, query: &str) -> (String, bool) {
    match index.resolve(query) {
        Resolution::Found { entry, matched } => {
            let mut out = String::new();
            if let MatchedBy::Alias(alias) = matched {
                let _ = writeln!(
                    out,
                    "{}:{} ({}) → {}",
                    alias.namespace, alias.alias.code, alias.alias.title, entry.entry.code
                );
                if let Some(note) = &alias.alias.note {
                    let _ = writeln!(out, "  note: {note}");
                }
                out.push('\n');
            }
            out.push_str(&describe(index, entry.entry.code));
            (out, true)
        }
        Resolution::Ambiguous(aliases) => {
            let mut out = format!("`{query}` is a code of several providers:\n");
            for alias in aliases {
                let _ = writeln!(
                    out,
                    "  {}:{}  {} → {}",
                    alias.namespace, alias.alias.code, alias.alias.title, alias.alias.canonical
                );
            }
            out.push_str("Look one up as namespace:code.\n");
            (out, true)
        }
        Resolution::NotFound { suggestions } => {
            let mut out = format!("No entry or alias matches `{query}`.\n");
            if !suggestions.is_empty() {
                let _ = writeln!(out, "Did you mean: {}?", suggestions.join(", "));
            }
            (out, false)
        }
    }
}

/// One entry, as a helpdesk agent reads it.
pub fn describe(index: &CatalogIndex, code: Code) -> String {
    let Some(stored) = index.entry(code) else { return String::new() };
    let entry = &stored.entry;
    let mut out = String::new();
    let _ = writeln!(out, "{} {} ({})", entry.code, entry.title, entry.reason);
    let retry = match (entry.category.not_a_failure(), &entry.retry_after, entry.retryable) {
        (Some(what), _, _) => what.to_owned(),
        (None, Some(delay), true) => format!("retryable, typically after {delay}"),
        _ => "not retryable until someone acts".to_owned(),
    };
    let _ = writeln!(
        out,
        "category {:?} · who acts: {:?} · {retry} · action: {:?}",
        entry.category, entry.actor, entry.action
    );
    let _ = writeln!(out, "\nTell the customer:\n  {}", entry.user_message);
    let _ = writeln!(out, "\nMeaning:\n  {}", entry.meaning);
    section(&mut out, "Likely causes", &entry.causes, false);
    section(&mut out, "Steps", &entry.steps, true);
    let _ = writeln!(out, "\nAgent notes:\n  {}", paragraphs(&entry.agent_notes).join("\n\n  "));
    section(&mut out, "Prevention", &entry.prevention, false);
    section(&mut out, "Before escalating, collect", &entry.escalation_evidence, false);
    let aliases: Vec<String> =
        index.aliases_of(code).iter().map(|alias| format!("{}:{}", alias.namespace, alias.alias.code)).collect();
    if !aliases.is_empty() {
        let _ = writeln!(out, "\nAliases: {}", aliases.join(", "));
    }
    if !entry.related.is_empty() {
        let related: Vec<String> = entry.related.iter().map(Code::to_string).collect();
        let _ = writeln!(out, "Related: {}", related.join(", "));
    }
    let sources: Vec<String> = entry
        .sources
        .iter()
        .map(|source| format!("  - {} <{}> ({:?})", source.title, source.url, source.confidence))
        .collect();
    let _ = writeln!(out, "Sources:\n{}", sources.join("\n"));
    out
}

/// A text's paragraphs: runs of lines separated by blank lines, each run joined into one line.
/// Long agent notes are written as several paragraphs (a blank line between them); the console
/// renders each as its own `<p>`, the CLI indents each, and the JSON keeps the text as written.
pub fn paragraphs(text: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            if !current.is_empty() {
                found.push(current.join(" "));
                current.clear();
            }
        } else {
            current.push(line);
        }
    }
    if !current.is_empty() {
        found.push(current.join(" "));
    }
    found
}

fn section(out: &mut String, title: &str, items: &[String], numbered: bool) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{title}:");
    for (number, item) in items.iter().enumerate() {
        if numbered {
            let _ = writeln!(out, "  {}. {item}", number + 1);
        } else {
            let _ = writeln!(out, "  - {item}");
        }
    }
}

/// What `feedwatch errors search <words>` prints.
pub fn search_results(index: &CatalogIndex, hits: &[Hit]) -> String {
    if hits.is_empty() {
        return "No entries match.\n".to_owned();
    }
    let mut out = String::new();
    for hit in hits {
        let Some(stored) = index.entry(hit.code) else { continue };
        let why = match &hit.kind {
            HitKind::Alias(alias) => format!(" (alias {}:{})", alias.namespace, alias.alias.code),
            HitKind::SimilarCode(code) => format!(" (similar to {code})"),
            _ => String::new(),
        };
        let _ = writeln!(out, "{:>5}  {}{why}", stored.entry.code, stored.entry.title);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::catalog::Catalog;

    #[test]
    fn paragraphs_are_the_runs_of_lines_between_blank_lines() {
        assert_eq!(paragraphs("One. Two."), ["One. Two."]);
        assert_eq!(paragraphs("One.\n\nTwo,\nthree.\r\n \r\nFour."), ["One.", "Two, three.", "Four."]);
        assert_eq!(paragraphs("\n\nOne.\n\n\n"), ["One."]);
        assert!(paragraphs(" \n ").is_empty());
    }

    /// Agents read the notes aloud and scan them during a call: a long note is split into
    /// paragraphs at its natural breaks, none of them a wall of text.
    #[test]
    fn no_paragraph_of_agent_notes_is_a_wall_of_text() {
        for entry in Catalog::shipped().unwrap().entries.values() {
            for paragraph in paragraphs(&entry.agent_notes) {
                let length = paragraph.chars().count();
                assert!(length <= 1000, "entry {}: a paragraph of {length} characters", entry.code);
            }
        }
    }
}
