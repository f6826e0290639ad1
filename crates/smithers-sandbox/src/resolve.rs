//! Where a workspace path leads once every symbolic link on the way is
//! followed: `realpath`, confined to the workspace and computed one
//! component at a time over what each provider can look at without
//! following anything. One algorithm for every provider, so that both
//! answer alike for the same tree.

use std::collections::VecDeque;
use std::future::Future;

use crate::Error;
use crate::provider::Resolved;

/// How many links one resolution follows before it gives up (Linux's own
/// limit, `MAXSYMLINKS`): a loop is an error, not a hang.
pub(crate) const MAX_LINKS: usize = 40;

/// What one path of the workspace is, looked at without following it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    Missing,
    Directory,
    /// A regular file.
    File,
    /// A symbolic link and its target: as written (native), or already
    /// resolved to an absolute path by the Docker engine; either works.
    Symlink(String),
    /// A device, socket or pipe.
    Other,
}

/// The sandbox-absolute name of the workspace.
const WORKSPACE: &str = "workspace";

/// Resolves `path` (workspace-relative, or absolute in the sandbox's view
/// as `/workspace/…`) with `look`, which is given the components of a
/// workspace-relative path whose parents are all directories (never
/// links) and says what that path is.
pub(crate) async fn resolve<F, Fut>(path: &str, mut look: F) -> Result<Resolved, Error>
where
    F: FnMut(Vec<String>) -> Fut,
    Fut: Future<Output = Result<Entry, Error>>,
{
    if path.contains('\0') {
        return Err(Error::Invalid(format!("{path:?} is not a file path")));
    }
    let mut todo: VecDeque<String> = components(path).collect();
    // `None`: at the sandbox's `/`, where only `workspace` leads back in.
    let mut at: Option<Vec<String>> = if path.starts_with('/') {
        None
    } else {
        Some(Vec::new())
    };
    // From which depth of `at` nothing exists any more: the rest is kept
    // as written, with `..` still taking back what it names.
    let mut missing_from: Option<usize> = None;
    let mut links = 0;
    while let Some(part) = todo.pop_front() {
        if part == "." {
            continue;
        }
        let Some(parts) = at.as_mut() else {
            // At `/`: its parent is itself; anything but the workspace is
            // out, and nothing there is looked at.
            match part.as_str() {
                ".." => {}
                WORKSPACE => at = Some(Vec::new()),
                _ => return Ok(Resolved::Outside(outside(&part, todo))),
            }
            continue;
        };
        if part == ".." {
            if parts.pop().is_none() {
                at = None;
            }
            if missing_from.is_some_and(|from| at.as_ref().is_none_or(|p| p.len() <= from)) {
                missing_from = None;
            }
            continue;
        }
        if missing_from.is_some() {
            parts.push(part);
            continue;
        }
        let mut candidate = parts.clone();
        candidate.push(part.clone());
        match look(candidate).await? {
            Entry::Directory => parts.push(part),
            Entry::Missing => {
                missing_from = Some(parts.len());
                parts.push(part);
            }
            // Nothing exists beneath a file: what follows is kept as written.
            Entry::File | Entry::Other => {
                parts.push(part);
                missing_from = Some(parts.len());
            }
            Entry::Symlink(target) => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(Error::Invalid(format!(
                        "{path:?} goes through more than {MAX_LINKS} symbolic links (a loop?)"
                    )));
                }
                if target.is_empty() || target.contains('\0') {
                    return Err(Error::Invalid(format!(
                        "{path:?} goes through a symbolic link with no usable target"
                    )));
                }
                // A relative target continues from the link's directory
                // (where `at` is); an absolute one from `/`.
                if target.starts_with('/') {
                    at = None;
                }
                for component in components(&target).rev() {
                    todo.push_front(component);
                }
            }
        }
    }
    Ok(match at {
        Some(parts) => Resolved::Inside(parts.join("/")),
        None => Resolved::Outside("/".to_string()),
    })
}

fn components(path: &str) -> impl DoubleEndedIterator<Item = String> + '_ {
    path.split('/')
        .filter(|c| !c.is_empty())
        .map(str::to_string)
}

/// `/first/rest…`: nothing out of the workspace is looked at, so `..`
/// there stays as written (what it undoes might be a link).
fn outside(first: &str, rest: VecDeque<String>) -> String {
    let mut out = format!("/{first}");
    for part in rest.iter().filter(|p| *p != ".") {
        out.push('/');
        out.push_str(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// A workspace tree in memory: paths to entries (directories implied).
    fn tree(entries: &[(&str, Entry)]) -> BTreeMap<String, Entry> {
        let mut map = BTreeMap::new();
        for (path, entry) in entries {
            let mut parent = String::new();
            for part in path.split('/').collect::<Vec<_>>().split_last().unwrap().1 {
                if !parent.is_empty() {
                    parent.push('/');
                }
                parent.push_str(part);
                map.insert(parent.clone(), Entry::Directory);
            }
            map.insert((*path).to_string(), entry.clone());
        }
        map
    }

    fn run(map: &BTreeMap<String, Entry>, path: &str) -> Result<Resolved, Error> {
        let future = resolve(path, |parts: Vec<String>| {
            std::future::ready(Ok(map
                .get(&parts.join("/"))
                .cloned()
                .unwrap_or(Entry::Missing)))
        });
        // Nothing in `look` waits: the future is ready at its first poll.
        let mut future = std::pin::pin!(future);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(result) => result,
            std::task::Poll::Pending => panic!("resolve waited on nothing"),
        }
    }

    fn inside(path: &str) -> Resolved {
        Resolved::Inside(path.to_string())
    }

    fn out(path: &str) -> Resolved {
        Resolved::Outside(path.to_string())
    }

    #[test]
    fn links_are_followed_and_confined() {
        let link = |t: &str| Entry::Symlink(t.to_string());
        let map = tree(&[
            ("config/prod.key", Entry::File),
            (".github/workflows/ci.yml", Entry::File),
            ("notes.txt", link("config/prod.key")),
            ("docs", link(".github")),
            ("abs", link("/workspace/config/prod.key")),
            ("resolved", link("/workspace/config")),
            ("out", link("/etc/passwd")),
            ("up", link("../../etc/passwd")),
            ("back", link("../workspace/config/prod.key")),
            ("config/sibling", link("../docs/workflows")),
            ("loop-a", link("loop-b")),
            ("loop-b", link("loop-a")),
            ("dangling", link("nowhere/./file")),
            ("tricky", link("/etc/../workspace/config")),
        ]);
        for (path, expected) in [
            ("config/prod.key", inside("config/prod.key")),
            ("/workspace/config/prod.key", inside("config/prod.key")),
            ("./config//../config/prod.key", inside("config/prod.key")),
            ("", inside("")),
            ("/workspace", inside("")),
            ("missing.txt", inside("missing.txt")),
            ("config/new/deeper.txt", inside("config/new/deeper.txt")),
            ("config/new/../prod.key", inside("config/prod.key")),
            ("config/prod.key/x", inside("config/prod.key/x")),
            ("notes.txt", inside("config/prod.key")),
            ("docs", inside(".github")),
            ("docs/workflows/x.yml", inside(".github/workflows/x.yml")),
            ("abs", inside("config/prod.key")),
            ("resolved/prod.key", inside("config/prod.key")),
            ("config/sibling/ci.yml", inside(".github/workflows/ci.yml")),
            ("back", inside("config/prod.key")),
            ("out", out("/etc/passwd")),
            ("up", out("/etc/passwd")),
            ("../../etc/passwd", out("/etc/passwd")),
            ("config/../../secret", out("/secret")),
            ("..", out("/")),
            ("/etc/shadow", out("/etc/shadow")),
            ("/workspacex/a", out("/workspacex/a")),
            ("tricky", out("/etc/../workspace/config")),
            ("dangling", inside("nowhere/file")),
            ("dangling/../other", inside("nowhere/other")),
        ] {
            assert_eq!(run(&map, path).unwrap(), expected, "{path}");
        }
        let e = run(&map, "loop-a").unwrap_err();
        assert!(e.to_string().contains("symbolic links"), "{e}");
        assert!(run(&map, "a\0b").is_err());
    }

    #[test]
    fn nothing_beneath_a_missing_or_file_component_is_looked_at() {
        let map = tree(&[("file", Entry::File)]);
        let mut looked = Vec::new();
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        for path in ["missing/a/b", "file/a/b"] {
            let future = resolve(path, |parts: Vec<String>| {
                let joined = parts.join("/");
                looked.push(joined.clone());
                std::future::ready(Ok(map.get(&joined).cloned().unwrap_or(Entry::Missing)))
            });
            let mut future = std::pin::pin!(future);
            assert!(future.as_mut().poll(&mut cx).is_ready());
        }
        assert_eq!(looked, ["missing", "file"]);
    }
}
