use std::{io::Write, os::unix::fs::MetadataExt, path::Path};

use super::*;

/// A tar under construction, with raw names so that hostile paths can be written too.
pub(super) struct TarBuilder(tar::Builder<Vec<u8>>);

impl TarBuilder {
    pub(super) fn new() -> Self {
        Self(tar::Builder::new(Vec::new()))
    }

    pub(super) fn entry(
        mut self,
        name: &str,
        kind: tar::EntryType,
        mode: u32,
        link: Option<&str>,
        data: &[u8],
    ) -> Self {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(OWNER.0.into());
        header.set_gid(OWNER.1.into());
        header.set_mtime(1_600_000_000);
        header.set_size(data.len() as u64);
        header.set_cksum();
        self.0.append(&header, data).unwrap();
        self
    }

    pub(super) fn dir(self, name: &str) -> Self {
        self.entry(name, tar::EntryType::Directory, 0o755, None, b"")
    }

    pub(super) fn file(self, name: &str, data: &[u8]) -> Self {
        self.entry(name, tar::EntryType::Regular, 0o644, None, data)
    }

    pub(super) fn symlink(self, name: &str, target: &str) -> Self {
        self.entry(name, tar::EntryType::Symlink, 0o777, Some(target), b"")
    }

    pub(super) fn hardlink(self, name: &str, target: &str) -> Self {
        self.entry(name, tar::EntryType::Link, 0o644, Some(target), b"")
    }

    pub(super) fn bytes(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The owner of every entry: another user (1000) when the tests run as root, which proves
/// owners are set; the test's own user otherwise, whose files need no privilege.
static OWNER: std::sync::LazyLock<(u32, u32)> = std::sync::LazyLock::new(|| {
    if is_root() {
        (1000, 1000)
    } else {
        (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    }
});

fn unpack(tar: &[u8], mode: WhiteoutMode) -> (tempfile::TempDir, Result<Unpacked, UnpackError>) {
    let dir = tempfile::tempdir().unwrap();
    let result = unpack_layer(tar, "", dir.path(), mode);
    (dir, result)
}

#[test]
fn unpacks_gzip_layers_and_reports_both_digests() {
    let tar = TarBuilder::new()
        .dir("./bin/")
        .file("./bin/hello", b"hi there")
        .symlink("bin/sh", "/bin/busybox")
        .hardlink("bin/hello2", "bin/hello")
        .bytes();
    let blob = gzip(&tar);
    let dir = tempfile::tempdir().unwrap();

    let unpacked = unpack_layer(
        &blob[..],
        "application/vnd.oci.image.layer.v1.tar+gzip",
        dir.path(),
        WhiteoutMode::Overlay,
    )
    .unwrap();

    assert_eq!(unpacked.blob_digest, sha256(&blob));
    assert_eq!(unpacked.diff_id, sha256(&tar));
    assert_eq!(unpacked.size_bytes, 8);
    let hello = dir.path().join("bin/hello");
    assert_eq!(std::fs::read(&hello).unwrap(), b"hi there");
    let meta = std::fs::metadata(&hello).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (OWNER.0, OWNER.1, 0o644)
    );
    assert_eq!(meta.mtime(), 1_600_000_000);
    assert_eq!(meta.nlink(), 2);
    assert_eq!(
        std::fs::read_link(dir.path().join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    assert_eq!(
        std::fs::metadata(dir.path().join("bin")).unwrap().mtime(),
        1_600_000_000
    );
}

#[test]
fn refuses_parent_dir_escapes() {
    let (dir, result) = unpack(
        &TarBuilder::new().file("../escaped", b"x").bytes(),
        WhiteoutMode::Overlay,
    );
    assert!(
        matches!(result, Err(UnpackError::UnsafePath { .. })),
        "{result:?}"
    );
    assert!(!dir.path().parent().unwrap().join("escaped").exists());
}

#[test]
fn refuses_absolute_paths() {
    let (_dir, result) = unpack(
        &TarBuilder::new()
            .file("/tmp/crimson-absolute", b"x")
            .bytes(),
        WhiteoutMode::Overlay,
    );
    assert!(
        matches!(result, Err(UnpackError::UnsafePath { .. })),
        "{result:?}"
    );
    assert!(!Path::new("/tmp/crimson-absolute").exists());
}

#[test]
fn refuses_writing_through_a_symlink() {
    let outside = tempfile::tempdir().unwrap();
    let tar = TarBuilder::new()
        .symlink("evil", outside.path().to_str().unwrap())
        .file("evil/owned", b"x")
        .bytes();
    let (_dir, result) = unpack(&tar, WhiteoutMode::Overlay);
    assert!(
        matches!(result, Err(UnpackError::SymlinkTraversal { .. })),
        "{result:?}"
    );
    assert!(!outside.path().join("owned").exists());
}

#[test]
fn refuses_hard_links_to_files_outside_the_layer() {
    let tar = TarBuilder::new()
        .hardlink("passwd", "../../../../etc/passwd")
        .bytes();
    let (_dir, result) = unpack(&tar, WhiteoutMode::Overlay);
    assert!(
        matches!(result, Err(UnpackError::HardLink { .. })),
        "{result:?}"
    );
    let tar = TarBuilder::new().hardlink("passwd", "/etc/passwd").bytes();
    let (_dir, result) = unpack(&tar, WhiteoutMode::Overlay);
    assert!(
        matches!(result, Err(UnpackError::HardLink { .. })),
        "{result:?}"
    );
}

#[test]
fn refuses_garbage_and_unsupported_compression() {
    let (_dir, result) = unpack(
        &gzip(b"not a tar at all, just text padding it out")[..10],
        WhiteoutMode::Overlay,
    );
    assert!(result.is_err());
    let dir = tempfile::tempdir().unwrap();
    let result = unpack_layer(
        &b""[..],
        "application/vnd.oci.image.layer.v1.tar+zstd",
        dir.path(),
        WhiteoutMode::Overlay,
    );
    assert!(
        matches!(result, Err(UnpackError::UnsupportedMediaType(_))),
        "{result:?}"
    );
}

#[test]
fn overlay_mode_keeps_whiteouts_as_overlay_markers() {
    if !is_root() {
        eprintln!("skipped: whiteout devices and trusted xattrs need root");
        return;
    }
    let tar = TarBuilder::new()
        .dir("etc")
        .file("etc/.wh.motd", b"")
        .dir("var")
        .file("var/.wh..wh..opq", b"")
        .bytes();
    let (dir, result) = unpack(&tar, WhiteoutMode::Overlay);
    result.unwrap();
    let motd = std::fs::symlink_metadata(dir.path().join("etc/motd")).unwrap();
    assert_eq!(motd.mode() & libc::S_IFMT, libc::S_IFCHR);
    assert_eq!(motd.rdev(), 0);
    assert_eq!(
        xattr::get(dir.path().join("var"), "trusted.overlay.opaque").unwrap(),
        Some(b"y".to_vec())
    );
}

#[test]
fn delete_mode_applies_whiteouts_to_the_parent_copy() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    std::fs::write(dir.path().join("etc/motd"), b"old").unwrap();
    std::fs::write(dir.path().join("etc/keep"), b"old").unwrap();
    std::fs::create_dir_all(dir.path().join("var/cache")).unwrap();
    std::fs::write(dir.path().join("var/cache/old"), b"old").unwrap();
    let tar = TarBuilder::new()
        .dir("var")
        .file("var/new", b"new")
        .file("var/.wh..wh..opq", b"")
        .file("etc/.wh.motd", b"")
        .bytes();

    unpack_layer(&tar[..], "", dir.path(), WhiteoutMode::Delete).unwrap();

    assert!(!dir.path().join("etc/motd").exists());
    assert!(dir.path().join("etc/keep").exists());
    assert!(!dir.path().join("var/cache").exists());
    assert_eq!(std::fs::read(dir.path().join("var/new")).unwrap(), b"new");
}
