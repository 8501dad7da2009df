//! The studied splits' floors (the dev and holdout halves as they were before session 6 first):
//! the questions search learns from. They guard against a change that loses ground; what they
//! reach says nothing about unseen questions.

use super::*;

pub(super) fn floors(scores: &Evaluation) -> Vec<Floor<'_>> {
    vec![
        (&scores.first_dev, 1.0, 1.0, "dev<s6"),
        // Session 14: 111 of 114 first, as it began (the floor said 110).
        (&scores.first_holdout, 0.973, 1.0, "hold<s6"),
        // Session 15: entries 612-614 joined with 8 studied questions of their own here; 132 ->
        // 138 questions, 0.977 / 0.985 -> 0.957 / 0.978 (132 and 135 of 138): two of the new
        // questions for 612 ("isn't an option when I try to add it", "doesn't seem to support
        // at all") are not in the top 3 even as their own examples. Recorded, not tuned to.
        (scores.split(Split::Dev), 0.956, 0.978, "dev"),
        // Session 11: 125 of 129 in the top 3 after its misspelling rule.
        // Session 14 (its own figures, the examples included): 122 and 128 of 129, as it began;
        // 127 in the top 3 once entries 610 and 611 joined (611 and 610 now rank second and third
        // for a download that "gets cut off").
        // Session 15, with entries 612-614 and their 6 questions: 127 and 133 of 135.
        // Session 22: fresh20's questions joining the examples moved one question ("the bank
        // updated its security protocol", 102 or 103) from third to fifth: 132 of 135 in the top 3.
        (scores.split(Split::Holdout), 0.940, 0.977, "holdout"),
        // Session 14: 48 and 50 of 50, as it began. Session 24: Flinks's aliases (their titles
        // join their entries' text) put 187 above 185 for "the MFA token is invalid and needs
        // reauthentication" (47 of 50), while the studied splits left one out gained a first and
        // a top-3 place.
        (scores.split(Split::Fresh), 0.940, 1.0, "fresh"),
        // Blind top-3 was 0.804 (37 of 46) before entry 721 (silent stalls) joined the catalogue
        // in the same session; with it, one blind question's third place goes to 721. Blind is
        // never studied, so the floor records the new catalogue's figure instead of tuning to it.
        // Session 10 studied blind, fresh8 and fresh9 by kind of failure and raised their floors
        // to what its changes reached (blind 29 -> 37 first, 40 -> 42 in the top 3).
        // Session 11 raised it again to what its changes reached: 39 first, 43 in the top 3.
        // Session 14 (training data since session 12): 42 and 45 of 46 when it began, 42 and 44
        // after it; the third place went with the examples' new vote, which places 4 more
        // studied questions first when each split is left out of the examples.
        // Session 29: the examples' runs of letters (`ranking/letters.rs`), kept for what they gained
        // on the cross-validation and over the held-out splits (394 -> 405 first of 632): 42 and 44 -> 41 and 45;
        // lowered to that, against this file's rule, as catalog/README.md says.
        (scores.split(Split::Blind), 0.891, 0.956, "blind"),
        // Session 8's held-out split, written before that session's ranking changes: 0.686 /
        // 0.882 then. BM25's K1 = 3 (see `ranking::bm25`) cost it one first place and gained it a
        // third; that change was taken for the four top-3 places it gained on the unseen splits.
        // After session 10: 44 and 51 of 51; after session 11: 46 and 51; session 14: 50 and 51
        // when it began, 51 and 51 after it.
        (scores.split(Split::Fresh8), 1.0, 1.0, "fresh8"),
        // Session 9's held-out split, written before that session's ranking changes: 0.705 /
        // 0.869 (43 and 53 of 61) then. Every split's floor was raised to its figure after the
        // session-9 changes, each kept for what it gained on dev, holdout or fresh.
        // After session 10: 51 and 59 of 61. Session 14: 58 and 61 when it began, 56 and 61
        // after it (the examples' new vote lets a question's own example count for less; with
        // each question left out of the examples, 52 and 60 -> 57 and 61).
        // Session 22: FinTS's 33 aliases (their titles indexed with their entries) cost a first
        // place here (57 of 61); kept for what they answer by lookup.
        // Session 26: fresh23 to fresh34 joined the examples (not a ranking change): 57 and
        // 61 -> 57 and 60 of 61, lowered to that (bench/README, catalog/README).
        (scores.split(Split::Fresh9), 0.934, 0.983, "fresh9"),
        // Session 10's held-out split, written before that session's ranking changes: 0.592 /
        // 0.829 (45 and 63 of 76) then, MRR 0.721; 0.618 / 0.842 (47 and 64), MRR 0.741, after
        // them. Studied by kind of failure in session 11: 49 and 65 of 76, MRR 0.763, after it.
        // Training data since session 12: 65 and 76 when session 14 began, 70 and 76 after it
        // (with each question left out of the examples, 56 and 68 -> 66 and 74).
        // Session 16: 72 of 76 first once fresh14 joined the examples (70 before).
        (scores.split(Split::Fresh10), 0.960, 1.0, "fresh10"),
        // Session 11's held-out split (82 questions from threads, help pages and issues, each
        // source a title and address), written before that session's ranking changes: 0.549 /
        // 0.817 (45 and 67 of 82), MRR 0.693, then; 0.561 / 0.817 (46 and 67), MRR 0.699, after
        // them. Never studied; its floor records the figure, it was not tuned to. Session 12's
        // vote of the labelled examples (trained on the studied splits only): 0.622 / 0.829 (51
        // and 68), MRR 0.732. Session 14 made it a studied split: its questions became examples of
        // the vote, each its own nearest neighbour, and it reached 0.732 / 1.000 (60 and 82), MRR
        // 0.850, with no change to the ranking. That jump is not a gain, only training data
        // measured on itself. After session 14's changes: 0.744 / 0.963 (61 and 79), MRR 0.849;
        // with each question left out of the examples 0.610 / 0.841 (50 and 69) before them and
        // 0.707 / 0.878 (58 and 72) after, and that is the figure to compare with the unseen one.
        // With entries 610 and 611: 61 and 77 (a sync "with years of history" that times out
        // now finds them first, and one more third place goes to them).
        // Session 15, with entries 612-614: 61 and 75; 613 ("not in yet") takes third places from
        // questions about syncs stuck or failing, 612 one from a bank's server that stopped.
        // Session 18's catalogue additions (see fresh17): one more in the top 3, 0.744 / 0.939.
        // Session 20: fresh18 joining the examples moved one question out of the top 3 (a
        // connection "stuck on syncing ... still spinning", 706 or 601, now fifth), before any
        // other change of that session: 0.756 / 0.927. At session 21's end: 0.780 / 0.939.
        (scores.split(Split::Fresh11), 0.780, 0.939, "fresh11"),
        // Session 14's held-out split (66 questions: 60 from help pages, provider docs, community
        // threads and issues, written by a helper who read the entries but never the ranking or
        // the synonyms, and 6 that helper found no entry for, labelled 610 or 611 once those were
        // written), first run after all of session 14's changes: 0.621 / 0.848 (41 and 56), MRR
        // 0.747. The helper's 60 alone: 36 and 50. Never studied.
        // Session 15: entries 612-614 joined, and the three questions of the fourteenth split's
        // writer that no entry answered (no refresh button, a bank not in the list, a bank that
        // rewrote a posted transaction) were labelled with them by the entries' writer, who had
        // read those three questions in the writer's notes: 69 questions, 0.652 / 0.841 (45 and 58),
        // MRR 0.763. All three rank first; one earlier top-3 place went to a new entry.
        // Session 16 made it a studied split (its questions examples of the vote, each its own
        // nearest neighbour): 0.768 / 0.957 (53 and 66), MRR 0.866, with no change to the ranking;
        // with each question left out of the examples 0.652 / 0.841, its unseen figure as before.
        // Session 18's catalogue additions (see fresh17): one more first, 0.783 / 0.971.
        (scores.split(Split::Fresh14), 0.782, 0.956, "fresh14"),
        // Session 16's held-out split (70 questions from help pages, provider docs, community
        // threads and issues, each source a title and address, written by a helper who read the
        // entries but never the ranking or the synonyms), written before any session-16 ranking
        // change and first run against the ranking as session 16 began: 0.529 / 0.657 (37 and 46
        // of 70), MRR 0.631. Never studied; its misses are not printed. With fresh14's 69
        // questions among the examples (and no other change): 0.557 / 0.657 (39 and 46), MRR 0.645.
        // Session 17 added the statement-file entries 620 and 621 (no ranking change): two of
        // its questions lost first place, one to 620 (a first download that went back only two
        // months, labelled 611, where importing the rest from a file is 611's own fix), one to
        // 799: 0.529 / 0.657 (37 and 46), MRR 0.629.
        // Session 17 then read its misses (to weigh an experiment, below in catalog/README.md) and
        // made it a studied split, its questions examples of the vote: 0.600 / 0.800 (42 and 56),
        // MRR 0.729; each question left out of the examples, 0.529 / 0.657 as before. The alias
        // sage:402, with a sentence on it in 714's notes, moved one question from third to
        // fourth: 0.600 / 0.786 (42 and 55). At session 21's end, with the later studied splits
        // among the examples and their meanings read: 0.700 / 0.914 (49 and 64).
        // Session 24: Flinks's aliases moved "hurdlr only pulled the last 30 days" (611) from third to
        // fourth (63 of 70 in the top 3) and gave a first place (a gocardless status 500, 705).
        // Session 26: fresh23 to fresh34 joined the examples (not a ranking change): 52 and
        // 64 -> 49 and 60 of 70, lowered to that (bench/README, catalog/README).
        (scores.split(Split::Fresh15), 0.700, 0.857, "fresh15"),
        // Session 18's held-out split (70 questions from issues, app help pages, provider and bank
        // documentation, each source a title and an address no earlier split uses, written by a
        // helper who read the entries and aliases but never the ranking, the synonyms or the
        // evaluation), first run against the ranking as session 18 began: 0.686 / 0.857 (48 and
        // 60 of 70), MRR 0.788. Never studied; its misses are not printed. Then session 18's
        // catalogue additions (OFX Home's closure in 720 and 612, one account removed from a
        // shared login in 703, a bank's failing consent pages in 702, Akahu's messages in 103),
        // written for what they answer, with no ranking change: 0.686 / 0.843 (48 and 59), MRR
        // 0.787, one question out of the top 3 (fresh16 gained one, fresh11 one, fresh14 a first
        // place). The helper who wrote them saw three fresh17 questions in a failing test's
        // output (on Akahu, an added user, a bank's OFX settings) after its text was written.
        // Session 19 made it a studied split (its questions examples of the vote, its misses
        // read): 0.686 / 0.857 left one out, then phrasings read from its misses (how far back a
        // feed reaches, vendors' words for ending support, an approval in the bank's app, a
        // switch turned "something" on, one attempt no longer read as repeated failures): 0.757
        // / 0.900 left one out, 0.886 / 0.986 as an example of itself.
        // Session 26: fresh23 to fresh34 joined the examples (not a ranking change): 62 and
        // 70 -> 60 and 70 of 70, lowered to that (bench/README, catalog/README).
        (scores.split(Split::Fresh17), 0.857, 0.985, "fresh17"),
        // Session 19's held-out split (70 questions from help pages, provider documentation and
        // issue reports, each source a title and an address no earlier split uses, written by a
        // helper who read the entries and aliases but never the ranking, the synonyms or the
        // evaluation), first run against the ranking as session 19 began: 0.614 / 0.814 (43 and
        // 57 of 70), MRR 0.726. Never studied; its misses are not printed. After session 19's
        // changes (fresh17 studied, five misreadings it showed fixed): 0.629 / 0.814 (44 and 57),
        // MRR 0.741. Then the centroids in place of the vote, chosen on the studied splits'
        // cross-validation: 0.614 / 0.814 (43 and 57), MRR 0.736, one first place fewer here while
        // fresh12, fresh13 and fresh16 gained nine; the floor is back at the first run's figure.
        // Session 20 made it a studied split (its questions examples, its misses read): 0.614 /
        // 0.814 left one out before any change, 0.729 / 0.857 (51 and 60) after the misreadings
        // it showed were fixed as meanings (see catalog/README.md), 0.843 / 0.986 as examples of
        // themselves; a floor against losing ground, not a measure. Session 21: fresh19's
        // questions joining the examples cost it one top-3 place (68 of 70); at the session's end
        // 0.871 / 0.986 (61 and 69). Session 22: fresh20's questions joining the examples cost it
        // two first places (59 of 70: an account "not fully set up", 108, and a first download
        // that "only brought in the last 30 days", 611, among them). FinTS's aliases cost one more
        // (58 of 70).
        // Session 26: fresh23 to fresh34 joined the examples (not a ranking change): 58 and
        // 69 -> 57 and 68 of 70, lowered to that (bench/README, catalog/README).
        (scores.split(Split::Fresh18), 0.814, 0.971, "fresh18"),
        // Session 20's held-out split (70 questions from help pages, provider documentation and
        // issue reports, written as fresh18 was), first run against the ranking as session 20
        // began: 0.686 / 0.857 (48 and 60 of 70), MRR 0.781. Never studied; its misses are not
        // printed. Then fresh18's questions joined the examples: 0.671 / 0.857 (47 and 60), and
        // no later change of session 20 moved it.
        // Session 21 made it a studied split (its questions examples, its misses read): 0.671 /
        // 0.857 left one out before any change, 0.814 / 0.986 as examples of themselves; a floor
        // against losing ground, not a measure. With 'no error' read as one meaning and
        // Stripe's and Pluggy's aliases: 0.800 / 0.986. Left one out at the session's end: 0.771 /
        // 0.914 (its misreadings fixed as meanings, see catalog/README.md); as examples of
        // themselves 0.857 / 1.0.
        // Session 24: Flinks's aliases moved one question out of the top 3 (69 of 70); over every
        // studied split, as examples of themselves, they gave a first place and cost this top-3
        // place, and left one out they gave one of each.
        (scores.split(Split::Fresh19), 0.857, 0.985, "fresh19"),
        // Session 21's held-out split (70 questions from community threads, help pages and issue
        // reports, written as fresh19 was), first run against the ranking as session 21 began:
        // 0.600 / 0.786 (42 and 55 of 70), MRR 0.718. Never studied; its misses are not printed.
        // With fresh19's questions among the examples: 0.614 / 0.800 (43 and 56), MRR 0.727.
        // Then Stripe's and Pluggy's aliases: 0.614 / 0.771 (43 and 54), MRR 0.723.
        // Session 22 made it a studied split (its questions examples, its misses read): 0.600 /
        // 0.786 left one out before any change, 0.671 / 0.929 (47 and 65) as examples of
        // themselves; a floor against losing ground, not a measure. With the meanings its misses
        // showed: 0.686 / 0.914 left one out, 0.771 / 0.943 (54 and 66) as examples of themselves.
        // FinTS's aliases then cost two first places (52 of 70): its catch-all code 9800, quoted
        // in two questions whose words name the cause (a gateway change, a TAN system down), now
        // answers 799 first.
        (scores.split(Split::Fresh20), 0.742, 0.942, "fresh20"),
        // Session 22's held-out split (71 questions from community threads, help pages, provider
        // documentation and issue reports, written as fresh20 was, with every entry asked about
        // at least once and none more than five times), first run against the ranking as session
        // 22 began: 0.423 / 0.648 (30 and 46 of 71), MRR 0.574. Never studied; its misses are not
        // printed. Then fresh20's questions joined the examples: 0.408 / 0.662 (29 and 47); the
        // meanings fresh20's misses showed, chosen without reading fresh21: 0.423 / 0.690 (30 and
        // 49), MRR 0.584. FinTS's 33 aliases: 0.408 / 0.676 (29 and 48), MRR 0.578.
        // Session 23 made it a studied split (its questions examples, its misses read): 0.408 /
        // 0.676 left one out before any change, 0.606 / 0.915 (43 and 65) as examples of
        // themselves; a floor against losing ground, not a measure. With the codes and meanings
        // its misses showed (catalog/README.md): 0.676 / 0.930 (48 and 66) as examples of
        // themselves. Session 24: fresh22's questions joining the examples cost a top-3 place
        // (0.676 / 0.915, 48 and 65).
        // Session 26: fresh23 to fresh34 joined the examples (not a ranking change): 48 and
        // 67 -> 46 and 64 of 71, lowered to that (bench/README, catalog/README).
        (scores.split(Split::Fresh21), 0.647, 0.901, "fresh21"),
        // Session 23's held-out split (75 questions, written as fresh21 was, every entry asked
        // about at least once and none more than five times; nineteen labels marked doubtful),
        // first run against the ranking as session 23 began: 0.720 / 0.907 (54 and 68 of 75),
        // MRR 0.821. Never studied; its misses are not printed. Then fresh21's questions joined the
        // examples: 0.720 / 0.920 (54 and 69). The meanings fresh21's misses showed, chosen without
        // reading fresh22: 0.733 / 0.933 (55 and 70), MRR 0.834. Session 24 made it a studied
        // split (its questions examples, its misses read): 0.747 / 0.933 left one out before any
        // change, 0.827 / 0.987 (62 and 74) as examples of themselves; a floor against losing
        // ground, not a measure.
        // Session 26: fresh23 to fresh34 joined the examples (not a ranking change): 62 and
        // 74 -> 61 and 74 of 75, lowered to that (bench/README, catalog/README).
        (scores.split(Split::Fresh22), 0.813, 0.986, "fresh22"),
        // Session 24's held-out split (75 questions, every entry first for one to five of them,
        // 40 of them in German, French, Russian, Spanish or Dutch as their sources are; each
        // source a title and an address no earlier split and no alias uses; written by a helper
        // who read the entries and aliases but never the ranking, the synonyms or the
        // evaluation; 21 labels marked doubtful with the reason), first run before any session-24
        // ranking or catalogue change: 0.400 / 0.533 (30 and 40 of 75), MRR 0.503. Never studied;
        // its misses are not printed. By language (counted, not read): English 23 first of 35
        // and 26 in the top 3, the other languages 7 of 40 and 14. Then fresh22's questions joined
        // the examples: 0.387 / 0.533 (29 and 40). Then the other languages' phrasings of the
        // commonest causes (catalog/README.md), chosen without reading it: 0.440 / 0.613 (33 and
        // 46), MRR 0.565; the other languages 11 first of 40 and 20 in the top 3. The second set,
        // measured on fresh25 first: 0.440 / 0.627 (33 and 47). The other languages' words: 0.467
        // / 0.653 (35 and 49). The last set: 0.480 / 0.653 (36 and 49).
        // Session 26 made it a studied split with the eleven others written in sessions 24 and 25
        // (its questions examples): 0.480 / 0.653 -> 0.600 / 0.853 (45 and 64 of 75) as
        // examples of themselves; a floor against losing ground, not a measure.
        (scores.split(Split::Fresh23), 0.600, 0.853, "fresh23"),
        // Session 24's second held-out split (70 questions, every entry first for one to four of
        // them; 39 in German, Russian, Spanish, Polish, French, Portuguese, Italian, Dutch or
        // Swedish as their sources are; each source a title and an address no earlier split and
        // no alias uses; written by a helper who never read the ranking, the synonyms or the
        // evaluation; 13 labels marked doubtful), first run after that session's first meanings
        // and Flinks's aliases, which were chosen without reading it: 0.457 / 0.629 (32 and 44 of
        // 70), MRR 0.563. Never studied; its misses are not printed. By language (counted, not
        // read): English 24 first of 31 and 26 in the top 3, the other languages 8 of 39 and 18.
        // Then the other languages' phrasings of the commonest causes: 0.543 / 0.729 (38 and 51),
        // MRR 0.652; the other languages 14 first of 39 and 25 in the top 3. The second set of
        // phrasings, measured on fresh25 first: 0.557 / 0.757 (39 and 53). The other languages'
        // words: 0.571 / 0.757 (40 and 53).
        // Session 25's phrasings in other languages (catalog/README.md): 0.600 / 0.786.
        // Session 26 made it a studied split with the eleven others written in sessions 24 and 25
        // (its questions examples): 0.600 / 0.786 -> 0.743 / 0.929 (52 and 65 of 70) as
        // examples of themselves; a floor against losing ground, not a measure.
        (scores.split(Split::Fresh24), 0.742, 0.928, "fresh24"),
        // Session 24's third held-out split (70 questions, every entry first for one to four of
        // them; 43 in fifteen languages other than English as their sources are; each source a
        // title and an address no earlier split and no alias uses; written by a helper who never
        // read the ranking, the synonyms or the evaluation; 13 labels marked doubtful), first run
        // after the session's first set of other languages' phrasings: 0.500 / 0.657 (35 and 46 of
        // 70), MRR 0.596; without that set it would have been 0.457 / 0.600 (32 and 42), MRR
        // 0.542. English 21 first of 27 either way; the other languages 14 of 43 (11 without).
        // Never studied; its misses are not printed. The second set of phrasings (catalog/README.md)
        // was measured on it first: 0.514 / 0.671 (36 and 47). The last set: 0.514 / 0.686 (36
        // and 48).
        // Session 25's phrasings in other languages: 0.614 / 0.743.
        // Session 26 made it a studied split with the eleven others written in sessions 24 and 25
        // (its questions examples): 0.614 / 0.743 -> 0.714 / 0.929 (50 and 65 of 70) as
        // examples of themselves; a floor against losing ground, not a measure.
        (scores.split(Split::Fresh25), 0.714, 0.928, "fresh25"),
        // Session 24's fourth held-out split (60 questions, every entry first for one to three of
        // them; 40 in German, French, Spanish, Italian, Dutch, Russian, Portuguese or Polish;
        // each source a title and an address no earlier split and no alias uses; written by a
        // helper who never read the ranking, the synonyms or the evaluation; 12 labels marked
        // doubtful), first run after the session's two sets of other languages' phrasings:
        // 0.367 / 0.533 (22 and 32 of 60), MRR 0.483; with the meanings as they were before both
        // sets, 0.267 / 0.383 (16 and 23), MRR 0.376. English 12 first of 20 either way; the other
        // languages 10 of 40 (4 without). Never studied; its misses are not printed.
        // Then the other languages' words (`[words]` in catalog/synonyms.toml), measured on it
        // first: 0.400 / 0.567 (24 and 34).
        // Session 25's phrasings in other languages: 0.450 / 0.600.
        // Session 26 made it a studied split with the eleven others written in sessions 24 and 25
        // (its questions examples): 0.450 / 0.600 -> 0.600 / 0.883 (36 and 53 of 60) as
        // examples of themselves; a floor against losing ground, not a measure.
        (scores.split(Split::Fresh26), 0.600, 0.883, "fresh26"),
        // Session 24's fifth held-out split (60 questions, every entry first for one to three of
        // them; 47 in fourteen languages other than English; each source a title and an address
        // no earlier split and no alias uses; written by a helper who never read the ranking,
        // the synonyms or the evaluation; 17 labels marked doubtful), first run after the
        // session's words table: 0.400 / 0.650 (24 and 39 of 60), MRR 0.558; with the meanings
        // as they were before the session's other languages, 0.333 / 0.450 (20 and 27), MRR
        // 0.436. English 5 first of 13 either way; the other languages 19 of 47 (15 without) and
        // 31 in the top 3 (19 without). Never studied; its misses are not printed.
        // The last set of phrasings and words (catalog/README.md), measured on it first: 0.400 /
        // 0.667 (24 and 40).
        // Session 25's phrasings in other languages: 0.433 / 0.667.
        // Session 26 made it a studied split with the eleven others written in sessions 24 and 25
        // (its questions examples): 0.433 / 0.667 -> 0.667 / 0.833 (40 and 50 of 60) as
        // examples of themselves; a floor against losing ground, not a measure.
        (scores.split(Split::Fresh27), 0.666, 0.833, "fresh27"),
        // Session 25's two held-out splits, written side by side by two helpers who never read
        // the ranking, the synonyms or the evaluation, each source a title and an address no
        // earlier split and no alias uses. fresh28: 57 questions in German, Norwegian, Dutch,
        // Swedish, Russian, Finnish, Danish (and one English), 15 labels marked doubtful; first
        // run on the meanings as session 24 left them: 0.316 / 0.491 (18 and 28 of 57), MRR
        // 0.451. Never studied; its misses are not printed. Then Danish, Norwegian, Finnish,
        // Romanian, Turkish and Hungarian phrasings and words (catalog/README.md), measured on
        // both first: 0.386 / 0.526 (22 and 30), MRR 0.502. The second set (Czech, more forms):
        // 0.404 / 0.526.
        // Session 26 made it a studied split with the eleven others written in sessions 24 and 25
        // (its questions examples): 0.404 / 0.526 -> 0.509 / 0.807 (29 and 46 of 57) as
        // examples of themselves; a floor against losing ground, not a measure.
        (scores.split(Split::Fresh28), 0.508, 0.807, "fresh28"),
        // fresh29: 58 questions in Portuguese, French, Turkish, Romanian, Spanish, Italian,
        // Hungarian (and two English), 11 labels marked doubtful; first run on session 24's
        // meanings: 0.345 / 0.466 (20 and 27 of 58), MRR 0.454. Never studied. After the six
        // languages' phrasings and words: 0.483 / 0.655 (28 and 38), MRR 0.611. The second set:
        // 0.500 / 0.707 (29 and 41).
        // Session 26 made it a studied split with the eleven others written in sessions 24 and 25
        // (its questions examples): 0.500 / 0.707 -> 0.724 / 0.931 (42 and 54 of 58) as
        // examples of themselves; a floor against losing ground, not a measure.
        (scores.split(Split::Fresh29), 0.724, 0.931, "fresh29"),
        // Two more written side by side after the first set, before the second was measured,
        // by helpers who never read the ranking, the synonyms or the evaluation, each source a
        // title and an address no earlier split uses. fresh30: 60 questions in Czech, German,
        // Dutch, Polish, Russian and Swedish (ten each but nine Swedish and one English); 17
        // labels doubtful. With the meanings before the second set 0.417 / 0.600 (25 and 36),
        // MRR 0.540; with it 0.467 / 0.650 (28 and 39), MRR 0.589 (Czech 3 first of 10 before,
        // 6 after). Never studied.
        // Session 26 made it a studied split with the eleven others written in sessions 24 and 25
        // (its questions examples): 0.467 / 0.650 -> 0.617 / 0.900 (37 and 54 of 60) as
        // examples of themselves; a floor against losing ground, not a measure.
        (scores.split(Split::Fresh30), 0.616, 0.900, "fresh30"),
        // fresh31: 46 questions, 27 English, the rest French, Norwegian, Italian, Portuguese,
        // Spanish, Finnish and Danish; 12 labels doubtful. With session 24's meanings 0.652 /
        // 0.783 (30 and 36); after the first set 0.674 / 0.804; after the second 0.696 / 0.804
        // (32 and 37), MRR 0.760; the English questions 21 first throughout. Never studied.
        // Session 26 made it a studied split with the eleven others written in sessions 24 and 25
        // (its questions examples): 0.696 / 0.804 -> 0.783 / 0.957 (36 and 44 of 46) as
        // examples of themselves; a floor against losing ground, not a measure.
        (scores.split(Split::Fresh31), 0.782, 0.956, "fresh31"),
        // fresh32: 60 questions, twelve each in Dutch, Russian, Swedish, Norwegian and Danish,
        // written after the second set by a helper who never read the ranking, the synonyms or
        // the evaluation; 16 labels doubtful. With session 24's meanings 0.233 / 0.433 (14 and
        // 26); with this session's two sets 0.383 / 0.567 (23 and 34), MRR 0.506 (Norwegian 1 →
        // 5 first of 12, Danish 1 → 3, Dutch 3 → 5). A third set chosen on the older splits
        // gained nothing here and was left out (catalog/README.md). Never studied.
        // Session 26 made it a studied split with the eleven others written in sessions 24 and 25
        // (its questions examples): 0.383 / 0.567 -> 0.567 / 0.833 (34 and 50 of 60) as
        // examples of themselves; a floor against losing ground, not a measure.
        (scores.split(Split::Fresh32), 0.566, 0.833, "fresh32"),
        // Two English splits, written side by side to measure a set of English meanings chosen on
        // the studied splits (a crash or an exception as the service's own fault, the scraper or
        // plugin as what broke, a transaction the bank reversed or settled at another amount):
        // studied first places 979 → 984, but 26 → 26 and 36 → 35 first here, so it was left out
        // (catalog/README.md). fresh33: 35 questions from forums, help centres, provider pages and
        // news (no GitHub; unused English sources are nearly gone), 16 labels doubtful: 0.743 /
        // 0.886 (26 and 31), MRR 0.827. Never studied.
        // Session 26 made it a studied split with the eleven others written in sessions 24 and 25
        // (its questions examples): 0.743 / 0.886 -> 0.743 / 0.943 (26 and 33 of 35) as
        // examples of themselves; a floor against losing ground, not a measure.
        (scores.split(Split::Fresh33), 0.742, 0.942, "fresh33"),
        // fresh34: 47 questions from GitHub issues and pull requests, 9 labels doubtful: 0.766 /
        // 0.936 (36 and 44), MRR 0.852. Never studied.
        // Session 26 made it a studied split with the eleven others written in sessions 24 and 25
        // (its questions examples): 0.766 / 0.936 -> 0.809 / 0.979 (38 and 46 of 47) as
        // examples of themselves; a floor against losing ground, not a measure.
        (scores.split(Split::Fresh34), 0.808, 0.978, "fresh34"),
        // fresh48, 24 questions in English as customers write on community forums and help
        // pages (4 labels doubtful), and fresh49, 32 as helpdesk agents and developers write
        // (GitHub issues and provider documentation; 6 doubtful), written by two helpers at the
        // start of session 29 from about 2,000 pages no earlier split used, before anything that
        // session changed. First run: fresh48 18 first and 21 in the top 3 (MRR 0.840), fresh49
        // 26 and 30 (MRR 0.882). Never studied until session 31, which made both studied splits
        // (their questions examples, each read with itself left out; their misses printed): from
        // session 29's 20 and 21, 28 and 30 to fresh48 21 and 24 (MRR 0.924), fresh49 30 and 32
        // (MRR 0.969). Then a code whose alias is unclassified (799) only adds to the words:
        // fresh48 22 first, fresh49 31. Session 34: fresh54 and fresh55 joining the examples (not
        // a ranking change) moved a DKB question (an app approval GnuCash cannot give, 716) from
        // third to fourth, behind 709, 711 and 185; the top-3 floor is lowered to 23 of 24.
        (scores.split(Split::Fresh48), 0.916, 0.958, "fresh48"),
        (scores.split(Split::Fresh49), 0.968, 1.0, "fresh49"),
        // fresh50, 30 questions in English as customers write on forums and help-centre threads
        // (6 labels doubtful), and fresh51, 30 as helpdesk agents and developers write (issues,
        // library and provider documentation; 2 doubtful), written by two helpers at the start of
        // session 31 from pages no earlier split used, reading only the entries and aliases. With
        // the session's first ranker (before fresh48 and fresh49 joined the examples): fresh50
        // 21 first and 28 in the top 3 (MRR 0.814), fresh51 24 and 28 (MRR 0.881). Session 32
        // made them examples (each question read with itself left out; their misses printed):
        // fresh50 27 and 30 (MRR 0.944), fresh51 29 and 30 (MRR 0.983).
        (scores.split(Split::Fresh50), 0.9, 1.0, "fresh50"),
        (scores.split(Split::Fresh51), 0.966, 1.0, "fresh51"),
        // fresh52, 30 questions in English as customers write on forums and help-centre threads
        // (17 labels doubtful: the unused customer threads were few, so several are bug reports
        // and provider pages retold in a customer's words), and fresh53, 30 as helpdesk agents and
        // developers write (issues and provider documentation; 10 doubtful), written by two
        // helpers at the start of session 32 from pages no earlier split used, reading only the
        // entries and aliases. With the session's first ranker (before fresh50 and fresh51 joined
        // the examples): fresh52 17 first and 24 in the top 3 (MRR 0.684), fresh53 24 and 29
        // (MRR 0.890); with them, fresh52 18 and 24, fresh53 24 and 29. Session 33 made them
        // examples (each question read with itself left out; their misses printed): fresh52 21
        // and 30 (MRR 0.817), fresh53 29 and 30 (MRR 0.983).
        (scores.split(Split::Fresh52), 0.7, 1.0, "fresh52"),
        (scores.split(Split::Fresh53), 0.966, 1.0, "fresh53"),
        // fresh54, 30 questions in English as customers write on forums and help-centre threads
        // (10 labels doubtful), and fresh55, 30 as helpdesk agents and developers write (issues
        // and provider documentation; 3 doubtful), written by two helpers at the start of session
        // 33 from pages no earlier split used, reading only the entries and aliases. First run,
        // with fresh52 and fresh53 among the examples and no other change: fresh54 18 first and
        // 25 in the top 3 (MRR 0.723), fresh55 26 and 28 (MRR 0.905). Session 34 made them
        // examples (each question read with itself left out; their misses printed): fresh54 26
        // and 29 (MRR 0.912), fresh55 27 and 30 (MRR 0.950); with the whole split left out, 18
        // and 25, 26 and 28, the places of their first run. Session 34 set these floors at the
        // split-left-out figures, which this test does not measure; session 35 raised them to
        // the figures it does.
        (scores.split(Split::Fresh54), 0.866, 0.966, "fresh54"),
        (scores.split(Split::Fresh55), 0.9, 1.0, "fresh55"),
        // fresh56, 30 questions in English as customers write on forums and help-centre threads
        // (help centres, outage news, a few issues; 14 labels doubtful), and fresh57, 30 as
        // helpdesk agents and developers write (issues and provider documentation; 10 doubtful),
        // written by two helpers at the start of session 34 from pages no earlier split used,
        // reading only the entries and aliases. First run, with fresh54 and fresh55 among the
        // examples and no other change: fresh56 20 first and 24 in the top 3 (MRR 0.770), fresh57
        // 19 and 26 (MRR 0.752). Session 35 made them examples (each question read with itself
        // left out; their misses printed): fresh56 26 and 30 (MRR 0.922), fresh57 23 and 30 (MRR
        // 0.867); with the whole split left out, 20 and 24, 19 and 26, the places of their first
        // run. Then session 35's alias audit (not a ranking change: FinTS product registration
        // moved from 711 to 720, with the labels of the questions about it, and aliases' notes
        // changed the words of 705, 720 and 185): fresh57 23 -> 22 first and 30 -> 29 in the top
        // 3, lowered to that. The Sparkasse question about 9075 'Banking-Programm nicht
        // PSD2-fähig' (720) is now third behind 705 and 185, the ING question about a PIN error
        // (103) fourth behind 711, 185 and 720. Session 37 made fresh60 and fresh61 examples (no
        // ranking change): the DKB question about a card missing from the FinTS account list (709)
        // is now fourth behind 324, 704 and 720, 29 -> 28 in the top 3, lowered to that.
        (scores.split(Split::Fresh56), 0.866, 1.0, "fresh56"),
        (scores.split(Split::Fresh57), 0.733, 0.933, "fresh57"),
        // fresh58, 30 questions in English as customers write on forums, help-centre threads and
        // in reviews (outage and migration news, help pages in other countries retold in
        // English; 11 labels doubtful), and fresh59, 30 as helpdesk agents and developers write
        // (mostly provider documentation; 7 doubtful), written by two helpers at the start of
        // session 35 from pages no earlier split used, reading only the entries and aliases.
        // First run, with fresh56 and fresh57 among the examples and no other change: fresh58 20
        // first and 26 in the top 3 (MRR 0.772), fresh59 20 and 29 (MRR 0.798). Then the alias
        // corrections of session 35's audit (not a ranking change): fresh58 21 and 26, fresh59 20
        // and 28, unread. Session 36 made them examples (each question read with itself left
        // out, the figures this test measures; their misses printed): fresh58 25 and 30 (MRR
        // 0.911), fresh59 25 and 30 (MRR 0.911); with the whole split left out, 21 and 26, 20
        // and 27.
        (scores.split(Split::Fresh58), 0.833, 1.0, "fresh58"),
        (scores.split(Split::Fresh59), 0.833, 1.0, "fresh59"),
        // fresh60, 30 questions as customers write on forums, help-centre threads and in bank
        // news (outages, IT migrations, banks leaving a market; four in German or Portuguese; 11
        // labels doubtful), and fresh61, 30 in English as helpdesk agents and developers write
        // (issues of apps that use the providers, provider documentation and changelogs; 9
        // doubtful), written by two helpers at the start of session 36 from pages no earlier
        // split used, reading only the entries and aliases. First run, with fresh58 and fresh59
        // among the examples and no other change: fresh60 19 first and 23 in the top 3 (MRR
        // 0.709), fresh61 21 and 28 (MRR 0.795). Session 37 made them examples (each question
        // read with itself left out, the figures this test measures; their misses printed):
        // fresh60 27 and 29 (MRR 0.929), fresh61 29 and 30 (MRR 0.983); with the whole split left
        // out, 19 and 22, 21 and 29. Session 38 made fresh62 and fresh63 examples (no ranking
        // change): the question about Xero itself being down on a Melbourne morning (705) is now
        // second behind 613, 27 -> 26 first, lowered to that.
        (scores.split(Split::Fresh60), 0.866, 0.966, "fresh60"),
        (scores.split(Split::Fresh61), 0.966, 1.0, "fresh61"),
        // fresh62, 30 questions as small-business owners, bookkeepers and accountants write in
        // community forums and help centres (eight about statement files, six about feeds that
        // stopped, doubled or skipped; three from German pages; 10 labels doubtful), and fresh63,
        // 30 as helpdesk agents and developers write tickets (29 about providers other than
        // Plaid, MX and Yodlee: GoCardless, Salt Edge, Basiq, FinTS, SimpleFIN, Akahu, Enable
        // Banking and others; 10 doubtful), written by two helpers at the start of session 37
        // from pages no earlier split used, reading only the entries and aliases. First run, with
        // fresh60 and fresh61 among the examples and no other change: fresh62 20 first and 25 in
        // the top 3 (MRR 0.770), fresh63 19 and 25 (MRR 0.746). Session 38 made them examples
        // (their misses printed). As this test reads them, each question among the examples:
        // fresh62 29 first and 30 in the top 3 (MRR 0.983), fresh63 26 and 30 (MRR 0.922); with
        // the whole split left out, 20 and 25, 19 and 25.
        (scores.split(Split::Fresh62), 0.966, 1.0, "fresh62"),
        (scores.split(Split::Fresh63), 0.866, 1.0, "fresh63"),
    ]
}
