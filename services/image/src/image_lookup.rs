//! Finding an image by what a user or kubelet calls it: full id, `sha256:` id, name with tag or
//! digest (short names resolved like pulls), or a unique id prefix.

use crate::{
    Result,
    records::ImageRecord,
    reference::{self},
    state::State,
};

/// Shortest id prefix accepted, so that short names are not taken for ids.
const MIN_ID_PREFIX: usize = 6;

/// The image `reference` designates, if any.
pub fn find_image(state: &State, reference: &str) -> Result<Option<ImageRecord>> {
    let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
    let is_hex = !hex.is_empty() && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if is_hex && hex.len() == 64 {
        return state.records.get(&format!("sha256:{hex}"));
    }
    if let Ok(parsed) = reference::parse(reference) {
        let conf = state
            .registries
            .get(&state.registries_conf)
            .unwrap_or_default();
        for candidate in conf.candidates(&parsed) {
            let name = match &candidate.digest {
                Some(digest) => candidate.digested_name(digest),
                None => candidate.tagged_name().unwrap_or_else(|| candidate.name()),
            };
            if let Some(id) = state.records.id_of_name(&name)? {
                return state.records.get(&id);
            }
        }
    }
    if is_hex && hex.len() >= MIN_ID_PREFIX {
        let prefix = format!("sha256:{hex}");
        let mut matches = state
            .records
            .all()?
            .into_iter()
            .filter(|r| r.id.starts_with(&prefix));
        if let (Some(only), None) = (matches.next(), matches.next()) {
            return Ok(Some(only));
        }
    }
    Ok(None)
}
