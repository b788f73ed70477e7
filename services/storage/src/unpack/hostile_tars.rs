//! Property test of the unpacker against hostile layers: any sequence of files, directories,
//! symlinks and hard links with names and targets that climb out (`..`, absolute paths,
//! links to a directory outside) either unpacks inside the destination or fails, and never
//! panics or writes outside it. Absolute targets point at a directory of the test's own, so
//! an escape would land there and be seen, not on the host. A case proptest finds is kept in
//! `proptest-regressions/` and runs first from then on.

use proptest::prelude::*;

use super::{WhiteoutMode, tests::TarBuilder, unpack_layer};

/// The directory absolute names and links point at (one per test process): outside the
/// destination, and the test's own.
fn outside() -> &'static str {
    static OUTSIDE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    OUTSIDE.get_or_init(|| format!("/tmp/crimson-unpack-outside-{}", std::process::id()))
}

/// One tar entry: kind (0 file, 1 dir, 2 symlink, 3 hard link), name, link target.
type Entry = (u8, String, String);

/// Paths of a few components, some of which climb: `a/../../x`, `/outside/a`, `./b`.
fn hostile_path(outside: &'static str) -> impl Strategy<Value = String> {
    let component = prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just("..".to_string()),
        Just(".".to_string()),
        Just("link".to_string()),
        Just(".wh.a".to_string()),
        Just(".wh..wh..opq".to_string()),
    ];
    (
        prop::bool::weighted(0.2),
        prop::collection::vec(component, 1..4),
    )
        .prop_map(move |(absolute, parts)| {
            let joined = parts.join("/");
            if absolute {
                format!("{outside}/{joined}")
            } else {
                joined
            }
        })
}

fn entries(outside: &'static str) -> impl Strategy<Value = Vec<Entry>> {
    prop::collection::vec(
        (0u8..4, hostile_path(outside), hostile_path(outside)),
        1..12,
    )
}

/// Everything under `dir`, relative, sorted.
fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        for entry in std::fs::read_dir(&next).into_iter().flatten().flatten() {
            let path = entry.path();
            found.push(path.strip_prefix(dir).unwrap().display().to_string());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            }
        }
    }
    found.sort();
    found
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn hostile_layers_stay_inside_the_destination(
        layer in entries(outside()),
        overlay in any::<bool>(),
    ) {
        let scratch = tempfile::tempdir().unwrap();
        let (dest, outside) = (scratch.path().join("dest"), std::path::Path::new(outside()));
        std::fs::create_dir(&dest).unwrap();
        std::fs::create_dir_all(outside).unwrap();
        let outside_before = listing(outside);
        let mut tar = TarBuilder::new().dir("a").symlink("link", outside.to_str().unwrap());
        for (kind, name, target) in &layer {
            tar = match kind {
                0 => tar.file(name, b"x"),
                1 => tar.dir(name),
                2 => tar.symlink(name, target),
                _ => tar.hardlink(name, target),
            };
        }
        let mode = if overlay { WhiteoutMode::Overlay } else { WhiteoutMode::Delete };
        let _ = unpack_layer(&tar.bytes()[..], "", &dest, mode);
        prop_assert_eq!(listing(outside), outside_before, "nothing written outside");
        let _ = std::fs::remove_dir(outside);
        prop_assert_eq!(
            listing(scratch.path()).into_iter().filter(|p| !p.starts_with("dest")).count(),
            0,
            "nothing beside the destination"
        );
    }
}
