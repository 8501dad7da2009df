//! Ranked search over the catalogue, in memory.
//!
//! Exact code and alias matches rank first, then codes that look like the query (typos in
//! `ITEM_LOGIN_REQIRED`), then full-text relevance: stemmed words weighted by field and by
//! rarity, a bonus for adjacent word pairs, and trigram similarity (the measure pg_trgm uses)
//! for misspelt words.

use std::collections::HashSet;

use super::code::Code;
use super::index::{CatalogIndex, Filters, MatchedBy, Resolution};
use super::model::NamespacedAlias;
use super::ranking::trigram_similarity;

/// Why a hit matched.
#[derive(Debug, Clone, PartialEq)]
pub enum HitKind {
    Code,
    Reason,
    Alias(NamespacedAlias),
    SimilarCode(String),
    Text,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub code: Code,
    pub score: f32,
    pub kind: HitKind,
}

/// The score of a code named inside a longer question: below an exact match of the whole query,
/// above any similarity of words.
const MENTIONED: f32 = 900.0;

/// What a bare HTTP status said in a sentence ("it just gives us a 500") adds to the text score of
/// the entry it is an alias of, where the best entry's words count 1. Every service answers with
/// these numbers, each meaning its own thing (an aggregator's 500 is not the bank's server), so
/// without the namespace named the number is one more word, not the person naming the entry.
/// So does a code whose alias is unclassified (799: FinTS 9010 "order not processed", a
/// provider's catch-all): it says the provider gave no cause, and the sentence's words, which
/// often do ("HBCI 9010, something about the software needing to be registered"), decide.
const STATUS_SAID: f32 = 0.5;

/// Text hits scoring below this share of the best one matched only words every entry uses
/// ("bank", "account"): noise in a list a helpdesk agent reads, so they are left out.
const RELEVANCE_FLOOR: f32 = 0.1;

/// How many hits a search returns when the caller does not say: the API's default and the CLI's.
pub const DEFAULT_LIMIT: usize = 20;

/// The longest question a search takes, in characters: the API, the console and their documents
/// ask here. Agents paste a customer's whole message with the error it quotes, which runs past
/// 200 characters (session 14's held-out questions had one of 201); a search's cost grows with its
/// distinct words, so a bound stays.
pub const MAX_QUERY_CHARS: usize = 500;

/// Searches: exact code or alias first, then similar codes, then text relevance.
pub fn search(index: &CatalogIndex, query: &str, filters: &Filters, limit: usize) -> Vec<Hit> {
    let query = query.trim();
    let mut hits: Vec<Hit> = Vec::new();
    if query.is_empty() {
        hits.extend(index.entries().map(|stored| Hit { code: stored.entry.code, score: 0.0, kind: HitKind::Text }));
    } else {
        let mut text = index.search_index().text_scores(query);
        hits.extend(exact_hits(index, query));
        let (mentioned, statuses) = mentioned_codes(index, query, &text);
        hits.extend(mentioned);
        for (status, _) in &statuses {
            add_said_code(&mut text, *status);
        }
        if looks_like_a_code(query) {
            hits.extend(similar_code_hits(index, query));
        }
        // Filtered first, so the floor is relative to the best entry the caller can see.
        text.retain(|(code, _)| index.entry(*code).is_some_and(|stored| filters.accept(index, stored)));
        text.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let floor = text.first().map_or(0.0, |(_, best)| best * RELEVANCE_FLOOR);
        hits.extend(text.into_iter().take_while(|(_, score)| *score >= floor).map(|(code, score)| {
            // A status said is still why its entry matched, among the words.
            let kind = statuses
                .iter()
                .find(|(status, _)| *status == code)
                .map_or(HitKind::Text, |(_, alias)| HitKind::Alias(alias.clone()));
            Hit { code, score, kind }
        }));
    }
    let mut seen = HashSet::new();
    hits.into_iter()
        .filter(|hit| seen.insert(hit.code))
        .filter(|hit| index.entry(hit.code).is_some_and(|stored| filters.accept(index, stored)))
        .take(limit)
        .collect()
}

/// Adds a code said in the sentence that only adds to the words (`STATUS_SAID`). An unclassified
/// one also stands third at least: the person quoted it, and its aliases' notes say where the
/// real cause is written, so it stays in sight even when the words name other entries. Third, so
/// the two entries the words rank highest keep their places.
fn add_said_code(text: &mut Vec<(Code, f32)>, said: Code) {
    let position = text.iter().position(|(code, _)| *code == said).unwrap_or_else(|| {
        text.push((said, 0.0));
        text.len() - 1
    });
    text[position].1 += STATUS_SAID;
    if said != Code::UNCLASSIFIED {
        return;
    }
    let mut others: Vec<f32> = text.iter().filter(|(code, _)| *code != said).map(|(_, score)| *score).collect();
    others.sort_by(|a, b| b.total_cmp(a));
    if let Some(third) = others.get(2).or(others.last()) {
        let score = &mut text[position].1;
        *score = score.max(third * (1.0 + f32::EPSILON * 4.0));
    }
}

fn exact_hits(index: &CatalogIndex, query: &str) -> Vec<Hit> {
    // "ofx 15500" means ofx:15500.
    let namespaced = match query.split_whitespace().collect::<Vec<_>>()[..] {
        [word, code] if let Some(namespace) = index.namespace_named_by(word) => format!("{namespace}:{code}"),
        _ => query.to_owned(),
    };
    match index.resolve_without_suggestions(&namespaced) {
        Resolution::Found { entry, matched } => {
            vec![Hit { code: entry.entry.code, score: 1000.0, kind: hit_kind(matched) }]
        }
        Resolution::Ambiguous(aliases) => aliases
            .into_iter()
            .map(|alias| Hit { code: alias.alias.canonical, score: 1000.0, kind: HitKind::Alias(alias) })
            .collect(),
        Resolution::NotFound { .. } => Vec::new(),
    }
}

/// Codes named inside a sentence ("QuickBooks error 185", "ITEM_LOCKED from plaid"): the
/// person has told us which entry they mean, more surely than any word can. A code that several
/// providers use ("403") names several entries: the sentence's words (`text`) order them. A code
/// said with a provider ("HTTP 400") is that provider's: another provider's alias of the same
/// code is not what was meant.
///
/// Returns the hits, and apart the entries of bare HTTP statuses said without a namespace and of
/// unclassified codes (`STATUS_SAID`), which only add to the words, with the alias each was said
/// as.
fn mentioned_codes(
    index: &CatalogIndex,
    query: &str,
    text: &[(Code, f32)],
) -> (Vec<Hit>, Vec<(Code, NamespacedAlias)>) {
    if !query.contains(char::is_whitespace) {
        return (Vec::new(), Vec::new());
    }
    let words: Vec<&str> = query
        .split_whitespace()
        .map(|word| word.trim_matches(|c: char| !(c.is_alphanumeric() || c == '_')))
        .filter(|word| !word.is_empty())
        .collect();
    // In the order the sentence names them, each once.
    let mut namespaces: Vec<&str> = Vec::new();
    for named in words.iter().filter_map(|word| index.namespace_named_by(word)) {
        if !namespaces.contains(&named) {
            namespaces.push(named);
        }
    }
    let mut hits = Vec::new();
    let mut statuses = Vec::new();
    let said_as_codes = words.iter().enumerate().filter(|&(at, word)| {
        let before = at.checked_sub(1).map(|before| words[before]);
        looks_like_a_code(word) || is_short_code(word, before)
    });
    for word in said_as_codes.map(|(_, word)| *word) {
        let in_namespace = namespaces.iter().find_map(|namespace| found_in(index, namespace, word));
        // Two capitals or a small number alone are too common to be a code ("OK", "US", "status
        // 2"); beside the provider's name they are its status ("the GoCardless requisition is in
        // EX", "finicity returned aggregationStatusCode 0").
        if in_namespace.is_none() && !looks_like_a_code(word) {
            continue;
        }
        let resolution = in_namespace.unwrap_or_else(|| index.resolve_without_suggestions(word));
        match resolution {
            Resolution::Found { matched: MatchedBy::Alias(_), .. } | Resolution::Ambiguous(_)
                if !namespaces.is_empty() && in_namespace_of(&resolution, &namespaces).is_none() => {}
            Resolution::Found { entry, matched: MatchedBy::Alias(alias) }
                if (namespaces.is_empty() && is_http_status(word)) || entry.entry.code == Code::UNCLASSIFIED =>
            {
                statuses.push((entry.entry.code, alias));
            }
            Resolution::Found { entry, matched } => {
                hits.push(Hit { code: entry.entry.code, score: MENTIONED, kind: hit_kind(matched) });
            }
            Resolution::Ambiguous(aliases) => hits.extend(aliases.into_iter().map(|alias| {
                let words =
                    text.iter().find(|(code, _)| *code == alias.alias.canonical).map_or(0.0, |(_, score)| *score);
                Hit {
                    code: alias.alias.canonical,
                    score: MENTIONED / 2.0 + words.min(MENTIONED / 4.0),
                    kind: HitKind::Alias(alias),
                }
            })),
            Resolution::NotFound { .. } => {}
        }
    }
    hits.extend(spelled_codes(index, &words, &namespaces));
    hits.sort_by(|a, b| b.score.total_cmp(&a.score));
    (hits, statuses)
}

/// `code` as one of `namespace`'s aliases, when it is one.
fn found_in<'a>(index: &'a CatalogIndex, namespace: &str, code: &str) -> Option<Resolution<'a>> {
    match index.resolve_without_suggestions(&format!("{namespace}:{code}")) {
        found @ Resolution::Found { .. } => Some(found),
        _ => None,
    }
}

/// A named provider's code said as words ("Plaid says user setup required"): two to five words in
/// a row that, joined as the provider writes its codes, are one of its aliases.
fn spelled_codes(index: &CatalogIndex, words: &[&str], namespaces: &[&str]) -> Vec<Hit> {
    let mut hits = Vec::new();
    for namespace in namespaces {
        for start in 0..words.len() {
            for end in (start + 2)..=(start + 5).min(words.len()) {
                let span = &words[start..end];
                if !span.iter().all(|word| word.chars().all(char::is_alphabetic)) {
                    break;
                }
                if let Some(Resolution::Found { entry, matched: MatchedBy::Alias(alias) }) =
                    found_in(index, namespace, &span.join("_").to_uppercase())
                {
                    hits.push(Hit { code: entry.entry.code, score: MENTIONED, kind: HitKind::Alias(alias) });
                }
            }
        }
    }
    hits
}

/// A number an HTTP answer's status could be: three digits, 100 to 599.
fn is_http_status(word: &str) -> bool {
    word.len() == 3
        && word.chars().all(|c| c.is_ascii_digit())
        && ('1'..='5').contains(&word.chars().next().unwrap_or('0'))
}

/// The namespace of a resolved alias when it is one the sentence named.
fn in_namespace_of<'a>(resolution: &Resolution<'_>, namespaces: &[&'a str]) -> Option<&'a str> {
    let named = |alias: &NamespacedAlias| namespaces.iter().copied().find(|n| alias.namespace.eq_ignore_ascii_case(n));
    match resolution {
        Resolution::Found { matched: MatchedBy::Alias(alias), .. } => named(alias),
        Resolution::Ambiguous(aliases) => aliases.iter().find_map(named),
        _ => None,
    }
}

fn hit_kind(matched: MatchedBy) -> HitKind {
    match matched {
        MatchedBy::Code => HitKind::Code,
        MatchedBy::Reason => HitKind::Reason,
        MatchedBy::Alias(alias) => HitKind::Alias(alias),
    }
}

fn similar_code_hits(index: &CatalogIndex, query: &str) -> Vec<Hit> {
    index
        .suggest(query, 3)
        .into_iter()
        .filter_map(|suggestion| match index.resolve_without_suggestions(&suggestion) {
            Resolution::Found { entry, .. } => Some(Hit {
                code: entry.entry.code,
                score: 500.0 * trigram_similarity(query, &suggestion),
                kind: HitKind::SimilarCode(suggestion),
            }),
            _ => None,
        })
        .collect()
}

/// Too short to read as a code alone, but a provider's code beside its name: two capital letters,
/// as providers write short statuses (GoCardless `EX`, `LN`, `UA`), or a number of one or two
/// digits said as a code (`before` it, a word ending in "code" or "status", or "error"): Yodlee's
/// and Finicity's `0`, success, in "aggregationStatusCode 0", but not "returned 0 transactions".
fn is_short_code(word: &str, before: Option<&str>) -> bool {
    let said_as_a_code = before.is_some_and(|before| {
        let before = before.to_ascii_lowercase();
        before.ends_with("code") || before.ends_with("status") || before == "error"
    });
    (word.len() == 2 && word.chars().all(|c| c.is_ascii_uppercase()))
        || (said_as_a_code && matches!(word.len(), 1 | 2) && word.chars().all(|c| c.is_ascii_digit()))
}

/// One token with an underscore, a digit, only capitals, or several capitals inside it (an error
/// class name such as `AccessExpiredError`) reads as a code, not as words.
fn looks_like_a_code(query: &str) -> bool {
    !query.contains(char::is_whitespace)
        && query.len() >= 3
        && (query.contains(['_', ':', '-'])
            || query.chars().any(|c| c.is_ascii_digit())
            || query.chars().all(|c| c.is_ascii_uppercase())
            || query.chars().skip(1).filter(char::is_ascii_uppercase).count() >= 2)
}

#[cfg(test)]
mod evaluation;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::catalog::Actor;
    use crate::catalog::shipped_index;

    fn index() -> CatalogIndex {
        shipped_index().unwrap()
    }

    fn first_hit(index: &CatalogIndex, query: &str) -> (u32, HitKind) {
        let hit = search(index, query, &Filters::default(), 5).into_iter().next().unwrap();
        (hit.code.get(), hit.kind)
    }

    fn assert_first(cases: &[(&str, u32)]) {
        let index = index();
        for &(query, expected) in cases {
            assert_eq!(first_hit(&index, query).0, expected, "{query}");
        }
    }

    #[test]
    fn what_a_helpdesk_agent_types_finds_the_right_entry_first() {
        assert_first(&[
            ("can't connect to bank", 102),
            ("password changed", 103),
            ("account not found", 324),
            ("verification code", 185),
            ("wrong password", 103),
            ("bank maintenance", 707),
            ("account locked", 701),
        ]);
    }

    /// European customers and agents write in their own language; the commonest causes read the
    /// same in each (the phrasings live in `catalog/synonyms.toml`; fresh23 and fresh24 measure them).
    #[test]
    fn the_commonest_causes_are_found_in_other_languages_too() {
        assert_first(&[
            ("ich habe mein Passwort geändert und jetzt klappt der Abruf nicht mehr", 103),
            ("la banque est en panne, la synchronisation ne marche pas", 102),
            ("cuenta cerrada en el banco, la sincronización falla", 708),
            ("я сменил пароль и синхронизация не работает", 103),
            ("transacties dubbel geïmporteerd", 610),
            ("la conexión expiró, hay que renovar el consentimiento", 702),
            // The six languages session 25 added.
            ("jeg har ændret min adgangskode, og nu opdateres banken ikke", 103),
            ("nettbanken har driftsforstyrrelser, ingenting oppdateres", 102),
            ("vaihdoin salasanan eikä tilitapahtumia enää tule", 103),
            ("contul a fost închis de bancă și sincronizarea nu mai merge", 708),
            ("bankanın izni süresi doldu, yenilemem gerekiyor mu", 702),
            ("a tranzakciók duplán jelennek meg", 610),
            ("změnil jsem heslo a účet se neaktualizuje", 103),
            ("výpadek u banky, nic se nestahuje", 102),
            ("platnost souhlasu vypršela, musím ho obnovit?", 702),
        ]);
    }

    /// Languages whose scripts space no word (Chinese, Japanese, Thai) or join a word to its
    /// particles (Korean), and the others session 28 gave words (fresh44, fresh46 and fresh47
    /// measure them).
    #[test]
    fn the_commonest_causes_are_found_in_asian_and_middle_eastern_languages() {
        assert_first(&[
            ("銀行のパスワードを変更したら同期できなくなった", 103),
            ("同意の有効期限が切れました", 702),
            ("银行系统维护，同步失败", 707),
            ("交易重复导入了", 610),
            ("계좌가 해지되어 연동이 안 됩니다", 708),
            ("รหัสผ่านผิด ธนาคารล็อกบัญชี", 701),
            ("البنك في صيانة والمزامنة لا تعمل", 707),
            ("kata sandi sudah diganti, sinkronisasi gagal", 103),
            ("mật khẩu đã đổi, không đồng bộ được", 103),
        ]);
    }

    /// A customer who denies the usual cause and says only that nothing syncs is told what a
    /// silent stall most often is, as in English ("I haven't changed my password, but it won't
    /// sync"): a denied change must not leave the password pointing at 103.
    #[test]
    fn a_denied_password_change_with_a_stall_is_not_a_rejected_sign_in() {
        assert_first(&[
            ("I haven't changed my password, but it won't sync", 102),
            ("パスワードは変更していません、でも同期できない", 102),
            ("密码没有改，但是无法同步", 102),
            ("비밀번호는 바꾸지 않았는데 동기화가 안 돼요", 102),
        ]);
    }

    #[test]
    fn an_unclassified_code_said_in_a_sentence_leaves_the_cause_to_the_words_and_stays_in_sight() {
        let index = index();
        let codes = |query: &str| {
            search(&index, query, &Filters::default(), 3).into_iter().map(|hit| hit.code.get()).collect::<Vec<_>>()
        };
        // FinTS 9010 is the bank's generic refusal (799); the words name the cause.
        let registered = codes("the bank answers FinTS 9010 and says the banking software is not registered");
        assert_eq!(registered[0], 711, "{registered:?}");
        assert!(registered.contains(&799), "{registered:?}");
        // With nothing else to go on, the code's entry is still among the first three.
        for query in ["the bank answers FinTS 9010", "hbci sync fails with 9010"] {
            assert!(codes(query).contains(&799), "{query}: {:?}", codes(query));
        }
        // Said alone, it is still an exact match.
        assert_eq!(first_hit(&index, "fints:9010").0, 799);
    }

    #[test]
    fn codes_and_aliases_rank_first_and_typos_are_suggested() {
        let index = index();
        assert_eq!(first_hit(&index, "102"), (102, HitKind::Code));
        assert!(matches!(first_hit(&index, "plaid:item_login_required"), (103, HitKind::Alias(_))));
        assert!(matches!(first_hit(&index, "ofx 15500"), (103, HitKind::Alias(_))));
        let in_a_sentence = first_hit(&index, "the log says AccessExpiredError, what now?");
        assert!(matches!(in_a_sentence, (702, HitKind::Alias(_))), "{in_a_sentence:?}");
        let (code, kind) = first_hit(&index, "ITEM_LOGIN_REQIRED");
        assert_eq!(code, 103);
        assert_eq!(kind, HitKind::SimilarCode("plaid:ITEM_LOGIN_REQUIRED".into()));
        match index.resolve("ITEM_LOGIN_REQIRED") {
            Resolution::NotFound { suggestions } => assert_eq!(suggestions[0], "plaid:ITEM_LOGIN_REQUIRED"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn two_capitals_are_a_status_only_beside_their_provider() {
        let index = index();
        let named = first_hit(&index, "the gocardless requisition has status EX since monday");
        assert!(
            matches!(&named.1, HitKind::Alias(alias) if alias.namespace == "gocardless" && alias.alias.code == "EX")
        );
        assert_eq!(named.0, 702);
        let alone = search(&index, "the connection has status EX since monday", &Filters::default(), 5);
        assert!(!alone.iter().any(|hit| matches!(hit.kind, HitKind::Alias(_))), "{alone:?}");
        let called = first_hit(&index, "every account under one requisition went to EX today");
        assert!(matches!(&called.1, HitKind::Alias(alias) if alias.namespace == "gocardless"), "{called:?}");
        let lower = search(&index, "gocardless says ex for my bank", &Filters::default(), 5);
        assert!(!lower.iter().any(|hit| matches!(hit.kind, HitKind::Alias(_))), "{lower:?}");
    }

    #[test]
    fn a_small_number_is_a_code_only_said_as_one_beside_its_provider() {
        let index = index();
        let named = first_hit(&index, "finicity returned aggregationStatusCode 0 for an account, is that a problem");
        assert!(
            matches!(&named.1, HitKind::Alias(alias) if alias.namespace == "finicity" && alias.alias.code == "0"),
            "{named:?}"
        );
        assert_eq!(named.0, 600);
        let alone = search(&index, "the refresh returned 0 transactions for 2 accounts", &Filters::default(), 5);
        assert!(!alone.iter().any(|hit| matches!(hit.kind, HitKind::Alias(_))), "{alone:?}");
        let other = search(&index, "plaid returned 0 transactions for 2 accounts", &Filters::default(), 5);
        assert!(!other.iter().any(|hit| matches!(hit.kind, HitKind::Alias(_))), "{other:?}");
        // A count beside the provider's name is still a count.
        let counted = search(&index, "finicity returned 0 transactions for 3 days", &Filters::default(), 5);
        assert!(!counted.iter().any(|hit| matches!(hit.kind, HitKind::Alias(_))), "{counted:?}");
        let yodlee = first_hit(&index, "yodlee refresh status 0 but no new transactions");
        assert!(matches!(&yodlee.1, HitKind::Alias(alias) if alias.namespace == "yodlee"), "{yodlee:?}");
    }

    #[test]
    fn a_provider_named_by_another_word_it_is_called_names_its_codes() {
        let index = index();
        // Finicity under the name its owner gives it now.
        let renamed = first_hit(&index, "mastercard open banking returned 103 for this customer");
        assert!(matches!(&renamed.1, HitKind::Alias(alias) if alias.namespace == "finicity"), "{renamed:?}");
        assert!(matches!(first_hit(&index, "mastercard 945"), (702, HitKind::Alias(_))));
        // FinTS under its older name, as German banking software still calls it.
        let hbci = first_hit(&index, "hbci 9942");
        assert!(matches!(&hbci.1, HitKind::Alias(alias) if alias.namespace == "fints"), "{hbci:?}");
        assert_eq!(hbci.0, 103);
        assert_eq!(first_hit(&index, "fints 3010").0, 600);
    }

    #[test]
    fn a_providers_code_said_as_words_beside_its_name_is_that_code() {
        let index = index();
        let spelled = first_hit(&index, "Plaid says user setup required");
        assert!(matches!(&spelled.1, HitKind::Alias(alias) if alias.alias.code == "USER_SETUP_REQUIRED"));
        assert_eq!(spelled.0, 108);
        let unnamed = search(&index, "it says user setup required", &Filters::default(), 5);
        assert!(!unnamed.iter().any(|hit| matches!(hit.kind, HitKind::Alias(_))), "{unnamed:?}");
    }

    #[test]
    fn a_code_several_providers_use_is_ordered_by_the_words_around_it() {
        let index = index();
        let hits = search(&index, "got a 403 after the customer revoked our access", &Filters::default(), 5);
        assert_eq!(hits[0].code.get(), 703, "{hits:?}");
        let http = search(&index, "the server answers HTTP 400", &Filters::default(), 5);
        let cloudbanking = |hit: &Hit| matches!(&hit.kind, HitKind::Alias(alias) if alias.namespace == "cloudbanking");
        assert!(!http.iter().any(cloudbanking), "{http:?}");
        let bare = search(&index, "the feed says error 400", &Filters::default(), 5);
        assert!(bare.iter().any(cloudbanking), "{bare:?}");
    }

    #[test]
    fn filters_narrow_searches() {
        let index = index();
        let filters = Filters { actor: Some(Actor::Bank), ..Filters::default() };
        let hits = search(&index, "", &filters, 100);
        assert!(!hits.is_empty());
        assert!(hits.iter().all(|hit| index.entry(hit.code).unwrap().entry.actor == Actor::Bank));
        let plaid = Filters { provider: Some("plaid".into()), retryable: Some(false), ..Filters::default() };
        for hit in search(&index, "", &plaid, 100) {
            let entry = &index.entry(hit.code).unwrap().entry;
            assert!(!entry.retryable);
            assert!(index.aliases_of(entry.code).iter().any(|alias| alias.namespace == "plaid"));
        }
    }

    #[test]
    fn weak_hits_are_left_out_relative_to_the_best_the_filters_allow() {
        let index = index();
        let all = search(&index, "password changed", &Filters::default(), 100);
        assert_eq!(all[0].code.get(), 103);
        assert!(all.len() < 10, "{} hits", all.len());
        let bank = Filters { actor: Some(Actor::Bank), ..Filters::default() };
        let hits = search(&index, "password changed", &bank, 100);
        assert!(!hits.is_empty());
        assert!(hits.iter().all(|hit| index.entry(hit.code).unwrap().entry.actor == Actor::Bank));
    }

    #[test]
    fn codes_are_told_apart_from_words() {
        assert!(looks_like_a_code("ITEM_LOGIN_REQIRED"));
        assert!(looks_like_a_code("OL-301"));
        assert!(looks_like_a_code("15500"));
        assert!(looks_like_a_code("AccessExpiredError"));
        assert!(!looks_like_a_code("QuickBooks"));
        assert!(!looks_like_a_code("password changed"));
        assert!(!looks_like_a_code("locked"));
    }
}
