//! Randomness for ids and tokens, from the kernel (getrandom(2)) and nothing else: an id or a
//! token made without it would be predictable, so its failure is an error, never a fallback.

/// `N` random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_draws_differ() {
        let (a, b) = (super::random_bytes::<32>(), super::random_bytes::<32>());
        assert_ne!(a.unwrap(), b.unwrap());
    }
}
