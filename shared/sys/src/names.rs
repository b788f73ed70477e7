//! Ids that daemons use as file and directory names.

/// True when `id` can name a file or directory by itself: 1 to 128 letters, digits, `-`, `_`
/// or `.`, not starting with a dot (so never `.`, `..`, a hidden file or a path).
pub fn is_safe_file_name(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::is_safe_file_name;

    #[test]
    fn ids_that_could_leave_their_directory_are_refused() {
        for good in ["abc", "a-b_c.d", &"f".repeat(64), &"x".repeat(128)] {
            assert!(is_safe_file_name(good), "{good:?}");
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "../x",
            "a b",
            "é",
            &"x".repeat(129),
        ] {
            assert!(!is_safe_file_name(bad), "{bad:?}");
        }
    }
}
