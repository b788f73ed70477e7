//! CRI messages ↔ crimson-sandbox's own messages. The front door validates here what the
//! sandbox daemon cannot check (required fields, enum ranges) and fills CRI's defaults.

pub mod container;
pub mod pod;
#[cfg(test)]
mod properties;
mod security_profiles;
pub mod stats;

use tonic::Status;

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
