//! The raw changes between two trees, as git's `diff_tree` finds them before rename
//! detection: every file added, deleted or modified, with full paths, in git's output order.

use super::GitError;
use gix::ObjectId;

/// One side of a change: a file (blob, symlink or submodule commit) at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The full path, bytes as git stores them.
    pub path: Vec<u8>,
    /// The mode as git prints it: 0o100644, 0o100755, 0o120000 or 0o160000.
    pub mode: u32,
    /// The object id (for a submodule: the commit it points at, not in this repository).
    pub id: ObjectId,
}

/// A raw change between two trees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// A file that only the new tree has.
    Added(Entry),
    /// A file that only the old tree has.
    Deleted(Entry),
    /// The same path in both, with other contents or mode (possibly another type: a file
    /// that became a symlink is one change, which git prints as a deletion and an addition).
    Modified {
        /// Before.
        old: Entry,
        /// After.
        new: Entry,
    },
}

/// A tree entry as the walk needs it, borrowed from its tree's bytes.
type TreeItem<'t> = gix::objs::tree::EntryRef<'t>;

/// The tree `id` (`None`: the empty tree), kept while its entries are walked.
fn read_tree(repo: &gix::Repository, id: Option<ObjectId>) -> Result<Option<gix::Tree<'_>>, GitError> {
    id.map(|id| repo.find_tree(id).map_err(|e| GitError::object(id, e))).transpose()
}

/// The entries of a tree [`read_tree`] read.
fn entries<'t>(tree: &'t Option<gix::Tree<'_>>) -> Result<Vec<TreeItem<'t>>, GitError> {
    match tree {
        None => Ok(Vec::new()),
        Some(tree) => tree.decode().map(|d| d.entries).map_err(|e| GitError::object(tree.id, e)),
    }
}

/// The mode git prints for an entry (`canon_mode`: any regular file is 100644 or 100755).
fn printed_mode(mode: gix::object::tree::EntryMode) -> u32 {
    mode.kind() as u32
}

/// The changes from tree `old` to tree `new` (`None`: the empty tree), recursively,
/// appended to `out` in git's order: depth first, entries in tree order, which for full
/// paths is their byte order.
pub(crate) fn changes(repo: &gix::Repository, old: Option<ObjectId>, new: Option<ObjectId>, out: &mut Vec<Change>) -> Result<(), GitError> {
    walk(repo, &mut Vec::new(), old, new, out)
}

fn walk(
    repo: &gix::Repository,
    prefix: &mut Vec<u8>,
    old: Option<ObjectId>,
    new: Option<ObjectId>,
    out: &mut Vec<Change>,
) -> Result<(), GitError> {
    if old.is_some() && old == new {
        return Ok(());
    }
    let (old_tree, new_tree) = (read_tree(repo, old)?, read_tree(repo, new)?);
    let (a, b) = (entries(&old_tree)?, entries(&new_tree)?);
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let order = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) => gix::objs::tree::name_order(x.filename, x.mode.is_tree(), y.filename, y.mode.is_tree()),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                removed(repo, prefix, &a[i], out)?;
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                added(repo, prefix, &b[j], out)?;
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                let (x, y) = (&a[i], &b[j]);
                if x.oid != y.oid || printed_mode(x.mode) != printed_mode(y.mode) {
                    match (x.mode.is_tree(), y.mode.is_tree()) {
                        (true, true) => {
                            let len = push_name(prefix, x.filename, true);
                            walk(repo, prefix, Some(x.oid.to_owned()), Some(y.oid.to_owned()), out)?;
                            prefix.truncate(len);
                        }
                        (false, false) => out.push(Change::Modified {
                            old: entry(prefix, x),
                            new: entry(prefix, y),
                        }),
                        // A file replaced by a directory or the other way: git's tree walk
                        // sorts them apart ("a" before "a/"), so this does not happen;
                        // kept for safety as a deletion and an addition.
                        _ => {
                            removed(repo, prefix, x, out)?;
                            added(repo, prefix, y, out)?;
                        }
                    }
                }
                i += 1;
                j += 1;
            }
        }
    }
    Ok(())
}

/// Appends `name` (and `/` for a directory) to `prefix`, returning the length to cut back to.
fn push_name(prefix: &mut Vec<u8>, name: &[u8], dir: bool) -> usize {
    let len = prefix.len();
    prefix.extend_from_slice(name);
    if dir {
        prefix.push(b'/');
    }
    len
}

fn entry(prefix: &[u8], item: &TreeItem) -> Entry {
    let mut path = prefix.to_vec();
    path.extend_from_slice(item.filename);
    Entry {
        path,
        mode: printed_mode(item.mode),
        id: item.oid.to_owned(),
    }
}

fn removed(repo: &gix::Repository, prefix: &mut Vec<u8>, item: &TreeItem, out: &mut Vec<Change>) -> Result<(), GitError> {
    if item.mode.is_tree() {
        let len = push_name(prefix, item.filename, true);
        walk(repo, prefix, Some(item.oid.to_owned()), None, out)?;
        prefix.truncate(len);
    } else {
        out.push(Change::Deleted(entry(prefix, item)));
    }
    Ok(())
}

fn added(repo: &gix::Repository, prefix: &mut Vec<u8>, item: &TreeItem, out: &mut Vec<Change>) -> Result<(), GitError> {
    if item.mode.is_tree() {
        let len = push_name(prefix, item.filename, true);
        walk(repo, prefix, None, Some(item.oid.to_owned()), out)?;
        prefix.truncate(len);
    } else {
        out.push(Change::Added(entry(prefix, item)));
    }
    Ok(())
}
