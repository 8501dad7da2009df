//! The roles words play in a sentence beyond what they mean: what a denial rules out, who only
//! passed a message on, whose side "their end" is, what was only tried, and which words a
//! concept of several parts has taken for itself.

use super::{
    ATTEMPT, BLAME, BREAK, CUE, CUE_AFTER, DETERMINER, Lexicon, Match, RECIPIENT, REPORTING, RULED_OUT, STOP, Token,
};

impl Lexicon {
    /// Whether a who-acts phrase only names who passed the message on: "the aggregator says the
    /// bank is down" blames the bank, whatever the aggregator is; or who something was done for or
    /// to: in "the customer clicked stop sharing for the aggregator" the customer acted.
    pub(super) fn is_messenger(&self, tokens: &[Token], m: &Match) -> bool {
        let names_a_party = self.actors.iter().any(|(_, known, _)| *known == self.concepts[m.concept].term);
        let clause = tokens[m.start].clause;
        let passes_it_on =
            tokens.get(m.end).is_some_and(|next| next.clause == clause && self.has(next.term, REPORTING));
        let acted_for = tokens[..m.start]
            .iter()
            .rev()
            .take_while(|before| before.clause == clause)
            .find(|before| !self.has(before.term, DETERMINER) || self.has(before.term, RECIPIENT))
            .is_some_and(|before| self.has(before.term, RECIPIENT));
        names_a_party && (passes_it_on || acted_for)
    }

    /// Whether a word of a one-part concept is a part of a concept of several parts that fired,
    /// and does not name this one: in "the code expired" the expiry is the code's ("code" near
    /// "expired": a wrong answer), not the consent's. Who-acts concepts are never claimed.
    pub(super) fn claimed_by_another(&self, concept: usize, m: &Match, claimed: &[(usize, Vec<Match>)]) -> bool {
        let who_acts = self.actors.iter().any(|(_, known, _)| *known == self.concepts[concept].term);
        !who_acts
            && claimed.iter().any(|(compound, parts)| {
                !self.concepts[*compound].references.contains(&concept)
                    && parts.iter().any(|part| part.start < m.end && m.start < part.end)
            })
    }

    /// "Their end" is the side of the party named last before it: the aggregator's in "the
    /// aggregator's status page shows an incident on their side", the bank's by default.
    pub(super) fn resolve_pronoun(&self, m: &Match, matches: &[Match]) -> Match {
        if !m.pronoun {
            return *m;
        }
        let named_last = matches
            .iter()
            .filter(|named| named.end <= m.start)
            .filter_map(|named| {
                let (_, side) = self.pronoun_parties.iter().find(|(party, _)| *party == named.concept)?;
                Some((named.start, *side))
            })
            .max_by_key(|(start, _)| *start);
        named_last.map_or(*m, |(_, side)| Match { concept: side, ..*m })
    }

    /// Which tokens only say what was tried: those after an attempt word, to the clause's end.
    pub(super) fn attempted(&self, tokens: &[Token]) -> Vec<bool> {
        let mut attempted = vec![false; tokens.len()];
        let mut within: Option<u32> = None;
        for (position, token) in tokens.iter().enumerate() {
            if within.is_some_and(|clause| clause != token.clause) || self.has(token.term, BREAK) {
                within = None;
            }
            attempted[position] = within.is_some();
            if self.has(token.term, ATTEMPT) {
                within = Some(token.clause);
            }
        }
        attempted
    }

    /// Which tokens a denial rules out. A denial of an action ("did not change my password") or
    /// of a thing ("not my bank", "not an outage") rules out the next two content words; a
    /// denial of anything else describes the symptom ("can't connect") and rules out nothing.
    /// A denial inside a concept's phrase ("no longer", "not supported") is part of the phrase.
    pub(super) fn denied(&self, tokens: &[Token], matches: &[Match]) -> Vec<bool> {
        let mut denied = vec![false; tokens.len()];
        for (position, token) in tokens.iter().enumerate() {
            let cue = self.has(token.term, CUE);
            if !cue || matches.iter().any(|m| (m.start..m.end).contains(&position)) {
                continue;
            }
            let mut next = position + 1;
            let mut determiner = false;
            while let Some(following) = tokens.get(next)
                && following.clause == token.clause
                && self.has(following.term, STOP)
                && !self.has(following.term, BREAK | CUE)
            {
                determiner |= self.has(following.term, DETERMINER);
                next += 1;
            }
            let Some(first) = tokens.get(next).filter(|t| t.clause == token.clause && !self.has(t.term, BREAK | CUE))
            else {
                continue;
            };
            if !(determiner || self.has(first.term, RULED_OUT)) {
                continue;
            }
            let mut ruled_out = vec![next];
            let mut after = next + 1;
            while let Some(following) = tokens.get(after)
                && following.clause == token.clause
                && !self.has(following.term, BREAK | CUE)
            {
                if !self.has(following.term, STOP) {
                    ruled_out.push(after);
                    break;
                }
                after += 1;
            }
            for &index in &ruled_out {
                denied[index] = true;
            }
            if ruled_out.iter().any(|&index| self.has(tokens[index].term, BLAME))
                && let Some(before) = (0..position)
                    .rev()
                    .find(|&index| tokens[index].clause == token.clause && !self.has(tokens[index].term, STOP | CUE))
            {
                denied[before] = true;
            }
        }
        self.denied_before(tokens, matches, &mut denied);
        denied
    }

    /// Denials that follow what they deny, as Japanese and Korean verb endings do
    /// ("変更していません", "변경하지 않았습니다"): the action just before, past at most
    /// [`ENDING_PIECES`] unread pieces of its ending ("してい", "하지"), is ruled out.
    fn denied_before(&self, tokens: &[Token], matches: &[Match], denied: &mut [bool]) {
        let in_a_phrase = |position: usize| matches.iter().any(|m| (m.start..m.end).contains(&position));
        for (position, token) in tokens.iter().enumerate() {
            if !self.has(token.term, CUE_AFTER) || in_a_phrase(position) {
                continue;
            }
            let action = (0..position)
                .rev()
                .take(ENDING_PIECES + 1)
                .take_while(|&index| tokens[index].clause == token.clause)
                .find(|&index| !tokens[index].is_unknown() && !self.has(tokens[index].term, STOP));
            if let Some(action) = action.filter(|&index| self.has(tokens[index].term, RULED_OUT)) {
                denied[action] = true;
            }
        }
    }
}

/// How many unread pieces may stand between an action and the denial that follows it: the
/// verb's own ending ("して", "い") is cut into what the lexicon does not know.
const ENDING_PIECES: usize = 2;
