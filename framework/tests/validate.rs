//! `Checks`: text fields trimmed in place, one sentence per failing field, in field order.

use rgi_framework::Checks;

#[test]
fn every_field_reports_its_first_failure_in_order() {
    let (mut name, mut message, mut city) = ("  ".to_owned(), "x".repeat(11), " Oslo\n".to_owned());
    let mut checks = Checks::new();
    checks.text("Name", &mut name).required().max_chars(10);
    checks
        .text("Message", &mut message)
        .required()
        .max_chars(10)
        .min_chars(50);
    checks
        .text("City", &mut city)
        .required()
        .min_chars(2)
        .max_chars(4);
    assert_eq!((name.as_str(), city.as_str()), ("", "Oslo"));
    assert_eq!(
        checks.errors(),
        ["Name is required.", "Message is longer than 10 characters."]
    );
    checks.fail("That name is taken.");
    assert_eq!(checks.finish().unwrap_err().len(), 3);
}

#[test]
fn lengths_count_characters_and_custom_checks_run() {
    let (mut word, mut short) = ("é".repeat(4), "a".to_owned());
    let mut checks = Checks::new();
    checks
        .text("Word", &mut word)
        .max_chars(4)
        .check(|w| w.starts_with('é'), "Word must start with é.");
    checks.text("Short", &mut short).min_chars(2);
    assert_eq!(checks.errors(), ["Short is shorter than 2 characters."]);

    let mut empty = String::new();
    let mut optional = Checks::new();
    optional
        .text("Nickname", &mut empty)
        .min_chars(3)
        .max_chars(8);
    assert_eq!(
        optional.finish(),
        Ok(()),
        "an empty optional field passes its length checks"
    );

    let mut bad = "abc".to_owned();
    let mut custom = Checks::new();
    custom.text("Code", &mut bad).check(
        |c| c.chars().all(|ch| ch.is_ascii_digit()),
        "Code must be digits.",
    );
    assert_eq!(
        custom.finish(),
        Err(vec!["Code must be digits.".to_owned()])
    );
}
