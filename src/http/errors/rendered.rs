//! Each catalogue entry's lookup and search bodies, rendered once per index (and compressed
//! once, on first use): a lookup copies bytes rather than serialising ten kilobytes per request.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use axum::http::HeaderValue;

use super::ErrorEntry;
use super::views::{HitEntry, HitMatch, Matched};
use crate::catalog::index::MatchedBy;
use crate::catalog::search::{Hit, HitKind};
use crate::catalog::{CatalogIndex, Code, NamespacedAlias};
use crate::http::encoding::Coding;
use crate::http::encoding::gzip::{self, Closing, Opening};
use crate::http::precondition::{Counter, coded_etag};

/// Each entry's `ErrorEntry` JSON, rendered once per catalogue index: a lookup then copies
/// bytes instead of cloning and serialising ten kilobytes of text and aliases per request.
#[derive(Debug, Default)]
pub struct RenderedEntries {
    /// The index the bodies were rendered from (its generation), and the bodies by code.
    cache: std::sync::RwLock<Option<(u64, Bodies)>>,
}

type Bodies = Arc<HashMap<Code, Rendered>>;

/// One entry rendered once per index: the entry object, whole lookup responses for the two
/// matches that need no alias (those lookups answer with a shared buffer and copy nothing), its
/// ETags, its fields as a search hit, without braces (a search copies them and adds how it
/// matched), and its lookup bodies in gzip.
#[derive(Debug)]
pub(super) struct Rendered {
    entry: Vec<u8>,
    by_code: Bytes,
    by_reason: Bytes,
    etag: HeaderValue,
    gzip_etag: HeaderValue,
    hit: Vec<u8>,
    /// Compressed by the first lookup of this entry that accepts gzip, not when the index is
    /// rendered: compressing every entry there would hold up the first lookups after each
    /// reload by milliseconds (bench/README, session 15), and most entries are seldom looked up.
    gzip: OnceLock<Gzipped>,
}

/// An entry's lookup bodies in gzip. The entry's fields are compressed once and each body's own
/// `matched` put before them (`encoding::gzip`). An alias's `matched` carries its title, note and
/// sources, hundreds of bytes, so it is compressed too rather than sent as it is; that is done
/// the first time the alias is looked up in gzip, since an entry has up to 33 aliases and a
/// lookup by code should not wait for them all.
#[derive(Debug)]
struct Gzipped {
    fields: Closing,
    by_code: Bytes,
    by_reason: Bytes,
    /// In the order of the entry's aliases in the index.
    by_alias: Box<[OnceLock<Bytes>]>,
}

impl Gzipped {
    fn new(entry: &[u8], aliases: usize) -> Self {
        let fields = Closing::new(after_brace(entry));
        Self {
            by_code: member(&BY_CODE, &fields),
            by_reason: member(&BY_REASON, &fields),
            by_alias: (0..aliases).map(|_| OnceLock::new()).collect(),
            fields,
        }
    }

    /// None for an alias not among `aliases`, the entry's in the index it was rendered from.
    fn by_alias(&self, aliases: &[NamespacedAlias], alias: &NamespacedAlias) -> Option<Bytes> {
        let same = |known: &NamespacedAlias| known.namespace == alias.namespace && known.alias.code == alias.alias.code;
        let cell = self.by_alias.get(aliases.iter().position(same)?)?;
        Some(cell.get_or_init(|| member(&by_alias(alias), &self.fields)).clone())
    }
}

fn member(matched: &Matched, fields: &Closing) -> Bytes {
    gzip::member(&Opening::new(&prefix(matched)), fields).into()
}

const BY_CODE: Matched = Matched { by: "code", alias: None };
const BY_REASON: Matched = Matched { by: "reason", alias: None };

impl Rendered {
    fn new(entry: Vec<u8>, hit: &[u8], revision: i32) -> Self {
        let by_code = splice(&BY_CODE, &entry).into();
        let by_reason = splice(&BY_REASON, &entry).into();
        let hit = hit.get(1..hit.len().saturating_sub(1)).unwrap_or_default().to_vec();
        Self {
            entry,
            by_code,
            by_reason,
            etag: coded_etag(Counter::Revision, revision, Coding::Identity),
            gzip_etag: coded_etag(Counter::Revision, revision, Coding::Gzip),
            hit,
            gzip: OnceLock::new(),
        }
    }

    /// The body of a lookup that matched this entry so, in `coding`; `aliases` are the entry's
    /// in the index it was rendered from. None for an alias that is not among them.
    pub(super) fn body(&self, matched: &MatchedBy, coding: Coding, aliases: &[NamespacedAlias]) -> Option<Bytes> {
        let gzipped = || self.gzip.get_or_init(|| Gzipped::new(&self.entry, aliases.len()));
        match (coding, matched) {
            (Coding::Identity, MatchedBy::Code) => Some(self.by_code.clone()),
            (Coding::Identity, MatchedBy::Reason) => Some(self.by_reason.clone()),
            (Coding::Identity, MatchedBy::Alias(alias)) => Some(splice(&by_alias(alias), &self.entry).into()),
            (Coding::Gzip, MatchedBy::Code) => Some(gzipped().by_code.clone()),
            (Coding::Gzip, MatchedBy::Reason) => Some(gzipped().by_reason.clone()),
            (Coding::Gzip, MatchedBy::Alias(alias)) => gzipped().by_alias(aliases, alias),
        }
    }

    pub(super) fn etag(&self, coding: Coding) -> HeaderValue {
        match coding {
            Coding::Identity => self.etag.clone(),
            Coding::Gzip => self.gzip_etag.clone(),
        }
    }
}

fn by_alias(alias: &NamespacedAlias) -> Matched {
    Matched { by: "alias", alias: Some(alias.into()) }
}

/// `ErrorLookup` is `matched` followed by the flattened `ErrorEntry`: the cached object spliced.
fn splice(matched: &Matched, entry: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(PREFIX_CAPACITY + entry.len());
    write_prefix(&mut body, matched);
    body.extend_from_slice(after_brace(entry));
    body
}

/// What a lookup's body has before the entry's fields, for a gzip member to write as it is.
fn prefix(matched: &Matched) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(PREFIX_CAPACITY);
    write_prefix(&mut prefix, matched);
    prefix
}

/// Room for `matched` with an alias and its note, so writing it seldom grows the buffer.
const PREFIX_CAPACITY: usize = 256;

/// `{"matched":…,`
fn write_prefix(body: &mut Vec<u8>, matched: &Matched) {
    body.extend_from_slice(b"{\"matched\":");
    // Serialising this small struct of strings into memory cannot fail.
    serde_json::to_writer(&mut *body, matched).unwrap_or(());
    body.push(b',');
}

/// The entry object's fields: what follows its opening brace.
fn after_brace(entry: &[u8]) -> &[u8] {
    entry.get(1..).unwrap_or_default()
}

impl RenderedEntries {
    /// `read` applied to the bodies rendered from `index`, under the cache's read lock: a lookup
    /// copies one body out and needs no reference to the whole map. `read` must not wait.
    pub(super) fn read<R>(&self, index: &CatalogIndex, read: impl FnOnce(&HashMap<Code, Rendered>) -> R) -> R {
        {
            let cache = self.cache.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((cached, bodies)) = cache.as_ref()
                && *cached == index.generation()
            {
                return read(bodies);
            }
        }
        read(&self.render(index))
    }

    /// Renders every entry of `index` and keeps the bodies for the lookups after this one.
    fn render(&self, index: &CatalogIndex) -> Bodies {
        let bodies: HashMap<Code, Rendered> = index
            .entries()
            .filter_map(|stored| {
                let body = serde_json::to_vec(&ErrorEntry::new(index, stored)).ok()?;
                let hit = serde_json::to_vec(&HitEntry::new(&stored.entry)).ok()?;
                Some((stored.entry.code, Rendered::new(body, &hit, stored.revision)))
            })
            .collect();
        let bodies = Arc::new(bodies);
        *self.cache.write().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((index.generation(), Arc::clone(&bodies)));
        bodies
    }
}

/// `SearchResults` for these hits, from the entries' pre-rendered hit fields: a search copies
/// bytes and serialises only how each hit matched.
pub(super) fn search_body(bodies: &HashMap<Code, Rendered>, hits: &[Hit]) -> Vec<u8> {
    let mut body = Vec::with_capacity(
        16 + hits.iter().filter_map(|hit| bodies.get(&hit.code)).map(|r| r.hit.len() + 64).sum::<usize>(),
    );
    body.extend_from_slice(b"{\"items\":[");
    for hit in hits {
        let Some(rendered) = bodies.get(&hit.code) else { continue };
        if body.last() == Some(&b'}') {
            body.push(b',');
        }
        body.push(b'{');
        body.extend_from_slice(&rendered.hit);
        let (matched_by, matched) = how_matched(&hit.kind);
        // Serialising this small struct of strings and a number cannot fail.
        let how = serde_json::to_vec(&HitMatch { matched_by, matched: matched.as_deref(), score: hit.score })
            .unwrap_or_default();
        body.push(b',');
        body.extend_from_slice(how.get(1..).unwrap_or_default());
    }
    body.extend_from_slice(b"]}");
    body
}

fn how_matched(kind: &HitKind) -> (&'static str, Option<String>) {
    match kind {
        HitKind::Code => ("code", None),
        HitKind::Reason => ("reason", None),
        HitKind::Alias(alias) => ("alias", Some(format!("{}:{}", alias.namespace, alias.alias.code))),
        HitKind::SimilarCode(code) => ("similar_code", Some(code.clone())),
        HitKind::Text => ("text", None),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::views::{SearchHit, SearchResults};
    use super::*;
    use crate::catalog;
    use crate::catalog::index::Filters;
    use crate::catalog::search::search;

    #[test]
    fn a_spliced_search_body_is_what_serialising_the_hits_gives() {
        let index = Arc::new(catalog::shipped_index().unwrap());
        let bodies = RenderedEntries::default().render(&index);
        for query in ["password changed", "102", "plaid:ITEM_LOGIN_REQUIRED", "ITEM_LOGIN_REQIRED", "", "402", "zzzz"] {
            let hits = search(&index, query, &Filters::default(), 100);
            let items = hits
                .iter()
                .map(|hit| {
                    let entry = &index.entry(hit.code).unwrap().entry;
                    let (matched_by, matched) = how_matched(&hit.kind);
                    SearchHit {
                        code: entry.code,
                        reason: entry.reason.clone(),
                        title: entry.title.clone(),
                        category: entry.category,
                        actor: entry.actor,
                        retryable: entry.retryable,
                        action: entry.action,
                        user_message: entry.user_message.clone(),
                        matched_by,
                        matched,
                        score: hit.score,
                    }
                })
                .collect();
            // Compared as the bytes on the wire read back: f32 scores print in their shortest form.
            let expected: serde_json::Value =
                serde_json::from_slice(&serde_json::to_vec(&SearchResults { items }).unwrap()).unwrap();
            let spliced: serde_json::Value = serde_json::from_slice(&search_body(&bodies, &hits)).unwrap();
            assert_eq!(spliced, expected, "{query}");
        }
    }

    fn gunzip(body: &[u8]) -> Vec<u8> {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(body), &mut text).unwrap();
        text
    }

    /// Every way a lookup can match each shipped entry.
    fn every_match(index: &CatalogIndex, code: Code) -> Vec<MatchedBy> {
        let aliases = index.aliases_of(code).iter().cloned().map(MatchedBy::Alias);
        [MatchedBy::Code, MatchedBy::Reason].into_iter().chain(aliases).collect()
    }

    #[test]
    fn every_gzip_lookup_body_is_its_identity_body_compressed() {
        let index = Arc::new(catalog::shipped_index().unwrap());
        let bodies = RenderedEntries::default().render(&index);
        for (code, rendered) in bodies.iter() {
            let aliases = index.aliases_of(*code);
            for matched in every_match(&index, *code) {
                let identity = rendered.body(&matched, Coding::Identity, aliases).unwrap();
                let gzip = rendered.body(&matched, Coding::Gzip, aliases).unwrap();
                assert!(
                    gzip.len() < identity.len() * 3 / 5,
                    "{code} {matched:?}: {} of {}",
                    gzip.len(),
                    identity.len()
                );
                assert_eq!(gunzip(&gzip), identity, "{code} {matched:?}");
            }
            let lookup: serde_json::Value = serde_json::from_slice(&rendered.by_code).unwrap();
            assert_eq!(lookup["matched"]["by"], "code");
            assert_eq!(lookup["entry"]["code"], code.get());
        }
    }

    #[test]
    fn an_alias_the_entry_was_not_rendered_with_has_no_gzip_body() {
        let index = Arc::new(catalog::shipped_index().unwrap());
        let bodies = RenderedEntries::default().render(&index);
        let (code, other) = (Code::new(102), Code::new(103));
        let stranger = MatchedBy::Alias(index.aliases_of(other)[0].clone());
        assert_eq!(bodies[&code].body(&stranger, Coding::Gzip, index.aliases_of(code)), None);
    }

    #[test]
    fn the_two_representations_have_different_etags_naming_one_revision() {
        let index = Arc::new(catalog::shipped_index().unwrap());
        let bodies = RenderedEntries::default().render(&index);
        let rendered = &bodies[&Code::new(102)];
        assert_eq!(rendered.etag(Coding::Identity), "\"r1\"");
        assert_eq!(rendered.etag(Coding::Gzip), "\"r1-gzip\"");
    }

    /// The figures behind `Rendered::gzip` (bench/README, session 15): rendering the shipped
    /// catalogue, what compressing there would add, and what the first gzip lookups cost. In
    /// release: `cargo test --release --lib rendering_cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn rendering_cost() {
        let index = Arc::new(catalog::shipped_index().unwrap());
        let rounds = 20;
        let time = |work: &dyn Fn()| {
            work();
            let start = std::time::Instant::now();
            (0..rounds).for_each(|_| work());
            start.elapsed() / rounds
        };
        let render = || RenderedEntries::default().render(&index);
        let every_body = |compress: &dyn Fn(&Rendered, &MatchedBy, &[NamespacedAlias])| {
            for (code, rendered) in render().iter() {
                every_match(&index, *code)
                    .iter()
                    .for_each(|matched| compress(rendered, matched, index.aliases_of(*code)));
            }
        };
        let aliases: usize = index.codes().map(|code| index.aliases_of(code).len()).sum();
        println!("{} entries, {aliases} aliases", index.codes().count());
        println!("render (identity, as every reload does): {:?}", time(&|| drop(render())));
        let spliced =
            time(&|| every_body(&|rendered, matched, aliases| drop(rendered.body(matched, Coding::Gzip, aliases))));
        println!("render + every body in gzip as built here (eager): {spliced:?}");
        let whole = time(&|| {
            every_body(&|rendered, matched, aliases| {
                drop(Closing::new(&rendered.body(matched, Coding::Identity, aliases).unwrap()));
            });
        });
        println!("render + every body compressed whole (eager): {whole:?}");
        let bodies = render();
        let largest = bodies.iter().max_by_key(|(_, rendered)| rendered.by_code.len()).map(|(code, _)| *code).unwrap();
        println!("largest entry: {largest}");
        let code = Code::new(102);
        let (rendered, aliases) = (&bodies[&code], index.aliases_of(code));
        let first = time(&|| drop(Gzipped::new(&rendered.entry, aliases.len())));
        let alias = &aliases[0];
        let first_alias = time(&|| drop(Gzipped::new(&rendered.entry, aliases.len()).by_alias(aliases, alias)));
        let matches = every_match(&index, code);
        let sizes = |body: &dyn Fn(&MatchedBy) -> usize| matches.iter().map(body).sum::<usize>();
        println!(
            "entry {code}: {} B identity, {} B gzip ({} B compressed whole); first gzip lookup {first:?}, \
             by alias {first_alias:?}; its {} bodies: {} B identity, {} B gzip ({} B compressed whole)",
            rendered.by_code.len(),
            rendered.body(&MatchedBy::Code, Coding::Gzip, aliases).unwrap().len(),
            gzip_whole(&rendered.by_code).len(),
            matches.len(),
            sizes(&|matched| rendered.body(matched, Coding::Identity, aliases).unwrap().len()),
            sizes(&|matched| rendered.body(matched, Coding::Gzip, aliases).unwrap().len()),
            sizes(&|matched| gzip_whole(&rendered.body(matched, Coding::Identity, aliases).unwrap()).len()),
        );
    }

    fn gzip_whole(body: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut encoder, body).unwrap();
        encoder.finish().unwrap()
    }
}
