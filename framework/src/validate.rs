//! [`Checks`]: form validation in WTForms' manner, for the page that shows the form again with its
//! errors (`422`). Each text field is trimmed in place, then checked; every failure is one sentence
//! for the user, and a field stops at its first failure.

/// The failures of a form's checks, in the order the fields were checked.
///
/// ```
/// use rgi_framework::Checks;
///
/// let (mut name, mut message) = ("  Ada  ".to_owned(), String::new());
/// let mut checks = Checks::new();
/// checks.text("Name", &mut name).required().max_chars(80);
/// checks.text("Message", &mut message).required().max_chars(2000);
/// assert_eq!(name, "Ada"); // trimmed in place, so the form shows it again as checked
/// assert_eq!(checks.finish(), Err(vec!["Message is required.".to_owned()]));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use = "a form's checks mean nothing until `finish` (or `errors`) is read"]
pub struct Checks {
    errors: Vec<String>,
}

impl Checks {
    /// No checks yet.
    pub fn new() -> Self {
        Checks::default()
    }

    /// Trim `value` (leading and trailing white space) in place and check it as the field `label`
    /// (the label starts each failure's sentence).
    pub fn text<'a>(&'a mut self, label: &'a str, value: &'a mut String) -> TextCheck<'a> {
        let trimmed = value.trim();
        if trimmed.len() != value.len() {
            *value = trimmed.to_owned();
        }
        TextCheck {
            checks: self,
            label,
            value,
            failed: false,
        }
    }

    /// Add a failure found by the application's own logic (`"That name is taken."`).
    pub fn fail(&mut self, message: impl Into<String>) {
        self.errors.push(message.into());
    }

    /// The failures so far.
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// `Ok(())` when every check passed, else every failure.
    ///
    /// # Errors
    ///
    /// The failures, one sentence each.
    pub fn finish(self) -> Result<(), Vec<String>> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }
}

/// The checks of one text field; see [`Checks::text`]. After its first failure a field's later
/// checks are skipped, so each field reports at most one sentence.
#[derive(Debug)]
pub struct TextCheck<'a> {
    checks: &'a mut Checks,
    label: &'a str,
    value: &'a str,
    failed: bool,
}

impl TextCheck<'_> {
    /// Fail with `message` unless `ok(value)` holds.
    pub fn check(self, ok: impl FnOnce(&str) -> bool, message: impl Into<String>) -> Self {
        self.unless(ok, |_| message.into())
    }

    /// Fail with "`label` is required." when the value is empty.
    pub fn required(self) -> Self {
        self.unless(|v| !v.is_empty(), |label| format!("{label} is required."))
    }

    /// Fail with "`label` is longer than `max` characters." (characters, not bytes).
    pub fn max_chars(self, max: usize) -> Self {
        self.unless(
            |v| v.chars().count() <= max,
            |label| format!("{label} is longer than {max} characters."),
        )
    }

    /// Fail with "`label` is shorter than `min` characters." (an empty value passes: combine with
    /// [`required`](TextCheck::required)).
    pub fn min_chars(self, min: usize) -> Self {
        self.unless(
            |v| v.is_empty() || v.chars().count() >= min,
            |label| format!("{label} is shorter than {min} characters."),
        )
    }

    /// Record `message(label)` unless the field already failed or `ok(value)` holds (the message
    /// is made only on failure).
    fn unless(
        mut self,
        ok: impl FnOnce(&str) -> bool,
        message: impl FnOnce(&str) -> String,
    ) -> Self {
        if !self.failed && !ok(self.value) {
            self.checks.errors.push(message(self.label));
            self.failed = true;
        }
        self
    }
}
