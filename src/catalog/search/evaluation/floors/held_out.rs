//! The held-out splits' floors: questions search never learnt from and whose misses were not
//! read. These are the figures that say how search answers questions it has not seen.

use super::*;

pub(super) fn floors(scores: &Evaluation) -> Vec<Floor<'_>> {
    vec![
        // Session 12's held-out split (62 questions from help pages, vendor docs and issues, each
        // source a title and address), written before any session-12 ranking change: 0.548 /
        // 0.855 (34 and 53 of 62), MRR 0.704. Never studied; its floor records the figure. With
        // the vote of the labelled examples: 0.597 / 0.887 (37 and 55), MRR 0.743. Session 14's
        // fresh11 examples cost it one top-3 place at once (54 of 62, with no ranking change);
        // after session 14's changes 0.629 / 0.871 (39 and 54), MRR 0.759, and the same with
        // entries 610 and 611 (MRR 0.750). The top-3 floor records the 54: the place went to the
        // new examples, not to a ranking change (with fresh11 left out of the examples, the
        // session-14 ranking places 55).
        // Session 19's centroids in place of the vote (see `ranking/examples.rs`): 0.645 / 0.871
        // (40 and 54), MRR 0.775.
        // Session 20: Basiq's, Belvo's and Tink's aliases, 0.661 / 0.871 (41 and 54), MRR 0.777;
        // no later change of that session moved it.
        // Session 21: fresh19's questions joining the examples cost one first place before any
        // other ranking change (0.645 / 0.871, 40 and 54). Then Stripe's and Pluggy's 69 aliases
        // (their titles are indexed with their entries; no ranking change): 0.629 / 0.855 (39 and
        // 53). With Tink's statuses and Salt Edge's aliases: 0.645 / 0.871 (40 and 54).
        // Session 22, with the meanings fresh20's misses showed (catalog/README.md): 0.661 / 0.871
        // (41 and 54). Session 23: fresh21's questions joining the examples cost a first place
        // (0.645 / 0.903, 40 and 56); Plaid's TRANSACTIONS webhook codes gave it back (0.661 /
        // 0.903, 41 and 56).
        // Session 24: fresh22's questions joining the examples gave a first place back (0.677 /
        // 0.903, 42 and 56).
        // Session 26: fresh23 to fresh34 joined the examples (not a ranking change): 42 and
        // 56 -> 41 and 55 of 62, lowered to that (bench/README, catalog/README).
        // Session 26: the examples' weight 0.75 -> 1.5, chosen on the studied splits (the ranking
        // change of catalog/README's session 26): 41 and 55 -> 40 and 58, lowered to that.
        // Session 27: the prefixes of unread words among the examples' features (catalog/README's
        // session 27): 40 and 58 -> 41 and 57.
        (scores.split(Split::Fresh12), 0.661, 0.919, "fresh12"),
        // Session 13's held-out split (60 questions from threads, help pages, provider docs and
        // issues, each source a title and address), written by a helper who read the entries but
        // never the ranking or the synonyms, first run against session 12's ranking with the
        // examples' vote: 0.567 / 0.883 (34 and 53 of 60), MRR 0.714. Never studied. Session 14's
        // fresh11 examples cost it one top-3 place (52); after session 14's changes 0.600 /
        // 0.883 (36 and 53), MRR 0.728. With entries 610 and 611: 0.583 / 0.850 (35 and 51), MRR
        // 0.718. The helper who wrote those entries read this split's per-question results once,
        // to narrow the entries' wording where it drew unrelated questions (it stopped before
        // tuning to them): fresh13 has been seen, though not studied, and fresh14 is the split
        // nobody has read.
        // Session 15, with entries 612-614: 35 and 49 (two top-3 places lost to them; aggregate
        // only, the questions were not read).
        // Session 17, with fresh15's questions among the examples: 34 and 50 (one first place
        // lost to them, one top-3 place gained; aggregate only).
        // Session 19's centroids in place of the vote: 0.633 / 0.867 (38 and 52), MRR 0.753.
        // Session 20: 38 and 53 once fresh18 joined the examples; 39 with the meanings its misses
        // showed; 0.667 / 0.900 (40 and 54), MRR 0.779, with "shut out" read as a lock and a block
        // for a stated time as a pause.
        // Session 21: fresh19's questions joining the examples cost one first place before any
        // other ranking change (0.650 / 0.900, 39 and 54). Then Stripe's and Pluggy's aliases:
        // 0.633 / 0.883 (38 and 53). Then Tink's statuses and Salt Edge's aliases: 0.633 / 0.867
        // (38 and 52); the floor records it. Session 22: fresh20's questions joining the examples
        // gave a top-3 place back (0.633 / 0.883); the meanings its misses showed, a first place
        // (0.650 / 0.883, 39 and 53).
        // Session 24: fresh22's questions joining the examples cost a first and a top-3 place
        // (0.633 / 0.867, 38 and 52).
        // Session 27: the prefixes of unread words: 38 and 53 -> 40 and 53.
        (scores.split(Split::Fresh13), 0.666, 0.883, "fresh13"),
        // Session 17's held-out split, written the day of fresh15, after fresh14 joined the examples
        // (70 questions from help pages, provider docs, community threads and issues, each source
        // a title and an address no earlier split uses, written by a helper who read the entries
        // and aliases but never the ranking or the synonyms), before any later ranking change, and
        // first run against the ranking as it then stood: 0.571 / 0.786 (40 and 55 of 70), MRR
        // 0.702. Never studied; its misses are not printed. With entries 620 and 621 (statement
        // files) in the catalogue, no ranking change: 0.571 / 0.800 (40 and 56), MRR 0.703.
        // Then with fresh15's questions among the examples: 0.586 / 0.786 (41 and 55), MRR 0.709.
        // Session 18's catalogue additions (see fresh17): one more in the top 3, 0.586 / 0.800 (41
        // and 56).
        // Session 19's centroids in place of the vote: 0.643 / 0.829 (45 and 58), MRR 0.755.
        // Session 20: fresh18's questions joining the examples cost two first places here before
        // any other ranking change (0.614 / 0.829, 43 and 58).
        // Session 21: 0.629 / 0.843 (44 and 59) with 'no error' read as one meaning, 0.643 (45)
        // with Stripe's and Pluggy's aliases; Tink's statuses and Salt Edge's aliases cost a top-3
        // place (0.643 / 0.829, 45 and 58). Session 22: fresh20's questions joining the examples
        // cost another (0.643 / 0.814, 45 and 57) before any other ranking change; the meanings its
        // misses showed, a first place and two top-3 places (0.657 / 0.843, 46 and 59). Session 23:
        // fresh21's questions joining the examples cost a first place (0.643 / 0.857, 45 and 60).
        // Session 24: fresh22's questions joining the examples gave a first place (0.657 / 0.857,
        // 46 and 60).
        // Session 26: fresh23 to fresh34 joined the examples (not a ranking change): 46 and
        // 60 -> 46 and 59 of 70, lowered to that (bench/README, catalog/README).
        // Session 27: the prefixes of unread words: 46 and 60 -> 47 and 61.
        // Session 32: fresh50 and fresh51 joined the examples (not a ranking change): 48 and 62
        // -> 46 and 62 (a changed card number now reads as a statement's unmatched account,
        // 621; a bank without an OFX server as our misconfiguration, 720), lowered to that; the
        // held-out splits together 359 -> 358 first, 471 -> 473 top 3.
        (scores.split(Split::Fresh16), 0.657, 0.871, "fresh16"),
        // Session 26's held-out split, written by a helper who read only the entries and aliases,
        // each source a title and an address no earlier split uses: 46 questions in Russian, Dutch,
        // Swedish, Polish and Czech, 17 labels doubtful. First run: 0.435 / 0.478 (20 and 22), MRR
        // 0.510. Then fresh23 to fresh34 joined the examples: 0.435 / 0.565 (20 and 26), MRR 0.545.
        // Never studied. Then the examples' weight 0.75 -> 1.5: 19 and 28, MRR 0.549.
        // Session 27: the prefixes of unread words: 19 and 28 -> 23 and 33, MRR 0.628.
        // Session 29: the examples' runs of letters (`ranking/letters.rs`), kept for what they gained
        // on the cross-validation and over the held-out splits (394 -> 405 first of 632): 23 and 33 -> 22 and 32;
        // lowered to that, against this file's rule, as catalog/README.md says.
        (scores.split(Split::Fresh35), 0.478, 0.695, "fresh35"),
        // Session 26's held-out split, written by a helper who read only the entries and aliases,
        // each source a title and an address no earlier split uses: 48 questions in German, French,
        // Portuguese, Norwegian, Finnish, Spanish, Italian and Danish, 11 labels doubtful. First
        // run: 0.542 / 0.625 (26 and 30), MRR 0.622. Then fresh23 to fresh34 joined the examples:
        // 0.542 / 0.708 (26 and 34), MRR 0.654. Never studied. Then the examples' weight 0.75 ->
        // 1.5: 27 and 36, MRR 0.672.
        // Session 27: the prefixes of unread words: 27 and 36 -> 31 and 35, MRR 0.726; the one
        // top-3 place lost breaks catalog/README's rule, and is said there.
        // Session 31: fresh48 and fresh49 joined the examples, 31 -> 30 first (MRR 0.721); the
        // other held-out splits kept 357 first of 576 together, and the cross-validation gained.
        // Then a code whose alias is unclassified (799) only adds to the words: 30 -> 32 first.
        // Session 35: the alias audit relabelled the studied questions about FinTS product
        // registration from 711 to 720, which moves both centroids (not a ranking change): 32 ->
        // 30 first, lowered to that (unread); the eighteen held-out splits together 400 -> 402
        // first, 534 -> 532 in the top 3.
        (scores.split(Split::Fresh36), 0.625, 0.729, "fresh36"),
        // Session 26's held-out split, written by a helper who read only the entries and aliases,
        // each source a title and an address no earlier split uses: 45 questions, 30 in English and
        // five each in Turkish, Romanian and Hungarian, 14 labels doubtful. First run: 0.533 /
        // 0.800 (24 and 36), MRR 0.669. Then fresh23 to fresh34 joined the examples: 0.556 / 0.800
        // (25 and 36), MRR 0.686. Never studied. Then the examples' weight 0.75 -> 1.5: 26 and 36,
        // MRR 0.701.
        // Session 27: the prefixes of unread words: 26 and 36 -> 26 and 37, MRR 0.708.
        (scores.split(Split::Fresh37), 0.577, 0.822, "fresh37"),
        // fresh38 (25 questions in English) and fresh39 (23 in nine other languages), written
        // after the examples' weight was chosen on the studied splits, to measure it: with 0.75
        // 17 and 23 (fresh38), 11 and 15 (fresh39), MRR 0.797 and 0.578; with 1.5 18 and 24, 12
        // and 15, MRR 0.841 and 0.609. Never studied.
        // Session 27: the prefixes of unread words: 18 and 24 -> 19 and 24 (fresh38), 12 and 15
        // -> 14 and 18 (fresh39), MRR 0.857 and 0.696.
        // Session 33: fresh52 and fresh53 joined the examples (not a ranking change): fresh38 19
        // -> 18 first, lowered to that (which question moved is not read: the split stays held
        // out); the held-out splits together 358 -> 357 first, 473 top 3 unchanged.
        (scores.split(Split::Fresh38), 0.72, 0.960, "fresh38"),
        // Session 34: fresh54 and fresh55 joined the examples (not a ranking change): fresh39 14
        // -> 13 first, lowered to that (unread, as above), as was fresh45 19 -> 18; the sixteen older
        // held-out splits together 357 -> 355 first, 473 -> 478 in the top 3.
        // Session 35: fresh56 and fresh57 joined the examples (not a ranking change): fresh39 13
        // -> 12 first, lowered to that (unread); the sixteen older held-out splits together 355
        // -> 358 first, 478 -> 479 in the top 3.
        (scores.split(Split::Fresh39), 0.521, 0.782, "fresh39"),
        // Session 27's held-out splits, written by helpers who read only the entries and aliases,
        // each source a title and an address no earlier split uses, before that session's ranking
        // change: fresh40, 37 questions in English, mostly GitHub issues of open-source finance
        // apps, 6 labels doubtful; fresh41, 13 in seven other languages, 4 doubtful (the helper
        // found nearly every page it looked at used); fresh42, 19 in seven other languages, mostly
        // GitHub issues, 10 doubtful. First run: 20 and 31, 10 and 10, 7 and 10 (MRR 0.703,
        // 0.800, 0.481). With the prefixes of unread words: 21 and 31, 10 and 10, 8 and 10 (MRR
        // 0.712, 0.805, 0.548). Never studied.
        (scores.split(Split::Fresh40), 0.567, 0.837, "fresh40"),
        (scores.split(Split::Fresh41), 0.769, 0.769, "fresh41"),
        // Session 29: the examples' runs of letters (`ranking/letters.rs`), kept for what they gained
        // on the cross-validation and over the held-out splits (394 -> 405 first of 632): 8 and 10 -> 7 and 11;
        // lowered to that, against this file's rule, as catalog/README.md says.
        (scores.split(Split::Fresh42), 0.368, 0.526, "fresh42"),
        // Session 28's held-out splits, written by helpers who read only the entries and aliases,
        // each source a title and an address no earlier split uses, before that session's ranking
        // change: fresh43, 30 questions in English from GitHub issues, 7 labels doubtful; fresh44,
        // 25 in twelve other languages (14 of them in Japanese, Chinese, Korean, Hebrew or Greek,
        // scripts no example or translated word covered), 9 doubtful; fresh45, 27 in English from
        // help centres and community pages, 7 doubtful. First run: 19 and 24, 3 and 7, 19 and 23
        // (MRR 0.726, 0.203, 0.799). Never studied.
        // Then Chinese, Japanese and Korean read at their known words, with those languages',
        // Hebrew's and Greek's words for the concepts: fresh44 3 and 7 -> 8 and 14 (MRR 0.446).
        // Then the words of eleven more languages (Indonesian to Arabic, measured by fresh47):
        // fresh44 lost one top-3 place, 14 -> 13 (MRR 0.427), unread; this file's rule broken by
        // one question, said in catalog/README.md.
        (scores.split(Split::Fresh43), 0.633, 0.8, "fresh43"),
        // Session 29: the examples' runs of letters (`ranking/letters.rs`), kept for what they gained
        // on the cross-validation and over the held-out splits (394 -> 405 first of 632): 8 and 13 -> 7 and 13;
        // lowered to that, against this file's rule, as catalog/README.md says.
        // Session 36: entry 717 (a bank login already linked to another profile, Akahu's
        // "Someone else is using these credentials", until then under 103) joined the catalogue,
        // not a ranking change: 13 -> 12 in the top 3, lowered to that (unread; see fresh39).
        (scores.split(Split::Fresh44), 0.279, 0.479, "fresh44"),
        // Session 34: fresh54 and fresh55 joined the examples (not a ranking change): 19 -> 18
        // first, lowered to that (unread; see fresh39).
        (scores.split(Split::Fresh45), 0.666, 0.851, "fresh45"),
        // fresh46, 25 questions in Japanese, Chinese and Korean, written by a fourth helper while
        // that reading was built, without either reading the other: 5 and 6 first and in the top
        // 3 without it (MRR 0.232), 12 and 18 with it (MRR 0.636). Never studied.
        // Session 29: the examples' runs of letters (`ranking/letters.rs`), kept for what they gained
        // on the cross-validation and over the held-out splits (394 -> 405 first of 632): 12 and 18 -> 12 and 17;
        // lowered to that, against this file's rule, as catalog/README.md says.
        (scores.split(Split::Fresh46), 0.479, 0.679, "fresh46"),
        // fresh47, 21 questions in Indonesian, Malay, Vietnamese, Thai, Turkish, Estonian,
        // Latvian, Lithuanian, Greek, Hebrew and Arabic, written by a fifth helper while those
        // languages' words were written, neither seeing the other, 8 labels doubtful. Before
        // any of this session's reading: 9 and 10 (MRR 0.471); with the Chinese, Japanese,
        // Korean, Hebrew and Greek words: 11 and 12; with the eleven languages' words: 12 and 16
        // (MRR 0.684). Never studied.
        (scores.split(Split::Fresh47), 0.571, 0.761, "fresh47"),
        // fresh64, 30 questions as customers write short posts, app reviews and replies (19
        // outside the US; nine about statement files, doubled or missing transactions; none
        // names Plaid, MX or Yodlee; 12 labels doubtful), and fresh65, 30 as developers and ops
        // engineers write issues and incident notes (Plaid 6, FinTS 4, OFX Direct Connect 3,
        // Mastercard 3 and a dozen other providers once or twice; 12 doubtful), written by two
        // helpers at the start of session 38 from pages no earlier split used, reading only the
        // entries and aliases. First run, with fresh62 and fresh63 among the examples and no
        // other change: fresh64 20 first and 27 in the top 3 (MRR 0.805), fresh65 20 and 27 (MRR
        // 0.790). Never studied.
        (scores.split(Split::Fresh64), 0.666, 0.9, "fresh64"),
        (scores.split(Split::Fresh65), 0.666, 0.9, "fresh65"),
    ]
}
