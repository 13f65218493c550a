//! Reading a training set: a folder (recursive) or a `.tar` / `.zip` archive of images,
//! decoded in parallel. Files that cannot be used are skipped with their reason; the run
//! never stops for them.

use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::decode::{DecodeError, Fit, MAX_FILE_BYTES, decode_image};

/// File extensions read as images; anything else in a folder or archive is ignored.
pub const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "webp", "bmp", "gif"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Folder,
    Tar,
    Zip,
}

impl Kind {
    pub fn of(path: &Path) -> Result<Self, String> {
        let meta = std::fs::metadata(path)
            .map_err(|e| format!("{}: cannot read it: {e}", path.display()))?;
        if meta.is_dir() {
            return Ok(Self::Folder);
        }
        match extension(path).as_deref() {
            Some("tar") => Ok(Self::Tar),
            Some("zip") => Ok(Self::Zip),
            _ => Err(format!(
                "{}: not a folder, .tar or .zip of images",
                path.display()
            )),
        }
    }
}

fn extension(path: &Path) -> Option<String> {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
}

pub fn is_image_name(name: &str) -> bool {
    extension(Path::new(name)).is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()))
}

/// A file that was not used, and why.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Skipped {
    pub name: String,
    pub reason: String,
}

/// Every image file of a folder, recursively, sorted, with its size and modification time
/// (the decode cache's key). Non-image names are counted, not listed.
/// A file of a folder: path, size in bytes, modification time (ns since the epoch).
pub type FolderFile = (PathBuf, u64, u128);

pub fn folder_files(root: &Path) -> Result<(Vec<FolderFile>, usize), String> {
    let mut files = Vec::new();
    let mut ignored = 0;
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| format!("{}: cannot list it: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                pending.push(path);
            } else if is_image_name(&path.to_string_lossy()) {
                let modified = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                files.push((path, meta.len(), modified));
            } else {
                ignored += 1;
            }
        }
    }
    files.sort();
    Ok((files, ignored))
}

/// A file's name and its bytes (or decoded pixels), or why it cannot be used.
type Member = (String, Result<Vec<u8>, DecodeError>);

fn read_member(name: String, size: u64, reader: &mut impl Read) -> Member {
    if size > MAX_FILE_BYTES {
        return (name, Err(DecodeError::TooLarge { bytes: size }));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    match reader.read_to_end(&mut bytes) {
        Ok(_) => (name, Ok(bytes)),
        Err(e) => (name, Err(DecodeError::Corrupt(e.to_string()))),
    }
}

/// The image members of a tar or zip, in archive order. A damaged archive yields what could
/// be read before the damage, plus one skipped entry saying where it stopped.
fn archive_members(path: &Path, kind: Kind) -> Result<(Vec<Member>, usize), String> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("{}: cannot open: {e}", path.display()))?;
    let mut members = Vec::new();
    let mut ignored = 0;
    match kind {
        Kind::Tar => {
            let mut archive = tar::Archive::new(std::io::BufReader::new(file));
            let entries = archive
                .entries()
                .map_err(|e| format!("{}: not a readable tar: {e}", path.display()))?;
            for entry in entries {
                let mut entry = match entry {
                    Ok(entry) => entry,
                    Err(e) => {
                        let reason = format!("archive damaged here, rest not read: {e}");
                        members.push((
                            path.display().to_string(),
                            Err(DecodeError::Corrupt(reason)),
                        ));
                        break;
                    }
                };
                let name = entry.path().map_or_else(
                    |_| "(unreadable name)".to_string(),
                    |p| p.to_string_lossy().into_owned(),
                );
                if !entry.header().entry_type().is_file() {
                    continue;
                }
                if !is_image_name(&name) {
                    ignored += 1;
                    continue;
                }
                let size = entry.size();
                members.push(read_member(name, size, &mut entry));
            }
        }
        Kind::Zip => {
            let mut archive = zip::ZipArchive::new(file)
                .map_err(|e| format!("{}: not a readable zip: {e}", path.display()))?;
            for i in 0..archive.len() {
                let mut member = match archive.by_index(i) {
                    Ok(member) => member,
                    Err(e) => {
                        members.push((
                            format!("member {i}"),
                            Err(DecodeError::Corrupt(e.to_string())),
                        ));
                        continue;
                    }
                };
                let name = member.name().to_string();
                if member.is_dir() {
                    continue;
                }
                if !is_image_name(&name) {
                    ignored += 1;
                    continue;
                }
                let size = member.size();
                members.push(read_member(name, size, &mut member));
            }
        }
        Kind::Folder => unreachable!("folders are read file by file"),
    }
    Ok((members, ignored))
}

/// Decoded images in source order, the skipped files, and how many non-image names there were.
pub struct Decoded {
    pub pixels: Vec<u8>,
    pub count: usize,
    pub skipped: Vec<Skipped>,
    pub ignored: usize,
}

/// Reads and decodes every image of `path` at `size`x`size`, in parallel.
pub fn decode_all(path: &Path, size: u32, fit: Fit) -> Result<Decoded, String> {
    let kind = Kind::of(path)?;
    let (results, ignored): (Vec<Member>, usize) = match kind {
        Kind::Folder => {
            let (files, ignored) = folder_files(path)?;
            let results = files
                .par_iter()
                .map(|(file, len, _)| {
                    let name = file
                        .strip_prefix(path)
                        .unwrap_or(file)
                        .display()
                        .to_string();
                    if *len > MAX_FILE_BYTES {
                        return (name, Err(DecodeError::TooLarge { bytes: *len }));
                    }
                    let decoded = std::fs::read(file)
                        .map_err(|e| DecodeError::Corrupt(format!("cannot read: {e}")))
                        .and_then(|bytes| decode_image(&bytes, size, fit));
                    (name, decoded)
                })
                .collect();
            (results, ignored)
        }
        Kind::Tar | Kind::Zip => {
            let (members, ignored) = archive_members(path, kind)?;
            let results = members
                .into_par_iter()
                .map(|(name, bytes)| {
                    let decoded = bytes.and_then(|b| decode_image(&b, size, fit));
                    (name, decoded)
                })
                .collect();
            (results, ignored)
        }
    };
    let mut pixels = Vec::new();
    let mut skipped = Vec::new();
    let mut count = 0;
    for (name, result) in results {
        match result {
            Ok(image) => {
                pixels.extend_from_slice(&image);
                count += 1;
            }
            Err(e) => skipped.push(Skipped {
                name,
                reason: e.to_string(),
            }),
        }
    }
    Ok(Decoded {
        pixels,
        count,
        skipped,
        ignored,
    })
}
