//! Limits and checks of what people type, shared by every use-case.

use crate::CoreError;

/// Longest title (incidents, evidence, actions), in characters.
pub(crate) const MAX_TITLE: usize = 500;
/// Longest free text (notes, hypotheses, questions), in characters.
pub(crate) const MAX_TEXT: usize = 2000;

/// `value` trimmed, refused when empty or longer than `max` characters.
pub(crate) fn required(field: &str, value: &str, max: usize) -> Result<String, CoreError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(CoreError::Invalid(format!("{field} must not be empty")));
    }
    if v.chars().count() > max {
        return Err(CoreError::Invalid(format!(
            "{field} must be at most {max} characters"
        )));
    }
    Ok(v.to_string())
}
