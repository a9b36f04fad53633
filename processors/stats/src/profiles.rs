//! Call-stack profiles as folded stacks (`frame;frame;leaf count`, the format flame graphs are
//! drawn from) and the share of each function: *self* = counts whose leaf frame is it,
//! *total* = counts whose stack contains it (once per stack, however deep the recursion), each
//! over all counts. [`biggest_changes`] ranks functions by how much their share moved between
//! two profiles — "`parse_header` 4.1 % → 19.7 % of samples".

use std::collections::{BTreeMap, BTreeSet};

/// Folded stacks and their counts (samples, or sampled ns of CPU).
pub type Folded = BTreeMap<String, u64>;

/// Parses folded lines (`a;b;c 12`); lines without a count are left out.
pub fn parse(text: &str) -> Folded {
    let mut out = Folded::new();
    for line in text.lines() {
        if let Some((stack, n)) = line.trim_end().rsplit_once(' ')
            && let Ok(n) = n.parse::<u64>()
        {
            *out.entry(stack.to_string()).or_default() += n;
        }
    }
    out
}

/// Adds `more`'s counts into `into`.
pub fn merge(into: &mut Folded, more: &Folded) {
    for (stack, n) in more {
        *into.entry(stack.clone()).or_default() += n;
    }
}

/// Folded lines, sorted by stack (what `inferno-flamegraph` reads).
pub fn to_text(folded: &Folded) -> String {
    folded.iter().map(|(s, n)| format!("{s} {n}\n")).collect()
}

/// A function's (self, total) share of a profile's samples, in percent.
pub fn shares(folded: &Folded) -> BTreeMap<String, (f64, f64)> {
    let all: u64 = folded.values().sum();
    let mut counts: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (stack, &n) in folded {
        let frames: Vec<&str> = stack.split(';').collect();
        if let Some(leaf) = frames.last() {
            counts.entry(leaf.to_string()).or_default().0 += n;
        }
        for f in frames.iter().collect::<BTreeSet<_>>() {
            counts.entry(f.to_string()).or_default().1 += n;
        }
    }
    let pct = |n: u64| if all > 0 { n as f64 * 100.0 / all as f64 } else { 0.0 };
    counts.into_iter().map(|(f, (s, t))| (f, (pct(s), pct(t)))).collect()
}

/// One function's shares before and after, in percent.
#[derive(Debug, Clone, PartialEq)]
pub struct ShareChange {
    pub function: String,
    pub self_before: f64,
    pub self_after: f64,
    pub total_before: f64,
    pub total_after: f64,
}

impl ShareChange {
    /// The larger move of its self and total shares, in percentage points, with its sign
    /// (positive: a bigger share of the samples after).
    pub fn moved(&self) -> f64 {
        let (s, t) = (self.self_after - self.self_before, self.total_after - self.total_before);
        if s.abs() >= t.abs() { s } else { t }
    }
}

/// A share that grew by less than this many percentage points is sampling noise (a kernel
/// interrupt frame caught once more in a few hundred samples), not what got slower: it is
/// ranked with the others by how much it moved.
pub const GREW_MIN_POINTS: f64 = 1.0;

/// The `limit` functions whose share moved most from `before` to `after`: what grew by at
/// least [`GREW_MIN_POINTS`] first (what got slower), then by how much the others moved.
/// Frames every sample has (`main`, the process) have 100 % total on both sides: their self
/// share still counts.
pub fn biggest_changes(before: &Folded, after: &Folded, limit: usize) -> Vec<ShareChange> {
    let (b, a) = (shares(before), shares(after));
    let names: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    let mut rows: Vec<ShareChange> = names
        .into_iter()
        .map(|f| {
            let (sb, tb) = b.get(f).copied().unwrap_or_default();
            let (sa, ta) = a.get(f).copied().unwrap_or_default();
            ShareChange { function: f.clone(), self_before: sb, self_after: sa, total_before: tb, total_after: ta }
        })
        .collect();
    rows.sort_by(|x, y| {
        let grew = |r: &ShareChange| r.moved() >= GREW_MIN_POINTS;
        grew(y).cmp(&grew(x)).then_with(|| y.moved().abs().total_cmp(&x.moved().abs())).then_with(|| x.function.cmp(&y.function))
    });
    rows.truncate(limit);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_count_leaves_as_self_and_stacks_once_as_total() {
        let f = parse("main;parse;parse;lex 30\nmain;parse 10\nmain;emit 60\nbroken line\n");
        let s = shares(&f);
        assert_eq!(s["lex"], (30.0, 30.0));
        assert_eq!(s["parse"], (10.0, 40.0), "recursion counts a stack once");
        assert_eq!(s["main"], (0.0, 100.0));
        assert_eq!(to_text(&f), "main;emit 60\nmain;parse 10\nmain;parse;parse;lex 30\n");
    }

    #[test]
    fn the_function_that_grew_comes_first() {
        // `hash` three times slower: 20 of 100 samples become 60 of 140.
        let before = parse("main;hash 20\nmain;copy 80\n");
        let after = parse("main;hash 60\nmain;copy 80\n");
        let rows = biggest_changes(&before, &after, 2);
        assert_eq!(rows[0].function, "hash");
        assert!((rows[0].self_before - 20.0).abs() < 1e-9 && (rows[0].self_after - 60.0 / 1.4).abs() < 1e-9, "{rows:?}");
        assert_eq!(rows[1].function, "copy");
        // A frame that grew by half a point (one more interrupt sample) is noise: ranked
        // after copy, which lost 20 points.
        let noisy = parse("main;hash 20\nmain;copy 80\nmain;irq 0\n");
        let rows = biggest_changes(&noisy, &parse("main;hash 60\nmain;copy 80\nmain;irq 1\n"), 3);
        assert_eq!(rows.iter().map(|r| r.function.as_str()).collect::<Vec<_>>(), ["hash", "copy", "irq"], "{rows:?}");
    }
}
