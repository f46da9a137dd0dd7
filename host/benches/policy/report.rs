//! One table per instrument: each case's time per module, the policy's ratio to its floor
//! and the verdict against the case's target.

use std::time::Duration;

use crate::Module;
use crate::cases::{Case, Kind, Target};

/// Policy-server's default evaluation timeout.
pub const BUDGET: Duration = Duration::from_secs(2);

/// Where each module sits in `modules` and in each row of times; variants follow.
const POLICY: usize = 0;
const PARSE: usize = 1;
const MUTATION: usize = 2;
const HOST: usize = 3;
const VARIANTS: usize = 4;

/// Prints the table; returns the cases whose target was missed.
pub fn table(
    title: &str,
    cases: &[&Case],
    modules: &[Module],
    times: &[Vec<Duration>],
) -> Vec<String> {
    println!("\n{title}");
    let mut header = format!(
        "{:<36} {:>9} {:>10} {:>10} {:>11} {:>11} {:>7}",
        "case", "payload", "policy", "host", "parse flr", "mutate flr", "ratio"
    );
    for m in &modules[VARIANTS..] {
        header.push_str(&format!(" {:>17}", m.name));
    }
    println!("{header}  target");
    let mut missed = Vec::new();
    for (case, times) in cases.iter().zip(times) {
        let floor = match case.kind {
            Kind::NoOp => times[PARSE],
            Kind::Mutating => times[MUTATION],
        };
        let ratio = |t: Duration| t.as_secs_f64() / floor.as_secs_f64();
        // Under kwctl the `auto` cases have no floor figure (see kwctl.rs).
        let shown = |t: Duration| match floor.is_zero() {
            true => "—".to_owned(),
            false => format!("{:.2}x", ratio(t)),
        };
        let mut line = format!(
            "{:<36} {:>9} {:>10} {:>10} {:>11} {:>11} {:>7}",
            case.name,
            size(case.payload_len()),
            time(times[POLICY]),
            time(times[HOST]),
            time(times[PARSE]),
            time(times[MUTATION]),
            shown(times[POLICY])
        );
        for t in &times[VARIANTS..] {
            line.push_str(&format!(" {:>9} {:>7}", time(*t), shown(*t)));
        }
        if floor.is_zero() {
            // kwctl's `auto` figure is mostly kwctl reading the Node list: the 100 ms
            // target is the module's evaluation, which the waPC host's table shows.
            println!("{line}  kwctl's handling of the list; no target");
            continue;
        }
        let (met, target) = match case.target() {
            Target::Ratio(max) => (
                ratio(times[POLICY]) <= max,
                format!(
                    "<= {max}x {} floor",
                    if case.kind == Kind::NoOp {
                        "parse"
                    } else {
                        "mutation"
                    }
                ),
            ),
            Target::Within(max) => (times[POLICY] <= max, format!("<= {}", time(max))),
        };
        println!("{line}  {target}: {}", if met { "ok" } else { "MISSED" });
        if !met {
            missed.push(case.name.clone());
        }
    }
    let limits: Vec<_> = cases.iter().zip(times).filter(|(c, _)| c.limit).collect();
    if !limits.is_empty() {
        println!(
            "limits against policy-server's {} s budget:",
            BUDGET.as_secs()
        );
        for (case, t) in limits {
            println!(
                "  {:<34} {:>10}  {:.2}% of the budget",
                case.name,
                time(t[POLICY]),
                100.0 * t[POLICY].as_secs_f64() / BUDGET.as_secs_f64()
            );
        }
    }
    missed
}

pub fn time(d: Duration) -> String {
    if d.is_zero() {
        return "—".to_owned();
    }
    let us = d.as_secs_f64() * 1e6;
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.1} µs")
    }
}

pub fn size(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{:.2} MB", bytes as f64 / (1 << 20) as f64)
    } else {
        format!("{:.1} KB", bytes as f64 / 1024.0)
    }
}

pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    format!("{cores} cores, {model}")
}
