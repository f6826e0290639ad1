//! What a chain of pull requests needs done, decided from the stack as
//! Smithers recorded it and from GitHub as it reads now — never from what
//! an event said. The same inputs give the same plan, so events that come
//! late, twice or never change when the chain is put right, not how
//! (level-triggered, as Kubernetes' controllers are).
//!
//! The rules:
//! - a member's pull request merged (merge commit, squash or rebase): the
//!   member is recorded merged; the lowest open member above it is
//!   retargeted onto the stack's base **before** anything else, then
//!   restacked onto it; merged members' branches are deleted last, and only while they hold
//!   exactly what was merged;
//! - a member is built on its parent (the open member below it, or the
//!   stack's base): when the parent moved (restacked, or adopted after a
//!   person's push), the member is restacked onto it — only its own
//!   commits, `BUILT_ON..HEAD`, are replayed;
//! - an open member's branch on GitHub is not where Smithers left it, or
//!   was deleted: someone else wrote it, and the stack pauses (Smithers
//!   never overwrites another's push). A pause is found again by every
//!   plan, never stored as a state of its own: it lasts while its cause
//!   does — until a person syncs the stack (Smithers takes the branches as
//!   they are), restores the branch, or merges the member (its commits,
//!   theirs included, are then in the base, and the rest of the stack goes
//!   on). So when an event arrives changes nothing;
//! - a member's pull request closed without merging: recreated when
//!   GitHub closed it because its base went away (its parent merged, or
//!   its base branch is gone); otherwise a person closed it, and the stack
//!   pauses until it is reopened or merged;
//! - a member without a pull request gets one, onto its parent's branch.
//!
//! The plan is carried out in order by the reconciler (`stacks.rs`); a
//! step that fails ends the pass, and the next pass plans again from what
//! GitHub then says.

use crate::pulls::short;
use std::collections::BTreeMap;

pub use crate::stack_block::MemberState;

/// What a member's own commits sit on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Parent {
    /// The stack's base branch.
    Base,
    /// The member at this index (bottom first, from 0).
    Member(usize),
}

/// A push Smithers began and has not recorded as landed: the branch at
/// `head` on GitHub is Smithers' own push, not someone else's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub head: String,
    pub built_on: String,
    pub parent: Parent,
}

/// One member of a stack as Smithers recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its `smithers/…` branch.
    pub branch: String,
    /// Its pull request, once opened.
    pub pull: Option<u64>,
    pub parent: Parent,
    /// The commit its own commits sit on (`BUILT_ON..head` are its own).
    pub built_on: String,
    /// The commit Smithers last pushed to its branch.
    pub head: String,
    pub state: MemberState,
    pub pending: Option<Pending>,
}

/// A stack as Smithers recorded it, bottom first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    /// The branch the bottom's pull request targets.
    pub base: String,
    pub members: Vec<Member>,
}

/// Where a pull request stands on GitHub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullState {
    Open,
    Closed,
    Merged,
}

/// A pull request as GitHub shows it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSeen {
    pub state: PullState,
    /// The branch it targets.
    pub base: String,
    /// The commit its head was at (`head.sha`): for a merged pull request,
    /// the last commit that was merged.
    pub head: String,
}

/// GitHub now, as far as a stack is concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    /// Every member's pull request (a member's missing here: not read).
    pub pulls: BTreeMap<u64, PullSeen>,
    /// The tip of every member's branch and of the base branch; a branch
    /// missing here does not exist.
    pub branches: BTreeMap<String, String>,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Record that the push Smithers began onto the member's branch landed.
    Landed { member: usize },
    /// Record the member's pull request as merged.
    Merged { member: usize },
    /// Do nothing more on this pass: the stack waits for a person (see the
    /// module's rules); `pull` is the pull request to tell why.
    Pause {
        member: usize,
        reason: String,
        pull: Option<u64>,
    },
    /// Point the member's pull request at `base`.
    Retarget {
        member: usize,
        pull: u64,
        base: String,
    },
    /// Put the member's own commits onto `onto`'s tip (replayed, or only
    /// recorded when they already build on it) and push with a lease.
    Restack { member: usize, onto: Parent },
    /// Open the member's pull request onto `base`; `replaces` is the one
    /// GitHub closed under it.
    Open {
        member: usize,
        base: String,
        replaces: Option<u64>,
    },
    /// Delete the merged member's branch, leased on `at` (what was
    /// merged).
    DeleteBranch { member: usize, at: String },
    /// Every member is merged: the stack is done.
    Finished,
}

/// The steps that bring GitHub to the stack, in the order they must be
/// carried out. Empty when nothing is to be done, or when something the
/// plan needs was not read (a member's pull request missing from `seen`).
///
/// A [`Action::Pause`] holds back what would rewrite the member it names
/// and every member above it (restacks); what only records or points
/// (merges, landed pushes, retargets, pull requests opened, deleting merged
/// branches) goes on, so that a person can still review and merge.
pub fn plan(stack: &Stack, seen: &Seen) -> Vec<Action> {
    let mut out = Vec::new();
    let mut members = stack.members.clone();
    let mut recreate = vec![false; members.len()];
    // The lowest member someone else's hand holds back.
    let mut held = members.len();

    // What happened on GitHub: merges, pushes that landed, someone else's
    // hand.
    for i in 0..members.len() {
        if members[i].state != MemberState::Open {
            continue;
        }
        let pull = match members[i].pull {
            Some(n) => match seen.pulls.get(&n) {
                Some(p) => Some((n, p)),
                None => return Vec::new(),
            },
            None => None,
        };
        if let Some((_, p)) = pull
            && p.state == PullState::Merged
        {
            out.push(Action::Merged { member: i });
            members[i].state = MemberState::Merged;
            continue;
        }
        let tip = seen.branches.get(&members[i].branch);
        if let (Some(tip), Some(pending)) = (tip, &members[i].pending)
            && *tip == pending.head
        {
            out.push(Action::Landed { member: i });
            let pending = pending.clone();
            let m = &mut members[i];
            m.head = pending.head;
            m.built_on = pending.built_on;
            m.parent = pending.parent;
            m.pending = None;
        }
        let m = &members[i];
        let number = pull.map(|(n, _)| n);
        // A pull request GitHub closed because its base branch went away
        // is recreated; one a person closed (its base still there) holds
        // the stack.
        let closed = match pull {
            Some((n, p)) if p.state == PullState::Closed => {
                if seen.branches.contains_key(&p.base) {
                    Some(format!(
                        "#{n} was closed without being merged: the stack waits (reopen it)"
                    ))
                } else {
                    recreate[i] = true;
                    None
                }
            }
            _ => None,
        };
        let reason = match tip {
            None => Some(format!(
                "{} was deleted by someone else: the stack waits (restore the branch)",
                m.branch
            )),
            Some(tip) if *tip != m.head => Some(format!(
                "{} is at {}, not where Smithers left it ({}): someone else pushed to it, \
                 and Smithers does not overwrite their work; the stack waits (sync it to \
                 build on their push)",
                m.branch,
                short(tip),
                short(&m.head)
            )),
            Some(_) => closed,
        };
        if let Some(reason) = reason {
            out.push(Action::Pause {
                member: i,
                reason,
                pull: number,
            });
            held = held.min(i);
        }
    }

    // The base branch gone (the triggering pull request's branch deleted
    // after its merge, say): nothing may point at it or be rebuilt on it
    // until a person restores it.
    let base_gone = !seen.branches.contains_key(&stack.base);
    if base_gone
        && let Some(bottom) = (0..members.len()).find(|&i| members[i].state == MemberState::Open)
    {
        out.push(Action::Pause {
            member: bottom,
            reason: format!(
                "the base branch {} is gone: the stack waits (restore it)",
                stack.base
            ),
            pull: members[bottom].pull,
        });
        held = held.min(bottom);
    }

    // Each open member on its parent, bottom first; a retarget before
    // anything that rewrites.
    let mut moved = vec![false; members.len()];
    for i in 0..members.len() {
        if members[i].state != MemberState::Open {
            continue;
        }
        let parent = (0..i)
            .rev()
            .find(|&k| members[k].state == MemberState::Open)
            .map_or(Parent::Base, Parent::Member);
        let base = match parent {
            Parent::Base => stack.base.clone(),
            Parent::Member(k) => members[k].branch.clone(),
        };
        // Nothing points at a base that is gone.
        if base_gone && parent == Parent::Base {
            continue;
        }
        let m = &members[i];
        if let Some(n) = m.pull
            && !recreate[i]
            && seen
                .pulls
                .get(&n)
                .is_some_and(|p| p.state == PullState::Open && p.base != base)
        {
            out.push(Action::Retarget {
                member: i,
                pull: n,
                base: base.clone(),
            });
        }
        let restack = match (m.parent, parent) {
            (was, now) if was != now => true,
            (_, Parent::Member(k)) => moved[k] || m.built_on != members[k].head,
            (_, Parent::Base) => false,
        };
        if restack && i < held {
            out.push(Action::Restack {
                member: i,
                onto: parent,
            });
            moved[i] = true;
        }
        // A pull request is opened even for a held member when its branch
        // is there: it only points, and a person may want to merge it.
        if (m.pull.is_none() || recreate[i]) && (i < held || seen.branches.contains_key(&m.branch))
        {
            out.push(Action::Open {
                member: i,
                base,
                replaces: m.pull,
            });
        }
    }

    // Merged members' branches, once nothing of the stack targets them,
    // and only while the branch holds exactly what was merged: a commit
    // pushed after the merge is someone's work that is nowhere else.
    for (i, m) in members.iter().enumerate() {
        let merged_head = m
            .pull
            .and_then(|n| seen.pulls.get(&n))
            .filter(|p| p.state == PullState::Merged)
            .map(|p| &p.head);
        if m.state == MemberState::Merged
            && let Some(tip) = seen.branches.get(&m.branch)
            && merged_head == Some(tip)
        {
            out.push(Action::DeleteBranch {
                member: i,
                at: tip.clone(),
            });
        }
    }
    if !members.is_empty() && members.iter().all(|m| m.state == MemberState::Merged) {
        out.push(Action::Finished);
    }
    out
}

/// Which member's branch each open member's pull request should target,
/// bottom first: `None` for merged members.
pub fn parents(stack: &Stack) -> Vec<Option<Parent>> {
    let mut out = Vec::with_capacity(stack.members.len());
    for (i, m) in stack.members.iter().enumerate() {
        if m.state != MemberState::Open {
            out.push(None);
            continue;
        }
        out.push(Some(
            (0..i)
                .rev()
                .find(|&k| stack.members[k].state == MemberState::Open)
                .map_or(Parent::Base, Parent::Member),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(i: usize, pull: u64) -> Member {
        Member {
            branch: format!("smithers/r/{}", i + 1),
            pull: Some(pull),
            parent: if i == 0 {
                Parent::Base
            } else {
                Parent::Member(i - 1)
            },
            built_on: if i == 0 {
                "base0".into()
            } else {
                format!("h{}", i - 1)
            },
            head: format!("h{i}"),
            state: MemberState::Open,
            pending: None,
        }
    }

    fn set(seen: &mut Seen, pull: u64, state: PullState) {
        if let Some(p) = seen.pulls.get_mut(&pull) {
            p.state = state;
        }
    }

    fn three() -> (Stack, Seen) {
        let stack = Stack {
            base: "main".into(),
            members: (0..3).map(|i| member(i, 10 + i as u64)).collect(),
        };
        let mut seen = Seen::default();
        seen.branches.insert("main".into(), "base0".into());
        for (i, m) in stack.members.iter().enumerate() {
            seen.branches.insert(m.branch.clone(), m.head.clone());
            seen.pulls.insert(
                10 + i as u64,
                PullSeen {
                    state: PullState::Open,
                    head: m.head.clone(),
                    base: if i == 0 {
                        "main".into()
                    } else {
                        stack.members[i - 1].branch.clone()
                    },
                },
            );
        }
        (stack, seen)
    }

    #[test]
    fn a_settled_stack_needs_nothing() {
        let (stack, seen) = three();
        assert_eq!(plan(&stack, &seen), vec![]);
    }

    #[test]
    fn a_merged_bottom_retargets_the_next_before_it_restacks_and_deletes() {
        let (stack, mut seen) = three();
        set(&mut seen, 10, PullState::Merged);
        seen.branches.insert("main".into(), "squash".into());
        assert_eq!(
            plan(&stack, &seen),
            vec![
                Action::Merged { member: 0 },
                Action::Retarget {
                    member: 1,
                    pull: 11,
                    base: "main".into()
                },
                Action::Restack {
                    member: 1,
                    onto: Parent::Base
                },
                Action::Restack {
                    member: 2,
                    onto: Parent::Member(1)
                },
                Action::DeleteBranch {
                    member: 0,
                    at: "h0".into()
                },
            ]
        );
    }

    #[test]
    fn someone_elses_push_pauses_the_stack() {
        let (stack, mut seen) = three();
        seen.branches.insert("smithers/r/2".into(), "theirs".into());
        let planned = plan(&stack, &seen);
        assert!(
            matches!(planned.as_slice(), [Action::Pause { pull: Some(11), .. }]),
            "{planned:?}"
        );
    }

    #[test]
    fn smithers_own_unrecorded_push_is_recognized() {
        let (mut stack, mut seen) = three();
        stack.members[1].pending = Some(Pending {
            head: "h1b".into(),
            built_on: "h0".into(),
            parent: Parent::Member(0),
        });
        seen.branches.insert("smithers/r/2".into(), "h1b".into());
        assert_eq!(
            plan(&stack, &seen),
            vec![
                Action::Landed { member: 1 },
                Action::Restack {
                    member: 2,
                    onto: Parent::Member(1)
                }
            ]
        );
    }

    #[test]
    fn a_child_closed_under_a_deleted_base_is_recreated() {
        let (stack, mut seen) = three();
        set(&mut seen, 10, PullState::Merged);
        set(&mut seen, 11, PullState::Closed);
        seen.branches.remove("smithers/r/1");
        assert_eq!(
            plan(&stack, &seen),
            vec![
                Action::Merged { member: 0 },
                Action::Restack {
                    member: 1,
                    onto: Parent::Base
                },
                Action::Open {
                    member: 1,
                    base: "main".into(),
                    replaces: Some(11)
                },
                Action::Restack {
                    member: 2,
                    onto: Parent::Member(1)
                },
            ]
        );
    }

    #[test]
    fn a_pull_request_a_person_closed_pauses_the_stack() {
        let (stack, mut seen) = three();
        set(&mut seen, 12, PullState::Closed);
        let planned = plan(&stack, &seen);
        assert!(
            matches!(planned.as_slice(), [Action::Pause { .. }]),
            "{planned:?}"
        );
    }

    #[test]
    fn a_child_a_person_closed_after_its_parent_merged_is_not_reopened() {
        // The parent's branch is still there: GitHub did not close it.
        let (stack, mut seen) = three();
        set(&mut seen, 10, PullState::Merged);
        set(&mut seen, 11, PullState::Closed);
        let planned = plan(&stack, &seen);
        assert!(
            !planned.iter().any(|a| matches!(a, Action::Open { .. })),
            "{planned:?}"
        );
        assert!(
            planned.iter().any(|a| matches!(
                a,
                Action::Pause {
                    member: 1,
                    pull: Some(11),
                    ..
                }
            )),
            "{planned:?}"
        );
    }

    #[test]
    fn a_gone_base_holds_the_stack_and_nothing_points_at_it() {
        let (stack, mut seen) = three();
        seen.branches.remove("main");
        set(&mut seen, 10, PullState::Closed);
        let planned = plan(&stack, &seen);
        assert_eq!(
            planned,
            vec![Action::Pause {
                member: 0,
                reason: "the base branch main is gone: the stack waits (restore it)".into(),
                pull: Some(10),
            }]
        );
    }

    #[test]
    fn an_unread_pull_request_plans_nothing() {
        let (stack, mut seen) = three();
        seen.pulls.remove(&11);
        assert_eq!(plan(&stack, &seen), vec![]);
    }

    #[test]
    fn every_member_merged_finishes_the_stack() {
        let (mut stack, mut seen) = three();
        for m in &mut stack.members[..2] {
            m.state = MemberState::Merged;
        }
        stack.members[2].parent = Parent::Base;
        set(&mut seen, 12, PullState::Merged);
        if let Some(p) = seen.pulls.get_mut(&12) {
            p.base = "main".into();
        }
        seen.branches.remove("smithers/r/1");
        seen.branches.remove("smithers/r/2");
        assert_eq!(
            plan(&stack, &seen),
            vec![
                Action::Merged { member: 2 },
                Action::DeleteBranch {
                    member: 2,
                    at: "h2".into()
                },
                Action::Finished
            ]
        );
    }

    #[test]
    fn a_merged_branch_someone_pushed_to_after_the_merge_is_kept() {
        let (stack, mut seen) = three();
        set(&mut seen, 10, PullState::Merged);
        seen.branches.insert("smithers/r/1".into(), "after".into());
        let planned = plan(&stack, &seen);
        assert!(
            !planned
                .iter()
                .any(|a| matches!(a, Action::DeleteBranch { .. })),
            "{planned:?}"
        );
    }
}
