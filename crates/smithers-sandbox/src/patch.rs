//! Applying a unified diff (plain or git-style) to a workspace: every path
//! confined to the workspace, every hunk checked before anything is
//! written, so a patch that does not apply changes nothing.

use std::collections::BTreeMap;

use diffy::patch_set::{FileOperation, ParseOptions, PatchKind, PatchSet};

use crate::Error;

/// What a patch does to one file: its new contents, or `None` to delete it.
pub type Changes = BTreeMap<String, Option<Vec<u8>>>;

/// `a/x` and `b/x` (git's prefixes) become `x`; `/dev/null` is no file.
fn strip(path: &str, prefix: &str) -> String {
    path.strip_prefix(prefix).unwrap_or(path).to_string()
}

/// Computes what `patch` changes, reading current contents with `read`
/// (`Ok(None)` for a file that does not exist). Later file patches see the
/// results of earlier ones.
pub fn plan(
    patch: &str,
    mut read: impl FnMut(&str) -> Result<Option<Vec<u8>>, Error>,
) -> Result<Changes, Error> {
    let mut changes: Changes = BTreeMap::new();
    let mut current = |path: &str, changes: &Changes| -> Result<Option<Vec<u8>>, Error> {
        match changes.get(path) {
            Some(state) => Ok(state.clone()),
            None => read(path),
        }
    };
    let options = if patch.lines().any(|l| l.starts_with("diff --git ")) {
        ParseOptions::gitdiff()
    } else {
        ParseOptions::unidiff()
    };
    let mut files = 0;
    for file in PatchSet::parse(patch, options) {
        let file = file.map_err(|e| Error::Invalid(format!("the patch does not parse: {e}")))?;
        files += 1;
        let text = match file.patch() {
            PatchKind::Text(text) => text,
            PatchKind::Binary(_) => {
                return Err(Error::Invalid("binary patches are not supported".into()));
            }
        };
        // (source, destination): None for /dev/null.
        let (source, destination) = match file.operation() {
            FileOperation::Create(path) => (None, Some(strip(path, "b/"))),
            FileOperation::Delete(path) => (Some(strip(path, "a/")), None),
            FileOperation::Modify { original, modified } => {
                (Some(strip(original, "a/")), Some(strip(modified, "b/")))
            }
            FileOperation::Rename { from, to } => (Some(strip(from, "a/")), Some(strip(to, "b/"))),
            FileOperation::Copy { .. } => {
                return Err(Error::Invalid("copy patches are not supported".into()));
            }
        };
        let before = match &source {
            Some(path) => {
                let bytes = current(path, &changes)?.ok_or_else(|| {
                    Error::Invalid(format!("the patch changes {path:?}, which does not exist"))
                })?;
                String::from_utf8(bytes).map_err(|_| {
                    Error::Invalid(format!(
                        "{path:?} is not text; binary files are not patched"
                    ))
                })?
            }
            None => {
                if let Some(path) = &destination {
                    if current(path, &changes)?.is_some() {
                        return Err(Error::Invalid(format!(
                            "the patch creates {path:?}, which already exists"
                        )));
                    }
                }
                String::new()
            }
        };
        // A destination other than the source is checked (and must not
        // exist yet) before anything is planned for it.
        if let (Some(from), Some(to)) = (&source, &destination) {
            if from != to && current(to, &changes)?.is_some() {
                return Err(Error::Invalid(format!(
                    "the patch moves {from:?} onto {to:?}, which already exists"
                )));
            }
        }
        let after = diffy::apply(&before, text).map_err(|e| {
            let name = destination.as_deref().or(source.as_deref()).unwrap_or("?");
            Error::Invalid(format!("the patch does not apply to {name:?}: {e}"))
        })?;
        match (&source, &destination) {
            (Some(from), Some(to)) if from != to => {
                changes.insert(from.clone(), None);
                changes.insert(to.clone(), Some(after.into_bytes()));
            }
            (_, Some(to)) => {
                changes.insert(to.clone(), Some(after.into_bytes()));
            }
            (Some(from), None) => {
                changes.insert(from.clone(), None);
            }
            (None, None) => {}
        }
    }
    if files == 0 {
        return Err(Error::Invalid("the patch holds no file changes".into()));
    }
    // Every `---`/`+++` header pair must have been read as a file: a part
    // the parser skipped (mixed styles, a damaged header) is not silently
    // left out.
    let lines: Vec<&str> = patch.lines().collect();
    let headers = lines
        .windows(2)
        .filter(|w| w[0].starts_with("--- ") && w[1].starts_with("+++ "))
        .count();
    if headers > files {
        return Err(Error::Invalid(format!(
            "the patch has {headers} file headers but only {files} could be read; send one well-formed diff"
        )));
    }
    Ok(changes)
}

/// [`plan`] with an asynchronous `read`: the plan is made again each time
/// it needs a file it has not seen, until it has every file it needs.
pub async fn plan_with<F, Fut>(patch: &str, mut read: F) -> Result<Changes, Error>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<Option<Vec<u8>>, Error>>,
{
    let mut known: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
    loop {
        let mut wanted = None;
        let planned = plan(patch, |path| match known.get(path) {
            Some(contents) => Ok(contents.clone()),
            None => {
                wanted = Some(path.to_string());
                Err(Error::Invalid(format!("{path:?} is not read yet")))
            }
        });
        match wanted {
            Some(path) => {
                let contents = read(path.clone()).await?;
                known.insert(path, contents);
            }
            None => return planned,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(pairs: &[(&str, &str)]) -> impl FnMut(&str) -> Result<Option<Vec<u8>>, Error> {
        let map: BTreeMap<String, Vec<u8>> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.as_bytes().to_vec()))
            .collect();
        move |path| Ok(map.get(path).cloned())
    }

    #[test]
    fn git_and_plain_diffs() {
        let git = "\
diff --git a/src/lib.rs b/src/lib.rs
index 1111111..2222222 100644
--- a/src/lib.rs
+++ b/src/lib.rs
@@ -1,2 +1,2 @@
 fn a() {}
-fn b() {}
+fn b() { a() }
diff --git a/NEW.md b/NEW.md
new file mode 100644
--- /dev/null
+++ b/NEW.md
@@ -0,0 +1 @@
+hello
";
        let changes = plan(git, files(&[("src/lib.rs", "fn a() {}\nfn b() {}\n")])).unwrap();
        assert_eq!(
            changes["src/lib.rs"].as_deref(),
            Some(&b"fn a() {}\nfn b() { a() }\n"[..])
        );
        assert_eq!(changes["NEW.md"].as_deref(), Some(&b"hello\n"[..]));
        let plain = "--- x.txt\n+++ x.txt\n@@ -1 +1 @@\n-old\n+new\n";
        let changes = plan(plain, files(&[("x.txt", "old\n")])).unwrap();
        assert_eq!(changes["x.txt"].as_deref(), Some(&b"new\n"[..]));
    }

    #[test]
    fn a_part_the_parser_skipped_refuses_the_patch() {
        let mixed = "\
diff --git a/x b/x
--- a/x
+++ b/x
@@ -1 +1 @@
-old
+new
--- /dev/null
+++ b/y
@@ -0,0 +1 @@
+hello
";
        let e = plan(mixed, files(&[("x", "old\n")])).unwrap_err();
        assert!(e.to_string().contains("file headers"), "{e}");
    }

    #[test]
    fn every_path_is_checked_before_planning() {
        let mut asked = Vec::new();
        let moved = "--- a/x\n+++ b/../y\n@@ -1 +1 @@\n-old\n+new\n";
        let _ = plan(moved, |path| {
            asked.push(path.to_string());
            Ok((path == "x").then(|| b"old\n".to_vec()))
        });
        assert_eq!(asked, ["x", "../y"]);
        let onto = "--- a/x\n+++ b/y\n@@ -1 +1 @@\n-old\n+new\n";
        assert!(plan(onto, files(&[("x", "old\n"), ("y", "taken\n")])).is_err());
    }

    #[test]
    fn a_patch_that_does_not_apply_is_refused_whole() {
        let patch = "--- x\n+++ x\n@@ -1 +1 @@\n-nope\n+yes\n";
        assert!(plan(patch, files(&[("x", "something else\n")])).is_err());
        assert!(plan(patch, files(&[])).is_err());
        assert!(plan("not a patch", files(&[])).is_err());
        let create = "--- /dev/null\n+++ b/x\n@@ -0,0 +1 @@\n+new\n";
        assert!(plan(create, files(&[("x", "exists\n")])).is_err());
    }
}
