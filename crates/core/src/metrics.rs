//! A small in-process Prometheus registry the domain crates record into (counters, gauges,
//! histograms with labels), rendered in the text exposition format by `/metrics`.
//!
//! Families are declared with their help text and kind before use, so `/metrics` lists every
//! name even before the first event; recording into an undeclared name is a programming error
//! that is ignored (never a panic on a request path); the
//! area's tests check its names appear.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Default histogram buckets, in seconds (Prometheus' defaults plus longer job durations).
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

#[derive(Default, Clone)]
struct Series {
    value: f64,
    buckets: [u64; BUCKETS.len()],
    count: u64,
}

struct Family {
    help: &'static str,
    kind: Kind,
    series: BTreeMap<Vec<(&'static str, String)>, Series>,
}

/// The registry. Cheap to share behind an `Arc`; every operation takes one short lock.
#[derive(Default)]
pub struct Registry {
    families: Mutex<BTreeMap<&'static str, Family>>,
}

type Labels<'a> = &'a [(&'static str, &'a str)];

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares a family; declaring it again keeps its series.
    pub fn declare(&self, name: &'static str, kind: Kind, help: &'static str) {
        self.lock().entry(name).or_insert_with(|| Family {
            help,
            kind,
            series: BTreeMap::new(),
        });
    }

    /// Adds `v` to a counter or gauge series.
    pub fn add(&self, name: &'static str, labels: Labels<'_>, v: f64) {
        self.with_series(name, labels, |s| s.value += v);
    }

    pub fn inc(&self, name: &'static str, labels: Labels<'_>) {
        self.add(name, labels, 1.0);
    }

    /// Sets a gauge series.
    pub fn set(&self, name: &'static str, labels: Labels<'_>, v: f64) {
        self.with_series(name, labels, |s| s.value = v);
    }

    /// Records one observation into a histogram series.
    pub fn observe(&self, name: &'static str, labels: Labels<'_>, v: f64) {
        self.with_series(name, labels, |s| {
            s.value += v;
            s.count += 1;
            for (i, b) in BUCKETS.iter().enumerate() {
                if v <= *b {
                    s.buckets[i] += 1;
                }
            }
        });
    }

    /// The current value of a counter or gauge series (tests and the CLI read it).
    pub fn value(&self, name: &str, labels: Labels<'_>) -> Option<f64> {
        let key = key(labels);
        self.lock().get(name)?.series.get(&key).map(|s| s.value)
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, f) in self.lock().iter() {
            let _ = writeln!(out, "# HELP {name} {}", f.help);
            let _ = writeln!(out, "# TYPE {name} {}", f.kind.as_str());
            for (labels, s) in &f.series {
                let l = render_labels(labels);
                if f.kind != Kind::Histogram {
                    let _ = writeln!(out, "{name}{} {}", braces(&l), s.value);
                    continue;
                }
                let sep = if l.is_empty() { "" } else { "," };
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(out, "{name}_bucket{{{l}{sep}le=\"{b}\"}} {}", s.buckets[i]);
                }
                let _ = writeln!(out, "{name}_bucket{{{l}{sep}le=\"+Inf\"}} {}", s.count);
                let _ = writeln!(out, "{name}_sum{} {}", braces(&l), s.value);
                let _ = writeln!(out, "{name}_count{} {}", braces(&l), s.count);
            }
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, Family>> {
        self.families.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_series(&self, name: &'static str, labels: Labels<'_>, f: impl FnOnce(&mut Series)) {
        let mut families = self.lock();
        let Some(family) = families.get_mut(name) else {
            return;
        };
        f(family.series.entry(key(labels)).or_default());
    }
}

fn key(labels: Labels<'_>) -> Vec<(&'static str, String)> {
    labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

fn render_labels(labels: &[(&'static str, String)]) -> String {
    labels
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn braces(l: &str) -> String {
    if l.is_empty() {
        String::new()
    } else {
        format!("{{{l}}}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_each_kind() {
        let r = Registry::new();
        r.declare("jobs_total", Kind::Counter, "Jobs.");
        r.declare("pending", Kind::Gauge, "Pending.");
        r.declare("took_seconds", Kind::Histogram, "Took.");
        r.declare("unused", Kind::Counter, "Never recorded.");
        r.inc("jobs_total", &[("result", "ok")]);
        r.inc("jobs_total", &[("result", "ok")]);
        r.inc("jobs_total", &[("result", "a\"b")]);
        r.set("pending", &[], 3.0);
        r.observe("took_seconds", &[("p", "echo")], 0.2);
        r.inc("undeclared", &[]);
        let text = r.render();
        assert!(text.contains("jobs_total{result=\"ok\"} 2\n"), "{text}");
        assert!(text.contains("jobs_total{result=\"a\\\"b\"} 1\n"), "{text}");
        assert!(text.contains("pending 3\n"), "{text}");
        assert!(text.contains("took_seconds_bucket{p=\"echo\",le=\"0.1\"} 0\n"));
        assert!(text.contains("took_seconds_bucket{p=\"echo\",le=\"0.25\"} 1\n"));
        assert!(text.contains("took_seconds_count{p=\"echo\"} 1\n"));
        assert!(text.contains("# TYPE unused counter\n"));
        assert!(!text.contains("undeclared"));
        assert_eq!(r.value("jobs_total", &[("result", "ok")]), Some(2.0));
    }
}
