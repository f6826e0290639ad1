//! Applying a unified diff (plain or git-style) to a workspace. A patch is
//! parsed once ([`ParsedPatch::parse`]): whoever decides on it decides on
//! [`ParsedPatch::paths`], and the provider applies that same parse, so
//! what is decided is what is touched. Every path is confined to the
//! workspace, every file the patch touches is read (never through a
//! symbolic link) and every hunk checked before anything is written, so a
//! patch that does not apply changes nothing.

use std::collections::BTreeMap;

use diffy::patch_set::{FileMode, FileOperation, ParseOptions, PatchKind, PatchSet};

use crate::Error;
use crate::workspace::relative_components;

/// A file as it is before a patch: what [`plan`]'s reader gives for a
/// path (`None` for a file that does not exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    pub contents: Vec<u8>,
    /// Whether the owner's executable bit is set (git's mode `100755`).
    pub executable: bool,
}

/// What a patch does to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Writes the file, creating it and its directories. `executable`
    /// sets the mode to 0755 (`Some(true)`) or 0644 (`Some(false)`);
    /// `None` leaves an existing file's mode as it is, and a new file gets
    /// 0644.
    Write {
        contents: Vec<u8>,
        executable: Option<bool>,
    },
    /// Removes the file.
    Delete,
}

/// What a patch does, by workspace-relative path.
pub type Changes = BTreeMap<String, Change>;

/// One file's part of a patch, its paths normalized.
#[derive(Debug, Clone)]
struct FilePart<'a> {
    /// The file the part starts from; `None` when it creates one.
    source: Option<String>,
    /// The file it leaves; `None` when it deletes one. A rename's differs
    /// from its source.
    destination: Option<String>,
    hunks: diffy::Patch<'a, str>,
    /// The executable bit the part gives its destination, when its header
    /// says (`new mode`, `new file mode`).
    executable: Option<bool>,
}

/// A unified or git diff, parsed and checked: every file part in order,
/// with its paths normalized the way they are applied (git's `a/`/`b/`
/// dropped, `.` and empty components removed). It borrows the text.
///
/// Refused at parse ([`Error::Invalid`], or [`Error::Escape`] for a path
/// out of the workspace): text that is not a diff, a part the parser
/// skipped (mixed styles, a damaged header), binary and copy patches, and
/// any mode but a regular file's (`100644`, `100755`): a symbolic link
/// (`120000`) or a submodule (`160000`) is neither made nor changed.
/// Changes between `100644` and `100755` are applied: the executable bit
/// is an ordinary part of a repository (scripts), and the sandbox's own
/// code may set it anyway, so refusing it would only refuse good patches.
#[derive(Debug, Clone)]
pub struct ParsedPatch<'a> {
    parts: Vec<FilePart<'a>>,
}

impl<'a> ParsedPatch<'a> {
    /// Parses `text` (a git diff if any line starts with `diff --git `, a
    /// plain unified diff otherwise).
    pub fn parse(text: &'a str) -> Result<ParsedPatch<'a>, Error> {
        let git = text.lines().any(|l| l.starts_with("diff --git "));
        let options = if git {
            ParseOptions::gitdiff()
        } else {
            ParseOptions::unidiff()
        };
        let mut parts = Vec::new();
        for file in PatchSet::parse(text, options) {
            let file =
                file.map_err(|e| Error::Invalid(format!("the patch does not parse: {e}")))?;
            let operation = file.operation().clone();
            let (old_mode, new_mode) = (file.old_mode().copied(), file.new_mode().copied());
            // (source, destination): None for /dev/null. Rename and copy
            // paths come from `rename from`/`rename to`, which carry no
            // `a/`/`b/` prefix.
            let (source, destination) = match &operation {
                FileOperation::Create(path) => (None, Some(normal(strip(path, "b/"))?)),
                FileOperation::Delete(path) => (Some(normal(strip(path, "a/"))?), None),
                FileOperation::Modify { original, modified } => (
                    Some(normal(strip(original, "a/"))?),
                    Some(normal(strip(modified, "b/"))?),
                ),
                FileOperation::Rename { from, to } => (Some(normal(from)?), Some(normal(to)?)),
                FileOperation::Copy { .. } => {
                    return Err(Error::Invalid("copy patches are not supported".into()));
                }
            };
            let name = destination.as_deref().or(source.as_deref()).unwrap_or("?");
            for mode in [old_mode, new_mode].into_iter().flatten() {
                regular_mode(mode_number(mode), name)?;
            }
            let hunks = match file.into_patch() {
                PatchKind::Text(text) => text,
                PatchKind::Binary(_) => {
                    return Err(Error::Invalid("binary patches are not supported".into()));
                }
            };
            let executable = match (&destination, new_mode) {
                (Some(_), Some(mode)) => Some(mode == FileMode::Executable),
                _ => None,
            };
            parts.push(FilePart {
                source,
                destination,
                hunks,
                executable,
            });
        }
        if parts.is_empty() {
            return Err(Error::Invalid("the patch holds no file changes".into()));
        }
        let files = parts.len();
        // Every `---`/`+++` header pair (and, in a git diff, every `diff
        // --git` section) must have been read as a file: a part the parser
        // skipped is not silently left out.
        let lines: Vec<&str> = text.lines().collect();
        let headers = lines
            .windows(2)
            .filter(|w| w[0].starts_with("--- ") && w[1].starts_with("+++ "))
            .count();
        let sections = if git { git_sections(&lines)? } else { 0 };
        if headers > files || sections > files {
            return Err(Error::Invalid(format!(
                "the patch has {} file headers but only {files} could be read; send one well-formed diff",
                headers.max(sections)
            )));
        }
        Ok(ParsedPatch { parts })
    }

    /// Every path the patch touches, sorted and without repeats: the
    /// sources and destinations of renames, the files it deletes, creates,
    /// modifies or changes the mode of; workspace-relative, as applied.
    pub fn paths(&self) -> Vec<String> {
        let mut paths: Vec<String> = self
            .parts
            .iter()
            .flat_map(|part| [&part.source, &part.destination])
            .flatten()
            .cloned()
            .collect();
        paths.sort();
        paths.dedup();
        paths
    }
}

/// `a/x` and `b/x` (git's prefixes) become `x`.
fn strip<'p>(path: &'p str, prefix: &str) -> &'p str {
    path.strip_prefix(prefix).unwrap_or(path)
}

/// The path as the workspace functions take it: relative, no `.` or
/// empty components; `..` and absolute paths (but `/workspace/…`) refused.
fn normal(path: &str) -> Result<String, Error> {
    Ok(relative_components(path)?.join("/"))
}

fn mode_number(mode: FileMode) -> &'static str {
    match mode {
        FileMode::Regular => "100644",
        FileMode::Executable => "100755",
        FileMode::Symlink => "120000",
        FileMode::Gitlink => "160000",
    }
}

/// Refuses any mode but a regular file's, naming what it is.
fn regular_mode(mode: &str, name: &str) -> Result<(), Error> {
    let what = match mode {
        "100644" | "100755" => return Ok(()),
        "120000" => "a symbolic link",
        "160000" => "a submodule",
        _ => "not a regular file",
    };
    Err(Error::Invalid(format!(
        "the patch gives {name:?} mode {mode} ({what}); patches change regular files only (100644, 100755)"
    )))
}

/// Counts the `diff --git` sections and checks the modes their `index`
/// lines carry (`index 1a2b..3c4d 120000`), which the parser does not
/// read: a symbolic link's or a submodule's contents are not patched.
fn git_sections(lines: &[&str]) -> Result<usize, Error> {
    let mut sections = 0;
    let mut name: Option<&str> = None;
    for line in lines {
        if let Some(rest) = line.strip_prefix("diff --git ") {
            sections += 1;
            name = Some(rest.trim_end_matches('\r'));
        } else if line.starts_with("--- ") || line.starts_with("+++ ") || line.starts_with("@@") {
            // The header is over; hunk lines never start a section.
            name = None;
        } else if let (Some(name), Some(index)) = (name, line.strip_prefix("index "))
            && let Some(mode) = index.split_whitespace().nth(1)
        {
            regular_mode(mode, name)?;
        }
    }
    Ok(sections)
}

/// The files a plan has looked at: as they were, and as the patch leaves
/// them so far.
struct View<R> {
    read: R,
    before: BTreeMap<String, Option<Current>>,
    after: BTreeMap<String, Option<Current>>,
}

impl<R: FnMut(&str) -> Result<Option<Current>, Error>> View<R> {
    fn get(&mut self, path: &str) -> Result<Option<Current>, Error> {
        if let Some(state) = self.after.get(path).or_else(|| self.before.get(path)) {
            return Ok(state.clone());
        }
        let state = (self.read)(path)?;
        self.before.insert(path.to_string(), state.clone());
        Ok(state)
    }
}

/// Computes what `patch` changes, reading current files with `read`
/// (`Ok(None)` for a file that does not exist; it must refuse a symbolic
/// link anywhere on the way, so a patch over a link is refused here,
/// before anything is written). Later file parts see the results of
/// earlier ones. Every path of the result was read first; errors: a hunk
/// that does not apply, a file changed that does not exist or is not
/// UTF-8 text, a file created or renamed onto one that exists, a path
/// made both a file and a directory, and whatever `read` refuses.
pub fn plan(
    patch: &ParsedPatch<'_>,
    read: impl FnMut(&str) -> Result<Option<Current>, Error>,
) -> Result<Changes, Error> {
    let mut view = View {
        read,
        before: BTreeMap::new(),
        after: BTreeMap::new(),
    };
    for part in &patch.parts {
        let (source, destination) = (&part.source, &part.destination);
        let before = match source {
            Some(path) => Some(view.get(path)?.ok_or_else(|| {
                Error::Invalid(format!("the patch changes {path:?}, which does not exist"))
            })?),
            None => {
                if let Some(path) = destination
                    && view.get(path)?.is_some()
                {
                    return Err(Error::Invalid(format!(
                        "the patch creates {path:?}, which already exists"
                    )));
                }
                None
            }
        };
        // A destination other than the source is checked (and must not
        // exist yet) before anything is planned for it.
        if let (Some(from), Some(to)) = (source, destination)
            && from != to
            && view.get(to)?.is_some()
        {
            return Err(Error::Invalid(format!(
                "the patch moves {from:?} onto {to:?}, which already exists"
            )));
        }
        let Some(to) = destination else {
            if let Some(from) = source {
                view.after.insert(from.clone(), None);
            }
            continue;
        };
        let contents = match &before {
            // A pure rename or mode change keeps the bytes as they are,
            // text or not.
            Some(before) if part.hunks.hunks().is_empty() => before.contents.clone(),
            _ => {
                let name = source.as_deref().unwrap_or(to);
                let text = match &before {
                    Some(before) => std::str::from_utf8(&before.contents).map_err(|_| {
                        Error::Invalid(format!(
                            "{name:?} is not text; binary files are not patched"
                        ))
                    })?,
                    None => "",
                };
                diffy::apply(text, &part.hunks)
                    .map_err(|e| {
                        Error::Invalid(format!("the patch does not apply to {to:?}: {e}"))
                    })?
                    .into_bytes()
            }
        };
        let executable = part
            .executable
            .or(before.as_ref().map(|b| b.executable))
            .unwrap_or(false);
        if let Some(from) = source
            && from != to
        {
            view.after.insert(from.clone(), None);
        }
        view.after.insert(
            to.clone(),
            Some(Current {
                contents,
                executable,
            }),
        );
    }
    let mut changes = Changes::new();
    for (path, after) in view.after {
        let before = view.before.get(&path).cloned().flatten();
        let change = match (before, after) {
            // Created and removed again within the patch: nothing to do.
            (None, None) => continue,
            (Some(_), None) => Change::Delete,
            (before, Some(after)) => Change::Write {
                executable: match before {
                    Some(b) if b.executable == after.executable => None,
                    None if !after.executable => None,
                    _ => Some(after.executable),
                },
                contents: after.contents,
            },
        };
        changes.insert(path, change);
    }
    // A file written where the patch also puts something beneath it
    // would fail half-way through the writes.
    for (path, change) in &changes {
        let beneath = format!("{path}/");
        if matches!(change, Change::Write { .. })
            && changes
                .range(beneath.clone()..)
                .next()
                .is_some_and(|(other, _)| other.starts_with(&beneath))
        {
            return Err(Error::Invalid(format!(
                "the patch makes {path:?} both a file and a directory"
            )));
        }
    }
    Ok(changes)
}

/// [`plan`] with an asynchronous `read`: the plan is made again each time
/// it needs a file it has not seen, until it has every file it needs.
pub async fn plan_with<F, Fut>(patch: &ParsedPatch<'_>, mut read: F) -> Result<Changes, Error>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<Option<Current>, Error>>,
{
    let mut known: BTreeMap<String, Option<Current>> = BTreeMap::new();
    loop {
        let mut wanted = None;
        let planned = plan(patch, |path| match known.get(path) {
            Some(current) => Ok(current.clone()),
            None => {
                wanted = Some(path.to_string());
                Err(Error::Invalid(format!("{path:?} is not read yet")))
            }
        });
        match wanted {
            Some(path) => {
                let current = read(path.clone()).await?;
                known.insert(path, current);
            }
            None => return planned,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files by path; a `.sh` file is executable.
    fn files(pairs: &[(&str, &str)]) -> impl FnMut(&str) -> Result<Option<Current>, Error> {
        let map: BTreeMap<String, Current> = pairs
            .iter()
            .map(|(k, v)| {
                let current = Current {
                    contents: v.as_bytes().to_vec(),
                    executable: k.ends_with(".sh"),
                };
                ((*k).to_string(), current)
            })
            .collect();
        move |path| Ok(map.get(path).cloned())
    }

    fn parse(text: &str) -> ParsedPatch<'_> {
        ParsedPatch::parse(text).unwrap()
    }

    fn write(contents: &str, executable: Option<bool>) -> Change {
        Change::Write {
            contents: contents.as_bytes().to_vec(),
            executable,
        }
    }

    /// The patch: a rename into `.github` next to an ordinary hunk
    /// on README.md.
    const RENAME: &str = "\
diff --git a/docs/payload.yml b/.github/workflows/pwn.yml
similarity index 100%
rename from docs/payload.yml
rename to .github/workflows/pwn.yml
diff --git a/README.md b/README.md
index 1111111..2222222 100644
--- a/README.md
+++ b/README.md
@@ -1 +1 @@
-readme
+changed
";

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
        let changes = plan(
            &parse(git),
            files(&[("src/lib.rs", "fn a() {}\nfn b() {}\n")]),
        )
        .unwrap();
        assert_eq!(
            changes["src/lib.rs"],
            write("fn a() {}\nfn b() { a() }\n", None)
        );
        assert_eq!(changes["NEW.md"], write("hello\n", None));
        let plain = "--- x.txt\n+++ x.txt\n@@ -1 +1 @@\n-old\n+new\n";
        let changes = plan(&parse(plain), files(&[("x.txt", "old\n")])).unwrap();
        assert_eq!(changes["x.txt"], write("new\n", None));
    }

    #[test]
    fn paths_are_every_path_the_patch_touches() {
        let rename = parse(RENAME);
        assert_eq!(
            rename.paths(),
            [".github/workflows/pwn.yml", "README.md", "docs/payload.yml"]
        );
        let changes = plan(
            &rename,
            files(&[
                ("docs/payload.yml", "on: push\n"),
                ("README.md", "readme\n"),
            ]),
        )
        .unwrap();
        assert_eq!(
            changes[".github/workflows/pwn.yml"],
            write("on: push\n", None)
        );
        assert_eq!(changes["docs/payload.yml"], Change::Delete);
        assert_eq!(changes["README.md"], write("changed\n", None));
        for (patch, paths) in [
            (
                "diff --git a/old.txt b/old.txt\ndeleted file mode 100644\n--- a/old.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-old\n",
                &["old.txt"][..],
            ),
            (
                "diff --git a/new.sh b/new.sh\nnew file mode 100755\n--- /dev/null\n+++ b/new.sh\n@@ -0,0 +1 @@\n+#!/bin/sh\n",
                &["new.sh"],
            ),
            (
                "diff --git a/run.sh b/run.sh\nold mode 100644\nnew mode 100755\n",
                &["run.sh"],
            ),
            // A plain diff naming two files is a rename too.
            (
                "--- a/src/a.rs\n+++ b/src/b.rs\n@@ -1 +1 @@\n-x\n+y\n--- /dev/null\n+++ b/docs/new.md\n@@ -0,0 +1 @@\n+z\n",
                &["docs/new.md", "src/a.rs", "src/b.rs"],
            ),
            // Paths as the workspace takes them: `.`, doubled slashes and
            // `/workspace/` are not a way around a rule on the plain name.
            (
                "--- a/./config//prod.key\n+++ /workspace/config/prod.key\n@@ -1 +1 @@\n-k\n+l\n",
                &["config/prod.key"],
            ),
            // `rename from`/`rename to` carry no `a/`/`b/` prefix.
            (
                "diff --git a/a/x b/b/x\nsimilarity index 100%\nrename from a/x\nrename to b/x\n",
                &["a/x", "b/x"],
            ),
        ] {
            assert_eq!(parse(patch).paths(), paths, "{patch}");
        }
    }

    #[test]
    fn paths_out_of_the_workspace_are_refused_at_parse() {
        for patch in [
            "--- /dev/null\n+++ b/../y\n@@ -0,0 +1 @@\n+x\n",
            "--- /dev/null\n+++ /etc/y\n@@ -0,0 +1 @@\n+x\n",
            "diff --git a/x b/y\nsimilarity index 100%\nrename from x\nrename to ../../y\n",
        ] {
            let e = ParsedPatch::parse(patch).unwrap_err();
            assert!(matches!(e, Error::Escape(_)), "{patch}: {e}");
        }
    }

    #[test]
    fn links_submodules_binaries_and_copies_are_refused_at_parse() {
        for (patch, says) in [
            (
                "diff --git a/l b/l\nnew file mode 120000\n--- /dev/null\n+++ b/l\n@@ -0,0 +1 @@\n+config/prod.key\n\\ No newline at end of file\n",
                "120000",
            ),
            (
                "diff --git a/l b/l\nold mode 100644\nnew mode 120000\n",
                "120000",
            ),
            (
                "diff --git a/l b/l\ndeleted file mode 120000\n--- a/l\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n",
                "120000",
            ),
            (
                "diff --git a/l b/l\nindex 1111111..2222222 120000\n--- a/l\n+++ b/l\n@@ -1 +1 @@\n-a\n+b\n",
                "120000",
            ),
            (
                "diff --git a/m b/m\nnew file mode 160000\n--- /dev/null\n+++ b/m\n@@ -0,0 +1 @@\n+Subproject commit 1234\n",
                "160000",
            ),
            (
                "diff --git a/m b/m\nindex 1111111..2222222 160000\n--- a/m\n+++ b/m\n@@ -1 +1 @@\n-Subproject commit 1\n+Subproject commit 2\n",
                "160000",
            ),
            (
                "diff --git a/x b/y\nsimilarity index 100%\ncopy from x\ncopy to y\n",
                "copy",
            ),
            (
                "diff --git a/i.png b/i.png\nnew file mode 100644\nindex 0000000..1111111\nBinary files /dev/null and b/i.png differ\n",
                "binary",
            ),
        ] {
            let e = ParsedPatch::parse(patch).unwrap_err();
            assert!(e.to_string().contains(says), "{patch}: {e}");
        }
    }

    #[test]
    fn modes_are_applied_and_renames_keep_theirs() {
        let patch = "\
diff --git a/new.sh b/new.sh
new file mode 100755
--- /dev/null
+++ b/new.sh
@@ -0,0 +1 @@
+#!/bin/sh
diff --git a/README.md b/README.md
old mode 100644
new mode 100755
diff --git a/run.sh b/run.sh
old mode 100755
new mode 100644
diff --git a/tool.sh b/bin/tool
similarity index 100%
rename from tool.sh
rename to bin/tool
diff --git a/edit.sh b/edit.sh
--- a/edit.sh
+++ b/edit.sh
@@ -1 +1 @@
-a
+b
diff --git a/blob b/blob
old mode 100644
new mode 100755
";
        let mut read = files(&[
            ("README.md", "readme\n"),
            ("run.sh", "run\n"),
            ("tool.sh", "tool\n"),
            ("edit.sh", "a\n"),
        ]);
        let changes = plan(&parse(patch), |path| {
            if path == "blob" {
                // Not text: a mode change alone keeps its bytes.
                return Ok(Some(Current {
                    contents: vec![0xff, 0x00],
                    executable: false,
                }));
            }
            read(path)
        })
        .unwrap();
        assert_eq!(changes["new.sh"], write("#!/bin/sh\n", Some(true)));
        assert_eq!(changes["README.md"], write("readme\n", Some(true)));
        assert_eq!(changes["run.sh"], write("run\n", Some(false)));
        assert_eq!(changes["bin/tool"], write("tool\n", Some(true)));
        assert_eq!(changes["tool.sh"], Change::Delete);
        assert_eq!(changes["edit.sh"], write("b\n", None));
        assert_eq!(
            changes["blob"],
            Change::Write {
                contents: vec![0xff, 0x00],
                executable: Some(true)
            }
        );
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
        let e = ParsedPatch::parse(mixed).unwrap_err();
        assert!(e.to_string().contains("file headers"), "{e}");
    }

    #[test]
    fn every_path_is_read_before_planning() {
        let mut asked = Vec::new();
        let patch = parse(RENAME);
        plan(&patch, |path| {
            asked.push(path.to_string());
            let contents = match path {
                "docs/payload.yml" => "on: push\n",
                "README.md" => "readme\n",
                _ => return Ok(None),
            };
            Ok(Some(Current {
                contents: contents.as_bytes().to_vec(),
                executable: false,
            }))
        })
        .unwrap();
        asked.sort();
        assert_eq!(asked, patch.paths());
        let onto = parse("--- a/x\n+++ b/y\n@@ -1 +1 @@\n-old\n+new\n");
        assert!(plan(&onto, files(&[("x", "old\n"), ("y", "taken\n")])).is_err());
    }

    #[test]
    fn a_patch_that_does_not_apply_is_refused_whole() {
        let patch = parse("--- x\n+++ x\n@@ -1 +1 @@\n-nope\n+yes\n");
        assert!(plan(&patch, files(&[("x", "something else\n")])).is_err());
        assert!(plan(&patch, files(&[])).is_err());
        assert!(ParsedPatch::parse("not a patch").is_err());
        let create = parse("--- /dev/null\n+++ b/x\n@@ -0,0 +1 @@\n+new\n");
        assert!(plan(&create, files(&[("x", "exists\n")])).is_err());
        // A file and a directory of one name would fail half-way.
        let both = parse(
            "--- /dev/null\n+++ b/a\n@@ -0,0 +1 @@\n+x\n--- /dev/null\n+++ b/a/b\n@@ -0,0 +1 @@\n+y\n",
        );
        let e = plan(&both, files(&[])).unwrap_err();
        assert!(e.to_string().contains("both a file and a directory"), "{e}");
        // Made and removed again: nothing to do for it.
        let gone = parse(
            "--- /dev/null\n+++ b/t\n@@ -0,0 +1 @@\n+x\n--- a/t\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n",
        );
        assert!(plan(&gone, files(&[])).unwrap().is_empty());
    }
}
