//! The Prometheus text exposition format, version 0.0.4.
//!
//! Written by hand rather than with the `prometheus-client` crate: that
//! crate only speaks OpenMetrics, whose counters are declared without the
//! `_total` suffix their samples carry (`# TYPE x counter` / `x_total 1`);
//! `promtool check metrics` (Prometheus 2.42, Debian 12) reads the 0.0.4
//! text format and rejects that ("x_total no help text"). The crate has no
//! 0.0.4 encoder (prometheus/client_rust issue #51, open since 2022; the
//! pull request adding one, #293, is not merged). Here every family is
//! declared under its sample name, as the text format wants.
use std::fmt::Write as _;

/// A metric family type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Counter,
    Gauge,
    Histogram,
}

/// Exposition text being built. Each family is declared once, followed by
/// all its samples.
#[derive(Debug, Default)]
pub struct Text {
    out: String,
}

impl Text {
    pub fn new() -> Text {
        Text::default()
    }

    /// `# HELP` and `# TYPE` of family `name`.
    pub fn family(&mut self, name: &str, ty: Type, help: &str) {
        let ty = match ty {
            Type::Counter => "counter",
            Type::Gauge => "gauge",
            Type::Histogram => "histogram",
        };
        let _ = write!(self.out, "# HELP {name} ");
        for c in help.chars() {
            match c {
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                c => self.out.push(c),
            }
        }
        let _ = writeln!(self.out, "\n# TYPE {name} {ty}");
    }

    /// One sample line.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                for c in v.chars() {
                    match c {
                        '\\' => self.out.push_str("\\\\"),
                        '"' => self.out.push_str("\\\""),
                        '\n' => self.out.push_str("\\n"),
                        c => self.out.push(c),
                    }
                }
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        push_value(&mut self.out, value);
        self.out.push('\n');
    }

    /// A histogram's samples: cumulative `_bucket`s (with `le`), `_sum`,
    /// `_count`. `counts` are per bucket (not cumulative), one more than
    /// `bounds` (the last is +Inf).
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        bounds: &[f64],
        counts: &[u64],
        sum: f64,
    ) {
        let bucket = format!("{name}_bucket");
        let mut cum = 0u64;
        for (i, c) in counts.iter().enumerate() {
            cum += c;
            let le = match bounds.get(i) {
                Some(b) => {
                    let mut s = String::new();
                    push_value(&mut s, *b);
                    s
                }
                None => "+Inf".to_string(),
            };
            let mut with_le: Vec<(&str, &str)> = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, cum as f64);
        }
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, cum as f64);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn push_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_formats() {
        let mut t = Text::new();
        t.family("x_total", Type::Counter, "Help with \\ and\nnewline.");
        t.sample("x_total", &[("a", "q\"b\\c\nd")], 3.0);
        t.sample("x_total", &[], 0.25);
        t.family("h_seconds", Type::Histogram, "H.");
        t.histogram(
            "h_seconds",
            &[("role", "server")],
            &[0.1, 1.0],
            &[1, 2, 3],
            7.5,
        );
        let s = t.finish();
        assert_eq!(
            s,
            "# HELP x_total Help with \\\\ and\\nnewline.\n# TYPE x_total counter\n\
             x_total{a=\"q\\\"b\\\\c\\nd\"} 3\nx_total 0.25\n\
             # HELP h_seconds H.\n# TYPE h_seconds histogram\n\
             h_seconds_bucket{role=\"server\",le=\"0.1\"} 1\n\
             h_seconds_bucket{role=\"server\",le=\"1\"} 3\n\
             h_seconds_bucket{role=\"server\",le=\"+Inf\"} 6\n\
             h_seconds_sum{role=\"server\"} 7.5\nh_seconds_count{role=\"server\"} 6\n"
        );
    }
}
