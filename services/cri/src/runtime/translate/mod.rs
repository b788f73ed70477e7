//! CRI messages ↔ crimson-sandbox's own messages. The front door validates here what the
//! sandbox daemon cannot check (required fields, enum ranges) and fills CRI's defaults.

pub mod container;
pub mod pod;
#[cfg(test)]
mod properties;
mod security_profiles;
pub mod stats;

use std::borrow::Cow;

use tonic::Status;

/// A message field that may be unset, borrowed (answers read from the front door's cache are
/// shared; a list at 50 pods would copy every spec otherwise), or its default.
fn set_or_default<T: Clone + Default>(field: &Option<T>) -> Cow<'_, T> {
    field
        .as_ref()
        .map_or_else(|| Cow::Owned(T::default()), Cow::Borrowed)
}

/// Checks that a CRI enum value is one the API defines.
fn enum_in_range(field: &str, value: i32, max: i32) -> Result<i32, Status> {
    if (0..=max).contains(&value) {
        Ok(value)
    } else {
        Err(Status::invalid_argument(format!(
            "{field} has no value {value}"
        )))
    }
}
