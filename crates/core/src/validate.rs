//! Checks on text from outside before it is stored. C0 control characters other than tab,
//! newline and carriage return are refused: a NUL survives SQLite but comes out raw in the
//! Markdown export, cuts C strings short in other tools and garbles terminals. Lengths count
//! the text as sent (not trimmed), so the limit the OpenAPI spec states is the one enforced.

use crate::CoreError;

/// Longest title (incident, evidence, action), in characters.
pub const MAX_TITLE: usize = 500;
/// Longest statement, timeline message or question, in characters.
pub const MAX_TEXT: usize = 2000;

/// Whether `c` may appear in stored text: anything but the C0 controls, bar tab, LF and CR.
pub fn allowed_char(c: char) -> bool {
    c > '\u{1f}' || matches!(c, '\t' | '\n' | '\r')
}

/// Refuses a control character in `value` (422 naming `field` and where the character is).
pub fn text(field: &str, value: &str) -> Result<(), CoreError> {
    match value.chars().enumerate().find(|(_, c)| !allowed_char(*c)) {
        None => Ok(()),
        Some((i, c)) => Err(CoreError::Invalid(format!(
            "{field} must not contain control characters (other than tab, newline and carriage \
             return): found U+{:04X} at character {}",
            c as u32,
            i + 1
        ))),
    }
}

/// [`text`] for an optional field.
pub fn optional_text(field: &str, value: Option<&str>) -> Result<(), CoreError> {
    value.map_or(Ok(()), |v| text(field, v))
}

/// Refuses text longer than `max` characters as sent.
pub fn max_chars(field: &str, value: &str, max: usize) -> Result<(), CoreError> {
    if value.chars().count() > max {
        return Err(CoreError::Invalid(format!(
            "{field} must be at most {max} characters"
        )));
    }
    Ok(())
}

/// `value` trimmed; refused when empty, longer than `max` characters or holding control
/// characters (each answer names the field).
pub(crate) fn required(field: &str, value: &str, max: usize) -> Result<String, CoreError> {
    text(field, value)?;
    max_chars(field, value, max)?;
    let v = value.trim();
    if v.is_empty() {
        return Err(CoreError::Invalid(format!("{field} must not be empty")));
    }
    Ok(v.to_string())
}

/// An optional free-text field, refused if it holds control characters.
pub(crate) fn checked(field: &str, value: Option<String>) -> Result<Option<String>, CoreError> {
    optional_text(field, value.as_deref())?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused_with_the_field_and_place() {
        assert!(text("title", "disk full\ton db-1\r\nsee log").is_ok());
        assert!(text("title", "naïve — ünïcode ✓ \u{7f}\u{85}").is_ok());
        let e = text("title", "ab\0c").unwrap_err().to_string();
        assert!(
            e.starts_with("title must not contain control characters"),
            "{e}"
        );
        assert!(e.contains("U+0000 at character 3"), "{e}");
        let e = text("content", "\u{1b}[31mred").unwrap_err().to_string();
        assert!(e.contains("content") && e.contains("U+001B"), "{e}");
        for c in ('\0'..='\u{1f}').filter(|c| !matches!(c, '\t' | '\n' | '\r')) {
            assert!(text("f", &c.to_string()).is_err(), "{c:?}");
        }
        assert!(optional_text("owner", None).is_ok());
        assert!(optional_text("owner", Some("\u{7}")).is_err());
    }

    #[test]
    fn lengths_count_characters_as_sent() {
        assert!(max_chars("title", &"é".repeat(MAX_TITLE), MAX_TITLE).is_ok());
        let e = max_chars("title", &format!(" {}", "a".repeat(MAX_TITLE)), MAX_TITLE);
        assert_eq!(
            e.unwrap_err().to_string(),
            "title must be at most 500 characters"
        );
    }
}
