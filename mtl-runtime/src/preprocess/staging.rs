//! Writing a preprocessing run so that a failure never destroys a previous good output.
//!
//! Everything a run writes goes to a staging folder inside the output folder
//! (`.mtl-staging-<pid>-<n>`, on the same file system so that renames are cheap and atomic).
//! Only when the whole run succeeded does each entry it wrote (`train/`, `valid/`,
//! `categories/`, `stats.json`, ...) replace the entry of the same name, the old one moved
//! aside first and deleted last. Entries the run does not write are left alone. A run that
//! fails removes its staging folder: the output folder is as it was, with no partial part file.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Runs `write` on a fresh staging folder inside `out`; on success moves what it wrote into
/// `out` (replacing entries of the same names), on failure removes it.
pub(crate) fn write_staged<T>(out: &Path, write: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static RUNS: AtomicU64 = AtomicU64::new(0);
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let tag = format!(
        "{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    );
    let stage = out.join(format!(".mtl-staging-{tag}"));
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir(&stage).map_err(|e| Error::io(&stage, e))?;
    let result = write(&stage).and_then(|value| {
        publish(&stage, out, &tag)?;
        Ok(value)
    });
    let _ = std::fs::remove_dir_all(&stage);
    result
}

/// Moves every entry of `stage` into `out`, old entries of the same names aside first.
fn publish(stage: &Path, out: &Path, tag: &str) -> Result<()> {
    let trash = out.join(format!(".mtl-replaced-{tag}"));
    std::fs::create_dir(&trash).map_err(|e| Error::io(&trash, e))?;
    let entries: Vec<PathBuf> = std::fs::read_dir(stage)
        .map_err(|e| Error::io(stage, e))?
        .map(|e| e.map(|e| e.path()).map_err(|err| Error::io(stage, err)))
        .collect::<Result<_>>()?;
    let mut moved: Vec<(PathBuf, Option<PathBuf>)> = Vec::new();
    let mut result = Ok(());
    for entry in &entries {
        let Some(name) = entry.file_name() else {
            continue;
        };
        let target = out.join(name);
        let old = trash.join(name);
        let aside = target.exists().then_some(old);
        if let Some(old) = &aside {
            if let Err(e) = std::fs::rename(&target, old) {
                result = Err(Error::io(&target, e));
                break;
            }
        }
        if let Err(e) = std::fs::rename(entry, &target) {
            // Put the old entry back before giving up.
            if let Some(old) = &aside {
                let _ = std::fs::rename(old, &target);
            }
            result = Err(Error::io(&target, e));
            break;
        }
        moved.push((target, aside));
    }
    if result.is_err() {
        // Undo what was moved, newest first, so `out` is as it was.
        for (target, aside) in moved.into_iter().rev() {
            let _ = std::fs::remove_dir_all(&target).or_else(|_| std::fs::remove_file(&target));
            if let Some(old) = aside {
                let _ = std::fs::rename(old, &target);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&trash);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_run_leaves_the_previous_output_and_a_good_one_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(out.join("train")).unwrap();
        std::fs::write(out.join("train/part_0.parquet"), "old").unwrap();
        std::fs::write(out.join("notes.txt"), "mine").unwrap();
        let failed: Result<()> = write_staged(&out, |stage| {
            std::fs::create_dir(stage.join("train")).unwrap();
            std::fs::write(stage.join("train/part_0.parquet"), "half").unwrap();
            Err(Error::invalid("boom"))
        });
        assert!(failed.is_err());
        assert_eq!(
            std::fs::read_to_string(out.join("train/part_0.parquet")).unwrap(),
            "old"
        );
        let ok = write_staged(&out, |stage| {
            std::fs::create_dir(stage.join("train")).unwrap();
            std::fs::write(stage.join("train/part_0.parquet"), "new").unwrap();
            std::fs::write(stage.join("stats.json"), "{}").unwrap();
            Ok(7)
        });
        assert_eq!(ok.unwrap(), 7);
        assert_eq!(
            std::fs::read_to_string(out.join("train/part_0.parquet")).unwrap(),
            "new"
        );
        assert_eq!(
            std::fs::read_to_string(out.join("notes.txt")).unwrap(),
            "mine"
        );
        let names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with(".mtl-")), "{names:?}");
    }
}
