//! Reads criterion's results (`target/criterion/**/new/{benchmark,estimates}.json`) and checks
//! the verify path's targets as ratios of medians measured in the same run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

/// Median time per iteration in nanoseconds, by criterion's full id (`group/function/value`).
pub type Medians = BTreeMap<String, f64>;

/// Walks `criterion_dir` and collects every benchmark's median.
pub fn read_medians(criterion_dir: &Path) -> Medians {
    let mut out = Medians::new();
    walk(criterion_dir, &mut out);
    out
}

fn walk(dir: &Path, out: &mut Medians) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") {
            if let Some((id, median)) = read_one(&path) {
                out.insert(id, median);
            }
        } else if path.file_name().is_none_or(|n| n != "report") {
            walk(&path, out);
        }
    }
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn read_one(new: &Path) -> Option<(String, f64)> {
    let bench = read_json(&new.join("benchmark.json"))?;
    let est = read_json(&new.join("estimates.json"))?;
    let id = bench.get("full_id")?.as_str()?.to_owned();
    let median = est.get("median")?.get("point_estimate")?.as_f64()?;
    Some((id, median))
}

/// Whether a target holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Met.
    Met,
    /// Missed.
    Missed,
    /// Not measured in this run.
    Missing,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Self::Met => "met",
            Self::Missed => "**missed**",
            Self::Missing => "not measured",
        }
    }
}

/// One checked target.
#[derive(Debug, Clone)]
pub struct Check {
    /// What is compared.
    pub what: String,
    /// The target, e.g. `≤ 1.3×`.
    pub target: String,
    /// The measured value, formatted.
    pub measured: String,
    /// The verdict.
    pub verdict: Verdict,
}

/// How a measured value is compared with its bound.
#[derive(Debug, Clone, Copy)]
enum Bound {
    AtMost(f64),
    AtLeast(f64),
}

impl Bound {
    fn holds(self, v: f64) -> bool {
        match self {
            Self::AtMost(b) => v <= b,
            Self::AtLeast(b) => v >= b,
        }
    }
}

struct Checker<'a> {
    m: &'a Medians,
    checks: Vec<Check>,
}

impl Checker<'_> {
    fn get(&self, id: &str) -> Option<f64> {
        self.m.get(id).copied()
    }

    fn push(&mut self, what: String, target: &str, bound: Bound, value: Option<f64>, unit: &str) {
        let (measured, verdict) = match value {
            Some(v) if unit == "x" => (
                format!("{v:.2}×"),
                if bound.holds(v) {
                    Verdict::Met
                } else {
                    Verdict::Missed
                },
            ),
            Some(v) => (
                format!("{v:.1} {unit}"),
                if bound.holds(v) {
                    Verdict::Met
                } else {
                    Verdict::Missed
                },
            ),
            None => ("–".to_owned(), Verdict::Missing),
        };
        self.checks.push(Check {
            what,
            target: target.to_owned(),
            measured,
            verdict,
        });
    }

    fn ratio(&self, num: &str, den: &str) -> Option<f64> {
        Some(self.get(num)? / self.get(den)?)
    }
}

/// The sizes present in the results (from `verify/floor/<n>`).
pub fn sizes(m: &Medians) -> Vec<u64> {
    let mut v: Vec<u64> = m
        .keys()
        .filter_map(|k| k.strip_prefix("verify/floor/")?.parse().ok())
        .collect();
    v.sort_unstable();
    v
}

/// Checks every target at every size. `memory_per_credential` is the hot index's resident bytes
/// per credential (from the memory probe), if it was measured.
pub fn check(m: &Medians, memory_per_credential: Option<f64>) -> Vec<Check> {
    let mut c = Checker {
        m,
        checks: Vec::new(),
    };
    for n in sizes(m) {
        let v = |name: &str| format!("verify/{name}/{n}");
        c.push(
            format!("n={n}: verify hit, memory ÷ floor"),
            "≤ 1.3×",
            Bound::AtMost(1.3),
            c.ratio(&v("memory_hit"), &v("floor")),
            "x",
        );
        c.push(
            format!("n={n}: verify_with hit (borrowed answer), memory ÷ floor"),
            "≤ 1.3×",
            Bound::AtMost(1.3),
            c.ratio(&v("memory_hit_with"), &v("floor")),
            "x",
        );
        c.push(
            format!("n={n}: verify hit, sled ÷ memory"),
            "≤ 1.1×",
            Bound::AtMost(1.1),
            c.ratio(&v("sled_hit"), &v("memory_hit")),
            "x",
        );
        for backend in ["memory", "sled"] {
            for base in ["peer", "naive"] {
                c.push(
                    format!("n={n}: {base} ÷ verify hit ({backend}) (speed-up)"),
                    "≥ 2×",
                    Bound::AtLeast(2.0),
                    c.ratio(&v(base), &v(&format!("{backend}_hit"))),
                    "x",
                );
            }
        }
        for backend in ["memory", "sled"] {
            for case in ["bad_checksum", "malformed"] {
                c.push(
                    format!("n={n}: {case} rejected ({backend})"),
                    "≤ 50 ns",
                    Bound::AtMost(50.0),
                    c.get(&v(&format!("{backend}_{case}"))),
                    "ns",
                );
            }
            c.push(
                format!("n={n}: well-formed unknown ({backend}) ÷ floor"),
                "≤ 1.5×",
                Bound::AtMost(1.5),
                c.ratio(&v(&format!("{backend}_unknown")), &v("floor")),
                "x",
            );
            for (form, label) in [("", ""), ("with_", ", verify_with")] {
                let t1 = c.get(&format!("threads/{backend}_{form}1t/{n}"));
                let t2 = c.get(&format!("threads/{backend}_{form}2t/{n}"));
                c.push(
                    format!("n={n}: 2-thread ÷ 1-thread throughput ({backend}{label})"),
                    "≥ 1.8×",
                    Bound::AtLeast(1.8),
                    t1.zip(t2).map(|(a, b)| 2.0 * a / b),
                    "x",
                );
            }
        }
    }
    // sled's flush is not durable on Linux (see docs/storage.md); the second ratio compares
    // with the same flush plus the `fdatasync` the store adds, like for like.
    for (bare, label) in [
        ("write/sled_bare_insert_flush", "bare sled insert + flush"),
        (
            "write/sled_bare_insert_flush_fdatasync",
            "bare sled insert + flush + fdatasync (like for like)",
        ),
    ] {
        c.push(
            format!("durable issue (sled) ÷ {label}"),
            "≤ 1.2×",
            Bound::AtMost(1.2),
            c.ratio("write/sled_issue", bare),
            "x",
        );
    }
    c.push(
        "hot-index memory per credential (1M, 3 permissions, no metadata)".into(),
        "≤ 256 B",
        Bound::AtMost(256.0),
        memory_per_credential,
        "B",
    );
    c.checks
}

/// Formats nanoseconds for people.
pub fn human_ns(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

/// The medians and the checks as Markdown.
pub fn markdown(m: &Medians, checks: &[Check]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "| target | bound | measured | verdict |");
    let _ = writeln!(s, "|---|---|---|---|");
    for c in checks {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            c.what,
            c.target,
            c.measured,
            c.verdict.as_str()
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "| benchmark | median |");
    let _ = writeln!(s, "|---|---:|");
    for (id, ns) in m {
        let _ = writeln!(s, "| `{id}` | {} |", human_ns(*ns));
    }
    s
}
