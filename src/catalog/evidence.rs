//! Whether an alias's sources back what its `match` claims. An `exact` alias says the provider's
//! own documentation gives the code this meaning, so it needs at least one vendor source; a
//! third-party page or our own inference can only support `nearest`. Shared by the shipped
//! catalogue's test and `feedwatch errors --check-sources`, so a reviewer sees what the test sees.

use super::model::{Confidence, MatchKind, NamespacedAlias};

/// One alias whose evidence is weaker than its claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeakEvidence {
    /// `namespace:code`, as a lookup takes it.
    pub alias: String,
    pub problem: &'static str,
}

pub fn weakness(alias: &NamespacedAlias) -> Option<&'static str> {
    let sources = &alias.alias.sources;
    if sources.is_empty() {
        return Some("has no source");
    }
    let vendor = sources.iter().any(|source| source.confidence == Confidence::Vendor);
    (alias.alias.match_kind == MatchKind::Exact && !vendor)
        .then_some("claims an exact match, but no source is the provider's own documentation")
}

pub fn weak_aliases<'a>(aliases: impl IntoIterator<Item = &'a NamespacedAlias>) -> Vec<WeakEvidence> {
    aliases
        .into_iter()
        .filter_map(|alias| {
            weakness(alias)
                .map(|problem| WeakEvidence { alias: format!("{}:{}", alias.namespace, alias.alias.code), problem })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::catalog::code::Code;
    use crate::catalog::model::{Alias, Source};

    fn alias(match_kind: MatchKind, confidences: &[Confidence]) -> NamespacedAlias {
        let sources = confidences
            .iter()
            .map(|&confidence| Source { title: "t".into(), url: "https://example.com".into(), confidence })
            .collect();
        NamespacedAlias {
            namespace: "ofx".into(),
            alias: Alias {
                code: "2000".into(),
                canonical: Code::new(102),
                match_kind,
                title: "General error".into(),
                note: None,
                sources,
            },
        }
    }

    #[test]
    fn every_shipped_alias_has_sources_that_back_its_match() {
        let catalog = crate::catalog::Catalog::shipped().unwrap();
        let weak = weak_aliases(&catalog.aliases);
        assert!(weak.is_empty(), "{} aliases claim more than their sources show: {weak:#?}", weak.len());
    }

    #[test]
    fn an_exact_alias_needs_a_vendor_source_and_every_alias_needs_one() {
        use Confidence::{Inferred, ThirdParty, Vendor};
        assert_eq!(weakness(&alias(MatchKind::Exact, &[Vendor])), None);
        assert_eq!(weakness(&alias(MatchKind::Exact, &[ThirdParty, Vendor])), None);
        assert!(weakness(&alias(MatchKind::Exact, &[ThirdParty, Inferred])).is_some());
        assert_eq!(weakness(&alias(MatchKind::Nearest, &[Inferred])), None);
        assert_eq!(weakness(&alias(MatchKind::Nearest, &[])), Some("has no source"));
        let weak = weak_aliases([&alias(MatchKind::Exact, &[ThirdParty])]);
        assert_eq!(weak[0].alias, "ofx:2000");
    }
}
