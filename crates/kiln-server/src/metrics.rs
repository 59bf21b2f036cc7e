//! Prometheus metrics at `/metrics`: requests and their latency by route (a histogram), and the
//! registry's versions by status, builds and revocations read at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use kiln_registry::Registry;

/// Upper bounds of the latency buckets, in seconds.
const BOUNDS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

#[derive(Debug, Default)]
struct Series {
    /// Per status code.
    count: BTreeMap<u16, u64>,
    buckets: [u64; BOUNDS.len()],
    total: u64,
    sum: f64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    /// (method, route) → series.
    routes: Mutex<BTreeMap<(String, String), Series>>,
}

impl Metrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, took: Duration) {
        let secs = took.as_secs_f64();
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let s = routes
            .entry((method.to_string(), route.to_string()))
            .or_default();
        *s.count.entry(status).or_default() += 1;
        s.total += 1;
        s.sum += secs;
        for (i, b) in BOUNDS.iter().enumerate() {
            if secs <= *b {
                s.buckets[i] += 1;
            }
        }
    }

    /// The exposition text (format 0.0.4).
    pub fn render(&self, r: &mut Registry) -> String {
        let mut out = String::new();
        let routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        out.push_str("# HELP kiln_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE kiln_http_requests_total counter\n");
        for ((m, route), s) in routes.iter() {
            for (code, n) in &s.count {
                let _ = writeln!(
                    out,
                    "kiln_http_requests_total{{method=\"{m}\",route=\"{}\",status=\"{code}\"}} {n}",
                    escape(route)
                );
            }
        }
        out.push_str(
            "# HELP kiln_http_request_duration_seconds Time to answer, by route.\n# TYPE kiln_http_request_duration_seconds histogram\n",
        );
        for ((m, route), s) in routes.iter() {
            let labels = format!("method=\"{m}\",route=\"{}\"", escape(route));
            for (i, b) in BOUNDS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "kiln_http_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {}",
                    s.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "kiln_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.total
            );
            let _ = writeln!(
                out,
                "kiln_http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum
            );
            let _ = writeln!(
                out,
                "kiln_http_request_duration_seconds_count{{{labels}}} {}",
                s.total
            );
        }
        drop(routes);
        // Statuses come from the registry's own reading of each version (revocations folded
        // in), not from a second copy of that logic in SQL.
        let mut by_status: BTreeMap<(String, &'static str), u64> = BTreeMap::new();
        for bucket in r.buckets().unwrap_or_default() {
            for v in r.versions(&bucket).unwrap_or_default() {
                *by_status
                    .entry((bucket.clone(), v.status.as_str()))
                    .or_default() += 1;
            }
        }
        out.push_str("# HELP kiln_versions Versions in the registry by bucket and status.\n# TYPE kiln_versions gauge\n");
        for ((bucket, status), n) in &by_status {
            let _ = writeln!(
                out,
                "kiln_versions{{bucket=\"{}\",status=\"{status}\"}} {n}",
                escape(bucket)
            );
        }
        let stats = r.stats().unwrap_or_default();
        out.push_str("# HELP kiln_builds_total Versions started, by bucket.\n# TYPE kiln_builds_total counter\n");
        for (bucket, n) in &stats.builds {
            let _ = writeln!(
                out,
                "kiln_builds_total{{bucket=\"{}\"}} {n}",
                escape(bucket)
            );
        }
        out.push_str("# HELP kiln_revocations_total Revocations recorded (direct and inherited).\n# TYPE kiln_revocations_total counter\n");
        let _ = writeln!(out, "kiln_revocations_total {}", stats.revocations);
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
