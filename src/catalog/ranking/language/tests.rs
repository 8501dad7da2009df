#![allow(clippy::unwrap_used)]

use super::*;

fn lexicon() -> Lexicon {
    let mut lexicon = Lexicon::new(&Synonyms::parse(crate::catalog::files::SYNONYMS).unwrap());
    lexicon.intern("The password was changed at the bank. The account is closed; the bank is down.");
    let frequency = vec![1; lexicon.term_count()];
    lexicon.finish(frequency);
    lexicon
}

fn said(lexicon: &Lexicon, text: &str) -> Vec<TermId> {
    lexicon.read(&lexicon.look_up(text)).terms.into_iter().map(|(term, _)| term).collect()
}

fn term(lexicon: &Lexicon, stem: &str) -> TermId {
    lexicon.stems[stem]
}

#[test]
fn the_shipped_synonyms_parse() {
    Synonyms::parse(crate::catalog::files::SYNONYMS).unwrap();
}

#[test]
fn another_languages_word_reads_as_the_english_word_in_questions_only() {
    let mut lexicon = Lexicon::new(&Synonyms::parse(crate::catalog::files::SYNONYMS).unwrap());
    // An entry quoting a German reply keeps its word: its statistics stay the English ones.
    let entry: Vec<TermId> = lexicon.intern("Konto gesperrt").iter().map(|token| token.term).collect();
    lexicon.finish(vec![1; lexicon.term_count()]);
    let account = term(&lexicon, "account");
    assert!(!entry.contains(&account), "{entry:?}");
    assert!(said(&lexicon, "Konto geschlossen").contains(&account));
    assert!(said(&lexicon, "счёт закрыт").contains(&account));
    assert!(said(&lexicon, "Konto geschlossen").contains(&term(&lexicon, "#closed")));
}

#[test]
fn a_translation_is_one_word_for_one_word() {
    let two = "stopwords = []\n[negation]\ncues = []\nruled_out = []\ndeterminers = []\nblame = []\nclause_breaks = []\n[words]\n\"kontoauszug\" = \"bank statement\"\n";
    let error = Synonyms::parse(two).unwrap_err();
    assert!(error.contains("one word on each side"), "{error}");
}

#[test]
fn different_words_for_one_cause_fire_one_concept() {
    let lexicon = lexicon();
    let changed = term(&lexicon, "#credential_changed");
    for text in ["I changed my password", "updated my bank password", "password reset yesterday", "new passcode pin"] {
        assert!(said(&lexicon, text).contains(&changed), "{text}");
    }
}

#[test]
fn a_denied_action_is_ruled_out_and_a_denied_symptom_is_kept() {
    let lexicon = lexicon();
    let (password, changed, connect) =
        (term(&lexicon, "password"), term(&lexicon, "#credential_changed"), term(&lexicon, "#outage"));
    let ruled_out = said(&lexicon, "I did not change my password");
    assert!(!ruled_out.contains(&password) && !ruled_out.contains(&changed), "{ruled_out:?}");
    assert!(said(&lexicon, "I didn't change anything, but the password is wrong").contains(&password));
    assert!(said(&lexicon, "I can't connect to my bank").contains(&connect));
    assert!(!said(&lexicon, "the password is not the problem").contains(&password));
    assert!(!said(&lexicon, "it's the provider, not my bank").contains(&term(&lexicon, "bank")));
}

#[test]
fn an_error_class_name_reads_as_its_words() {
    let lexicon = lexicon();
    assert_eq!(said(&lexicon, "PasswordChangedError")[..2], said(&lexicon, "password changed error")[..2]);
}

#[test]
fn misspelt_words_are_read_as_the_word_meant() {
    let lexicon = lexicon();
    assert_eq!(said(&lexicon, "pasword")[0], term(&lexicon, "password"));
    assert_eq!(said(&lexicon, "passowrd")[0], term(&lexicon, "password"));
    assert_eq!(said(&lexicon, "clossed")[0], term(&lexicon, "close"));
    assert!(said(&lexicon, "xyzzy").is_empty());
}

#[test]
fn a_real_word_one_letter_longer_is_not_read_as_a_known_one() {
    let mut lexicon = Lexicon::new(&Synonyms::parse(crate::catalog::files::SYNONYMS).unwrap());
    lexicon.intern("The bank form lists every defined password.");
    let frequency = vec![1; lexicon.term_count()];
    lexicon.finish(frequency);
    // A key struck twice is a slip; a letter that repeats nothing makes another word.
    assert_eq!(said(&lexicon, "passsword")[0], term(&lexicon, "password"));
    for (word, other) in [("blank", "bank"), ("forum", "form"), ("undefined", "defin")] {
        assert!(!said(&lexicon, word).contains(&term(&lexicon, other)), "{word} read as {other}");
    }
}

#[test]
fn two_slips_in_a_long_word_are_read_as_the_word_meant() {
    let mut lexicon = Lexicon::new(&Synonyms::parse(crate::catalog::files::SYNONYMS).unwrap());
    lexicon.intern("The bank is in planned maintenance.");
    let frequency = vec![1; lexicon.term_count()];
    lexicon.finish(frequency);
    let maintenance = term(&lexicon, "mainten");
    assert_eq!(said(&lexicon, "maintanence")[0], maintenance);
    assert_eq!(said(&lexicon, "maintenence")[0], maintenance);
}

#[test]
fn a_phrase_inside_a_longer_one_of_another_concept_is_not_said() {
    let lexicon = lexicon();
    let (closed, outage) = (term(&lexicon, "#closed"), term(&lexicon, "#outage"));
    let shut = said(&lexicon, "the bank shut down my account");
    assert!(shut.contains(&closed) && !shut.contains(&outage), "{shut:?}");
    assert!(said(&lexicon, "the bank is down").contains(&outage));
}

#[test]
fn a_word_is_one_occurrence_however_many_phrases_stem_to_it() {
    let lexicon = lexicon();
    let renew = term(&lexicon, "#renew");
    assert_eq!(said(&lexicon, "my access will expire").iter().filter(|&&t| t == renew).count(), 1);
}

#[test]
fn a_named_cause_overrides_the_default_party_of_a_stalled_feed() {
    let lexicon = lexicon();
    let stalled = term(&lexicon, "#stalled");
    let reading = lexicon.read(&lexicon.look_up("the feed stopped updating"));
    assert_eq!(lexicon.actor_of(stalled, reading.names_a_cause), Some(Actor::Bank));
    let reading = lexicon.read(&lexicon.look_up("I changed my password and the feed stopped updating"));
    assert!(reading.names_a_cause);
    assert_eq!(lexicon.actor_of(stalled, reading.names_a_cause), None);
}

#[test]
fn a_party_that_passes_a_message_on_is_not_who_must_act() {
    let lexicon = lexicon();
    let provider_side = term(&lexicon, "#provider_side");
    assert!(said(&lexicon, "it's an aggregator problem").contains(&provider_side));
    let messenger = said(&lexicon, "the aggregator says the bank is busy");
    assert!(!messenger.contains(&provider_side), "{messenger:?}");
    assert!(messenger.contains(&term(&lexicon, "#provider")), "{messenger:?}");
}

#[test]
fn a_data_service_named_as_down_is_its_own_outage_and_one_passing_the_banks_on_is_not() {
    let lexicon = lexicon();
    let provider_outage = term(&lexicon, "#provider_outage");
    for own in ["plaid is down", "yodlee outage since this morning", "is finicity down?", "the GoCardless status page"]
    {
        assert!(said(&lexicon, own).contains(&provider_outage), "{own}");
    }
    for passed_on in ["plaid says the bank is down", "the bank is down, plaid is fine", "plaid: INSTITUTION_DOWN"] {
        assert!(!said(&lexicon, passed_on).contains(&provider_outage), "{passed_on}");
    }
}

#[test]
fn a_party_something_was_done_for_or_passed_on_by_is_not_who_must_act() {
    let lexicon = lexicon();
    let provider_side = term(&lexicon, "#provider_side");
    let object = said(&lexicon, "the customer clicked stop sharing for the aggregator");
    assert!(!object.contains(&provider_side), "{object:?}");
    let message = said(&lexicon, "aggregator message: this site no longer offers online services");
    assert!(!message.contains(&provider_side), "{message:?}");
    assert!(said(&lexicon, "the aggregator is having problems").contains(&provider_side));
}

#[test]
fn a_word_that_is_part_of_a_fired_concept_of_several_parts_is_not_another_cause() {
    let lexicon = lexicon();
    let (renew, otp_wrong) = (term(&lexicon, "#renew"), term(&lexicon, "#otp_wrong"));
    let code = said(&lexicon, "the verification code expired before I typed it");
    assert!(code.contains(&otp_wrong) && !code.contains(&renew), "{code:?}");
    assert!(said(&lexicon, "my bank access expired").contains(&renew));
}

#[test]
fn a_phrase_inside_a_longer_one_of_the_same_concept_counts_once() {
    let lexicon = lexicon();
    let otp = term(&lexicon, "#otp");
    assert_eq!(said(&lexicon, "a text message").iter().filter(|&&t| t == otp).count(), 1);
}

#[test]
fn their_end_is_the_side_of_the_party_named_last() {
    let lexicon = lexicon();
    let (bank_side, provider_side) = (term(&lexicon, "#bank_side"), term(&lexicon, "#provider_side"));
    let bank = said(&lexicon, "I called the bank and the problem is on their end");
    assert!(bank.contains(&bank_side) && !bank.contains(&provider_side), "{bank:?}");
    let provider = said(&lexicon, "the aggregator's status page shows an incident on their side");
    assert!(provider.contains(&provider_side) && !provider.contains(&bank_side), "{provider:?}");
    assert!(said(&lexicon, "it's on their end").contains(&bank_side));
}

#[test]
fn what_was_tried_counts_less_than_what_went_wrong() {
    let lexicon = lexicon();
    let reading = lexicon.read(&lexicon.look_up("I tried to reset the password but the bank is down"));
    let weight_of = |stem: &str| {
        reading.terms.iter().find(|(term, _)| *term == lexicon.stems[stem]).map(|(_, weight)| *weight).unwrap()
    };
    assert_eq!(weight_of("#credential_changed"), COMPOUND * ATTEMPTED, "{:?}", reading.terms);
    assert_eq!(weight_of("#outage"), 1.0);
}

#[test]
fn chinese_japanese_and_korean_are_read_at_their_known_words() {
    let lexicon = lexicon();
    let changed = term(&lexicon, "#credential_changed");
    for text in ["銀行のパスワードを変更しました", "我修改了网银密码", "비밀번호를 변경했어요"]
    {
        assert!(said(&lexicon, text).contains(&changed), "{text}");
    }
    let account = term(&lexicon, "account");
    assert!(said(&lexicon, "口座が解約されました").contains(&term(&lexicon, "#closed")));
    assert!(said(&lexicon, "口座が解約されました").contains(&account));
    // A clause ends at a full-width full stop, as at a Latin one.
    let clauses: Vec<u32> = lexicon.look_up("パスワード。変更").iter().map(|token| token.clause).collect();
    assert_eq!(clauses, [0, 1]);
}

#[test]
fn thai_and_arabic_say_a_password_was_changed_in_their_own_words() {
    let lexicon = lexicon();
    let changed = term(&lexicon, "#credential_changed");
    // Thai writes no space between words; Arabic does.
    for text in ["ฉันเปลี่ยนรหัสผ่านแล้ว", "غيرت كلمة المرور", "şifremi değiştirdim", "nomainīju paroli"]
    {
        assert!(said(&lexicon, text).contains(&changed), "{text}");
    }
}

#[test]
fn a_denial_before_or_after_the_verb_rules_the_change_out() {
    let lexicon = lexicon();
    let changed = term(&lexicon, "#credential_changed");
    for text in [
        "パスワードは変更していません",
        "我没有修改密码",
        "비밀번호를 변경하지 않았습니다",
        "비밀번호 안 바꿨어요",
        "tôi không đổi mật khẩu",
        "saya tidak mengubah kata sandi",
    ] {
        assert!(!said(&lexicon, text).contains(&changed), "{text}");
    }
    // A denial of a symptom is kept, as in English: "the code did not arrive".
    assert!(said(&lexicon, "パスワードを変更しました").contains(&changed));
    assert!(said(&lexicon, "验证码没有收到").contains(&term(&lexicon, "#otp")));
}
