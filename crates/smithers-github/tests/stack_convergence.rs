#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

//! The stack planner against a model of GitHub and git: random
//! interleavings of people's actions (merges by merge commit, squash or
//! rebase, branches deleted through the API, pushes onto Smithers'
//! branches, syncs, commits on the base) with the events they cause
//! delivered 30 % never, the rest reordered and often twice, and Smithers'
//! own pushes sometimes cut off before it records them. Whatever the
//! order, the stack ends where perfect delivery takes it; every open pull
//! request shows exactly its own changes against its base; no one's
//! change is lost; and Smithers never writes a branch it did not make, nor
//! one that is not where it left it.
//!
//! The model's commits are sets of changes (a merge's is the union), which
//! is what "the diff is unchanged" is about; ancestry is real (parents).

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use smithers_github::stack_plan::{
    Action, Member, MemberState, Parent, Pending, PullSeen, PullState, Seen, Stack, plan,
};

const BASE: &str = "main";

#[derive(Debug, Clone)]
struct Commit {
    parents: Vec<usize>,
    content: BTreeSet<u32>,
}

#[derive(Debug, Clone)]
struct Pull {
    head: String,
    base: String,
    state: PullState,
    /// The head's commit when it was merged.
    merged: Option<usize>,
}

/// GitHub and its git, as far as a stack is concerned.
#[derive(Debug, Clone)]
struct Hub {
    commits: Vec<Commit>,
    branches: BTreeMap<String, usize>,
    pulls: BTreeMap<u64, Pull>,
    next_pull: u64,
}

fn sha(c: usize) -> String {
    format!("c{c}")
}

fn id(sha: &str) -> usize {
    sha[1..].parse().unwrap_or(usize::MAX)
}

impl Hub {
    fn commit(&mut self, parents: Vec<usize>, content: BTreeSet<u32>) -> usize {
        self.commits.push(Commit { parents, content });
        self.commits.len() - 1
    }

    fn ancestors(&self, c: usize) -> BTreeSet<usize> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![c];
        while let Some(c) = todo.pop() {
            if seen.insert(c) {
                todo.extend(&self.commits[c].parents);
            }
        }
        seen
    }

    fn is_ancestor(&self, a: usize, b: usize) -> bool {
        self.ancestors(b).contains(&a)
    }

    /// What a pull request from `head` onto `base` shows: the changes of
    /// `head` not in their best common ancestor (GitHub's three-dot diff).
    fn diff(&self, base: usize, head: usize) -> BTreeSet<u32> {
        let common: BTreeSet<usize> = self
            .ancestors(base)
            .intersection(&self.ancestors(head))
            .copied()
            .collect();
        let best = common
            .iter()
            .max_by_key(|c| self.commits[**c].content.len())
            .map(|c| self.commits[*c].content.clone())
            .unwrap_or_default();
        self.commits[head]
            .content
            .difference(&best)
            .copied()
            .collect()
    }

    /// A branch deleted through the API: GitHub closes the open pull
    /// requests based on it, for good.
    fn delete_branch(&mut self, branch: &str) {
        self.branches.remove(branch);
        for p in self.pulls.values_mut() {
            if p.state == PullState::Open && (p.base == branch || p.head == branch) {
                p.state = PullState::Closed;
            }
        }
    }
}

/// Smithers' side: the recorded stack and everything it did.
#[derive(Debug, Clone)]
struct Smithers {
    stack: Stack,
    paused: bool,
    finished: bool,
    made: BTreeSet<String>,
    /// Each change's member: the agent's, then people's pushes.
    own: Vec<BTreeSet<u32>>,
}

fn read(hub: &Hub, stack: &Stack) -> Seen {
    let mut seen = Seen::default();
    for m in &stack.members {
        if let Some(n) = m.pull
            && let Some(p) = hub.pulls.get(&n)
        {
            seen.pulls.insert(
                n,
                PullSeen {
                    state: p.state,
                    base: p.base.clone(),
                    head: p
                        .merged
                        .or_else(|| hub.branches.get(&p.head).copied())
                        .map(sha)
                        .unwrap_or_default(),
                },
            );
        }
    }
    for (branch, c) in &hub.branches {
        seen.branches.insert(branch.clone(), sha(*c));
    }
    seen
}

/// One reconcile pass; `cut` says whether a push is cut off before it is
/// recorded. Answers whether the plan had anything to do.
fn pass(s: &mut Smithers, hub: &mut Hub, cut: &mut impl FnMut() -> bool) -> bool {
    if s.finished {
        return false;
    }
    // A pause is what the last pass found, not a state of its own: it
    // lasts while its cause does.
    let planned = plan(&s.stack, &read(hub, &s.stack));
    s.paused = false;
    let busy = planned.iter().any(|a| !matches!(a, Action::Pause { .. }));
    for action in planned {
        if !apply(s, hub, action, cut) {
            break;
        }
    }
    busy
}

fn apply(s: &mut Smithers, hub: &mut Hub, action: Action, cut: &mut impl FnMut() -> bool) -> bool {
    match action {
        Action::Landed { member } => {
            let m = &mut s.stack.members[member];
            let p = m.pending.take().expect("Landed without a pending push");
            m.head = p.head;
            m.built_on = p.built_on;
            m.parent = p.parent;
        }
        Action::Merged { member } => s.stack.members[member].state = MemberState::Merged,
        Action::Pause { .. } => s.paused = true,
        Action::Retarget { member, pull, base } => {
            assert_eq!(s.stack.members[member].pull, Some(pull));
            if !hub.branches.contains_key(&base) {
                return false;
            }
            match hub.pulls.get_mut(&pull) {
                Some(p) if p.state == PullState::Open => p.base = base,
                _ => return false,
            }
        }
        Action::Restack { member, onto } => {
            let onto_sha = match onto {
                Parent::Base => match hub.branches.get(BASE) {
                    Some(c) => *c,
                    None => return false,
                },
                Parent::Member(k) => id(&s.stack.members[k].head),
            };
            let m = s.stack.members[member].clone();
            let (built_on, head) = (id(&m.built_on), id(&m.head));
            if hub.is_ancestor(built_on, onto_sha) {
                let m = &mut s.stack.members[member];
                m.built_on = sha(onto_sha);
                m.parent = onto;
                return true;
            }
            let own: BTreeSet<u32> = hub.commits[head]
                .content
                .difference(&hub.commits[built_on].content)
                .copied()
                .collect();
            let content = hub.commits[onto_sha].content.union(&own).copied().collect();
            let new = hub.commit(vec![onto_sha], content);
            s.stack.members[member].pending = Some(Pending {
                head: sha(new),
                built_on: sha(onto_sha),
                parent: onto,
            });
            // The push, leased on what Smithers last pushed.
            assert!(s.made.contains(&m.branch), "wrote {}", m.branch);
            if hub.branches.get(&m.branch) != Some(&head) {
                return false;
            }
            hub.branches.insert(m.branch.clone(), new);
            if cut() {
                return false;
            }
            let m = &mut s.stack.members[member];
            m.pending = None;
            m.head = sha(new);
            m.built_on = sha(onto_sha);
            m.parent = onto;
        }
        Action::Open {
            member,
            base,
            replaces,
        } => {
            let m = &s.stack.members[member];
            assert_eq!(m.pull, replaces);
            if !hub.branches.contains_key(&base) || !hub.branches.contains_key(&m.branch) {
                return false;
            }
            let n = hub.next_pull;
            hub.next_pull += 1;
            hub.pulls.insert(
                n,
                Pull {
                    head: m.branch.clone(),
                    base,
                    state: PullState::Open,
                    merged: None,
                },
            );
            s.stack.members[member].pull = Some(n);
        }
        Action::DeleteBranch { member, at } => {
            let m = &s.stack.members[member];
            assert!(s.made.contains(&m.branch), "deleted {}", m.branch);
            if hub.branches.get(&m.branch) == Some(&id(&at)) {
                let branch = m.branch.clone();
                hub.delete_branch(&branch);
            }
        }
        Action::Finished => {
            s.finished = true;
            return false;
        }
    }
    true
}

#[derive(Debug, Clone, Copy)]
enum Method {
    Merge,
    Squash,
    Rebase,
}

#[derive(Debug, Clone, Copy)]
enum Human {
    /// Merge the lowest open pull request of the stack, if it targets the
    /// base (branch protection holds the others back).
    Merge(Method),
    /// Delete the branch of a merged member through the API.
    DeleteMerged,
    /// Push a change onto a member's branch.
    Push(usize),
    /// Sync the stack: Smithers takes the branches as they are.
    Sync,
    /// Someone else's commit on the base.
    Land,
}

fn human() -> impl Strategy<Value = Human> {
    prop_oneof![
        4 => prop_oneof![Just(Method::Merge), Just(Method::Squash), Just(Method::Rebase)]
            .prop_map(Human::Merge),
        2 => Just(Human::DeleteMerged),
        2 => (0usize..4).prop_map(Human::Push),
        1 => Just(Human::Sync),
        1 => Just(Human::Land),
    ]
}

/// Carries out a person's action; `None` when it cannot be done now.
fn act(s: &mut Smithers, hub: &mut Hub, h: Human, change: u32) -> Option<()> {
    match h {
        Human::Merge(method) => {
            let m = s.stack.members.iter().find(|m| {
                m.pull
                    .and_then(|n| hub.pulls.get(&n))
                    .is_some_and(|p| p.state != PullState::Merged)
            })?;
            let n = m.pull?;
            let p = hub.pulls.get(&n)?;
            if p.state != PullState::Open || p.base != BASE {
                return None;
            }
            let head = *hub.branches.get(&p.head)?;
            let main = *hub.branches.get(BASE)?;
            let content: BTreeSet<u32> = hub.commits[main]
                .content
                .union(&hub.commits[head].content)
                .copied()
                .collect();
            let merged = match method {
                Method::Merge => hub.commit(vec![main, head], content),
                Method::Squash | Method::Rebase => hub.commit(vec![main], content),
            };
            hub.branches.insert(BASE.into(), merged);
            let p = hub.pulls.get_mut(&n)?;
            p.state = PullState::Merged;
            p.merged = Some(head);
        }
        Human::DeleteMerged => {
            let branch = s
                .stack
                .members
                .iter()
                .rev()
                .find(|m| {
                    m.pull
                        .and_then(|n| hub.pulls.get(&n))
                        .is_some_and(|p| p.state == PullState::Merged)
                        && hub.branches.contains_key(&m.branch)
                })?
                .branch
                .clone();
            hub.delete_branch(&branch);
        }
        Human::Push(i) => {
            let i = i % s.stack.members.len();
            let m = &s.stack.members[i];
            let open = m
                .pull
                .and_then(|n| hub.pulls.get(&n))
                .is_some_and(|p| p.state == PullState::Open);
            if !open {
                return None;
            }
            let tip = *hub.branches.get(&m.branch)?;
            let mut content = hub.commits[tip].content.clone();
            content.insert(change);
            let new = hub.commit(vec![tip], content);
            hub.branches.insert(m.branch.clone(), new);
            s.own[i].insert(change);
        }
        Human::Sync => {
            s.paused = false;
            for m in &mut s.stack.members {
                if m.state == MemberState::Open
                    && let Some(tip) = hub.branches.get(&m.branch)
                {
                    // Smithers' own push that landed unrecorded is taken
                    // for what it is.
                    if let Some(p) = m.pending.take()
                        && p.head == sha(*tip)
                    {
                        m.built_on = p.built_on;
                        m.parent = p.parent;
                    }
                    m.head = sha(*tip);
                }
            }
        }
        Human::Land => {
            let main = *hub.branches.get(BASE)?;
            let mut content = hub.commits[main].content.clone();
            content.insert(change);
            let new = hub.commit(vec![main], content);
            hub.branches.insert(BASE.into(), new);
        }
    }
    Some(())
}

/// A run's stack of `n` members as delivered: branches pushed, pull
/// requests not yet opened.
fn start(n: usize) -> (Smithers, Hub) {
    let mut hub = Hub {
        commits: vec![Commit {
            parents: vec![],
            content: BTreeSet::from([0]),
        }],
        branches: BTreeMap::from([(BASE.to_string(), 0)]),
        pulls: BTreeMap::new(),
        next_pull: 1,
    };
    let mut members = Vec::new();
    let mut own = Vec::new();
    let mut at = 0;
    for i in 0..n {
        let change = 1000 + i as u32;
        let mut content = hub.commits[at].content.clone();
        content.insert(change);
        let c = hub.commit(vec![at], content);
        let branch = format!("smithers/run/{}", i + 1);
        hub.branches.insert(branch.clone(), c);
        members.push(Member {
            branch,
            pull: None,
            parent: if i == 0 {
                Parent::Base
            } else {
                Parent::Member(i - 1)
            },
            built_on: sha(at),
            head: sha(c),
            state: MemberState::Open,
            pending: None,
        });
        own.push(BTreeSet::from([change]));
        at = c;
    }
    let made = members.iter().map(|m| m.branch.clone()).collect();
    (
        Smithers {
            stack: Stack {
                base: BASE.into(),
                members,
            },
            paused: false,
            finished: false,
            made,
            own,
        },
        hub,
    )
}

/// Passes until one has nothing to do.
fn settle(s: &mut Smithers, hub: &mut Hub, cut: &mut impl FnMut() -> bool) {
    for _ in 0..50 {
        if !pass(s, hub, cut) {
            return;
        }
    }
    panic!("the stack never settled: {:?}", s.stack);
}

/// A member's state, its pull request's state and base, and the changes
/// it shows.
type MemberOutcome = (MemberState, Option<(PullState, String)>, BTreeSet<u32>);

/// Where the stack ended, told without commit or pull request ids (a
/// recreated pull request has a new number; a replay, a new commit).
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    paused: bool,
    finished: bool,
    main: BTreeSet<u32>,
    members: Vec<MemberOutcome>,
    branches: BTreeSet<String>,
}

fn outcome(s: &Smithers, hub: &Hub) -> Outcome {
    Outcome {
        paused: s.paused,
        finished: s.finished,
        main: hub.commits[hub.branches[BASE]].content.clone(),
        members: s
            .stack
            .members
            .iter()
            .map(|m| {
                (
                    m.state,
                    m.pull
                        .and_then(|n| hub.pulls.get(&n))
                        .map(|p| (p.state, p.base.clone())),
                    shown(m, hub),
                )
            })
            .collect(),
        branches: hub.branches.keys().cloned().collect(),
    }
}

/// The changes a member's pull request shows against its base; none once
/// merged.
fn shown(m: &Member, hub: &Hub) -> BTreeSet<u32> {
    let open = m
        .pull
        .and_then(|n| hub.pulls.get(&n))
        .filter(|p| p.state == PullState::Open);
    match (open, hub.branches.get(&m.branch)) {
        (Some(p), Some(head)) => match hub.branches.get(&p.base) {
            Some(base) => hub.diff(*base, *head),
            None => BTreeSet::new(),
        },
        _ => BTreeSet::new(),
    }
}

/// xorshift64*: the chaos, reproducible from the case's seed.
struct Chaos(u64);

impl Chaos {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Runs `script`; with `chaos`, events are dropped, duplicated and
/// reordered and pushes cut off, else every event is delivered at once.
fn run(n: usize, script: &[Human], chaos: Option<u64>) -> (Smithers, Hub) {
    let (mut s, mut hub) = start(n);
    let mut rng = Chaos(chaos.unwrap_or(1) | 1);
    let chaotic = chaos.is_some();
    let mut cut_rng = Chaos(chaos.unwrap_or(1).rotate_left(17) | 1);
    let mut cut = move || chaotic && cut_rng.chance(15);
    // The run's delivery is an event of its own.
    let mut inbox: Vec<usize> = vec![0];
    let mut next = 0;
    let mut tries = 0;
    loop {
        if chaotic {
            if !inbox.is_empty() && (next >= script.len() || rng.chance(50)) {
                let at = (rng.next() % inbox.len() as u64) as usize;
                inbox.remove(at);
                pass(&mut s, &mut hub, &mut cut);
                continue;
            }
        } else {
            // Every event at once: passes until nothing is left to do.
            inbox.clear();
            settle(&mut s, &mut hub, &mut cut);
        }
        if next >= script.len() {
            break;
        }
        // A change is named by its place in the script, so that both runs
        // name it alike.
        let change = next as u32 + 1;
        match act(&mut s, &mut hub, script[next], change) {
            Some(()) => {
                next += 1;
                tries = 0;
                let copies = if !chaotic {
                    1
                } else if rng.chance(30) {
                    0
                } else if rng.chance(40) {
                    2
                } else {
                    1
                };
                for _ in 0..copies {
                    let at = (rng.next() % (inbox.len() as u64 + 1)) as usize;
                    inbox.insert(at, next);
                }
            }
            // Not possible now: the periodic pass comes, then the person
            // tries again; once nothing changes, they give up.
            None => {
                if pass(&mut s, &mut hub, &mut cut) && tries < 50 {
                    tries += 1;
                } else {
                    next += 1;
                    tries = 0;
                }
            }
        }
    }
    // The script ends with a sync when anyone pushed; then the periodic
    // passes.
    if script.iter().any(|h| matches!(h, Human::Push(_))) {
        act(&mut s, &mut hub, Human::Sync, 0);
    }
    settle(&mut s, &mut hub, &mut cut);
    (s, hub)
}

fn check_right(s: &Smithers, hub: &Hub) {
    assert!(!s.paused, "paused at the end: {:?}", s.stack);
    for (i, m) in s.stack.members.iter().enumerate() {
        let Some(n) = m.pull else {
            panic!("member {i} has no pull request");
        };
        let p = &hub.pulls[&n];
        match m.state {
            MemberState::Merged => assert_eq!(p.state, PullState::Merged),
            MemberState::Open => {
                assert_eq!(p.state, PullState::Open, "member {i}: {p:?}");
                let below = s.stack.members[..i]
                    .iter()
                    .rev()
                    .find(|b| b.state == MemberState::Open);
                let base = below.map_or(BASE.to_string(), |b| b.branch.clone());
                assert_eq!(p.base, base, "member {i} targets the wrong base");
                let head = hub.branches[&m.branch];
                assert_eq!(id(&m.head), head);
                assert_eq!(
                    hub.diff(hub.branches[&p.base], head),
                    s.own[i],
                    "member {i}'s pull request does not show exactly its own changes"
                );
            }
            MemberState::Closed => panic!("member {i} closed"),
        }
    }
    // No one's change is lost.
    let mut everywhere = hub.commits[hub.branches[BASE]].content.clone();
    for m in &s.stack.members {
        if let Some(c) = hub.branches.get(&m.branch) {
            everywhere.extend(&hub.commits[*c].content);
        }
    }
    for own in &s.own {
        assert!(own.is_subset(&everywhere), "lost {own:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_delivery_order_converges_to_the_same_right_stack(
        n in 2usize..=4,
        script in prop::collection::vec(human(), 0..12),
        seed in any::<u64>(),
    ) {
        let (calm, calm_hub) = run(n, &script, None);
        check_right(&calm, &calm_hub);
        let (chaos, chaos_hub) = run(n, &script, Some(seed));
        check_right(&chaos, &chaos_hub);
        prop_assert_eq!(outcome(&chaos, &chaos_hub), outcome(&calm, &calm_hub));
    }
}

#[test]
fn a_squash_merged_bottom_leaves_the_next_showing_only_its_own_changes() {
    let script = [Human::Merge(Method::Squash)];
    let (s, hub) = run(3, &script, None);
    check_right(&s, &hub);
    assert_eq!(s.stack.members[0].state, MemberState::Merged);
    assert_eq!(s.stack.members[1].parent, Parent::Base);
    assert!(!hub.branches.contains_key("smithers/run/1"));
}
