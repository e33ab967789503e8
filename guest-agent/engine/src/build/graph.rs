//! The stage graph of a BuildKit build: which earlier stages each stage reads (its `FROM`,
//! `COPY --from`, `RUN --mount=from=`), the stages the target needs (the rest are skipped,
//! so an unused stage that would fail does not fail the build), and the waves in which they
//! run: every stage of a wave depends only on stages of earlier waves, so a wave's stages
//! are built at once. The classic builder (`POST /build`) keeps dockerd's order: every stage
//! up to the target, one after the other.

use std::collections::BTreeSet;

use super::dockerfile::Instruction;
use super::words::{expand, Vars};
use super::{mounts, Stage};

/// The index of the stage `name` (a stage name, lower case, or a number) among the first
/// `before` stages.
fn stage_index(stages: &[Stage], before: usize, name: &str) -> Option<usize> {
    if let Ok(n) = name.parse::<usize>() {
        return (n < before).then_some(n);
    }
    let lower = name.to_ascii_lowercase();
    stages[..before]
        .iter()
        .position(|s| s.name.as_deref() == Some(lower.as_str()))
}

/// The names an instruction reads another stage by.
fn referenced(i: &Instruction, vars: &Vars, escape: char) -> Vec<String> {
    let mut out = Vec::new();
    if matches!(i.cmd.as_str(), "COPY" | "ADD") {
        if let Some(from) = i.flag("from") {
            out.push(expand(from, vars, escape).unwrap_or_else(|_| from.to_string()));
        }
    }
    if i.cmd == "RUN" {
        for (_, v) in i.flags.iter().filter(|(k, _)| k == "mount") {
            if let Ok(mounts::RunMount::Bind { from: Some(f), .. }) = mounts::parse(v, vars, escape)
            {
                out.push(f);
            }
        }
    }
    out
}

/// For each stage, the earlier stages it reads. `vars` are the global `ARG`s (what `FROM`
/// and, as an approximation, the stage's flags are expanded with).
pub(crate) fn dependencies(stages: &[Stage], vars: &Vars, escape: char) -> Vec<BTreeSet<usize>> {
    stages
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let base = s.from.rest.split_whitespace().next().unwrap_or_default();
            let base = expand(base, vars, escape).unwrap_or_else(|_| base.to_string());
            std::iter::once(base)
                .chain(s.body.iter().flat_map(|i| referenced(i, vars, escape)))
                .filter_map(|name| stage_index(stages, k, &name))
                .collect()
        })
        .collect()
}

/// The stages `target` needs (itself included), in order.
pub(crate) fn needed(deps: &[BTreeSet<usize>], target: usize) -> BTreeSet<usize> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![target];
    while let Some(k) = todo.pop() {
        if seen.insert(k) {
            todo.extend(deps[k].iter().copied());
        }
    }
    seen
}

/// The needed stages in waves: a stage goes in the wave after the last of its dependencies.
pub(crate) fn waves(deps: &[BTreeSet<usize>], needed: &BTreeSet<usize>) -> Vec<Vec<usize>> {
    let mut level = vec![0usize; deps.len()];
    let mut out: Vec<Vec<usize>> = Vec::new();
    for &k in needed {
        // Dependencies are earlier stages, so their levels are known.
        level[k] = deps[k].iter().map(|&d| level[d] + 1).max().unwrap_or(0);
        if out.len() <= level[k] {
            out.resize(level[k] + 1, vec![]);
        }
        out[level[k]].push(k);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::dockerfile::parse;

    fn graph(text: &str) -> Vec<BTreeSet<usize>> {
        let df = parse(text).unwrap();
        let (_, stages) = crate::build::stages(df.instructions).unwrap();
        let vars: Vars = [("BASE".to_string(), "a".to_string())].into();
        dependencies(&stages, &vars, df.escape)
    }

    #[test]
    fn stages_depend_on_what_they_read_and_run_in_waves() {
        let deps = graph(
            "ARG BASE\n\
             FROM busybox AS a\n\
             FROM busybox AS b\n\
             FROM busybox AS broken\nRUN exit 1\n\
             FROM $BASE AS c\n\
             COPY --from=b /x /x\n\
             RUN --mount=type=bind,from=0,target=/m true\n\
             FROM c\n",
        );
        assert_eq!(
            deps,
            vec![
                BTreeSet::new(),
                BTreeSet::new(),
                BTreeSet::new(),
                BTreeSet::from([0, 1]),
                BTreeSet::from([3]),
            ]
        );
        // The failing stage 2 is not needed by the last one.
        let all = needed(&deps, 4);
        assert_eq!(all, BTreeSet::from([0, 1, 3, 4]));
        assert_eq!(waves(&deps, &all), vec![vec![0, 1], vec![3], vec![4]]);
    }

    #[test]
    fn later_stages_find_earlier_ones_by_name_or_number() {
        let deps = graph("FROM busybox AS one\nFROM one\nCOPY --from=0 /a /a\nFROM scratch\n");
        assert_eq!(deps[1], BTreeSet::from([0]));
        assert!(needed(&deps, 2).len() == 1);
    }
}
