//! crimson-image's image records as CRI images.

use crimson_api::image::v1::Image as InternalImage;
use k8s_cri::v1::{Image, Int64Value};
use serde_json::Value;

/// The CRI view of an image record.
pub fn to_cri_image(image: &InternalImage) -> Image {
    let config: Value = serde_json::from_slice(&image.config_json).unwrap_or(Value::Null);
    let user = config
        .pointer("/config/User")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (uid, username) = image_user(user);
    Image {
        id: image.id.clone(),
        repo_tags: image.repo_tags.clone(),
        repo_digests: image.repo_digests.clone(),
        size: image.size,
        uid: uid.map(|value| Int64Value { value }),
        username,
        ..Default::default()
    }
}

/// The image config's `User` as kubelet wants it: a numeric user becomes `uid`, a name becomes
/// `username`; the group part is dropped; no user gives neither (as containerd does).
fn image_user(user: &str) -> (Option<i64>, String) {
    let name = user.split(':').next().unwrap_or_default();
    if name.is_empty() {
        return (None, String::new());
    }
    match name.parse::<i64>() {
        Ok(uid) => (Some(uid), String::new()),
        Err(_) => (None, name.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_users_are_uids_and_names_are_usernames() {
        assert_eq!(image_user("1002"), (Some(1002), String::new()));
        assert_eq!(image_user("1003:1004"), (Some(1003), String::new()));
        assert_eq!(image_user("www-data"), (None, "www-data".to_string()));
        assert_eq!(image_user("www-data:staff"), (None, "www-data".to_string()));
        assert_eq!(image_user(""), (None, String::new()));
    }
}
