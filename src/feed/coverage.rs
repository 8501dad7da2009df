//! Which days an account's transactions are known for, and the gaps between: the union of
//! the windows refreshes asked the bank for and the periods of imported files.

use chrono::NaiveDate;
use serde::Serialize;

/// Where knowledge of a day came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
// Named apart from the catalogue's `Source` (a cited document): the same schema name made the
// document describe coverage spans with the catalogue's object.
#[schema(as = CoverageSource)]
pub enum Source {
    Feed,
    Import,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Feed => "feed",
            Self::Import => "import",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Feed, Self::Import].into_iter().find(|source| source.as_str() == text)
    }
}

/// A stored range of one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub source: Source,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Span {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The sources that cover some day of the span.
    pub sources: Vec<Source>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Gap {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Coverage {
    pub covered: Vec<Span>,
    /// Days between covered spans that no refresh or import has covered.
    pub gaps: Vec<Gap>,
}

/// Merges every source's ranges into spans (adjacent days join) and the gaps between them.
pub fn summarise(mut ranges: Vec<Range>) -> Coverage {
    ranges.sort_by_key(|range| (range.from, range.to));
    let mut covered: Vec<Span> = Vec::new();
    for range in ranges {
        match covered.last_mut() {
            Some(span) if range.from <= span.to.succ_opt().unwrap_or(span.to) => {
                span.to = span.to.max(range.to);
                if !span.sources.contains(&range.source) {
                    span.sources.push(range.source);
                    span.sources.sort();
                }
            }
            _ => covered.push(Span { from: range.from, to: range.to, sources: vec![range.source] }),
        }
    }
    let gaps = covered
        .windows(2)
        .filter_map(|pair| Some(Gap { from: pair[0].to.succ_opt()?, to: pair[1].from.pred_opt()? }))
        .collect();
    Coverage { covered, gaps }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 3, d).unwrap()
    }

    #[test]
    fn spans_join_across_sources_and_gaps_lie_between() {
        let coverage = summarise(vec![
            Range { source: Source::Feed, from: day(20), to: day(31) },
            Range { source: Source::Feed, from: day(1), to: day(5) },
            Range { source: Source::Import, from: day(6), to: day(10) },
        ]);
        assert_eq!(coverage.covered.len(), 2);
        assert_eq!((coverage.covered[0].from, coverage.covered[0].to), (day(1), day(10)));
        assert_eq!(coverage.covered[0].sources, [Source::Feed, Source::Import]);
        assert_eq!(coverage.gaps, [Gap { from: day(11), to: day(19) }]);
    }
}
