//! The engine's instrument: `kwctl bench` (policy-evaluator, the library policy-server
//! runs) on the same cases and modules, one process per module and case, modules
//! interleaved round by round so that load on the machine hits them alike.
//!
//! Requests over 32 KB (the size limits) are left to the waPC host: `kwctl bench` runs at
//! least 5,000 evaluations whatever `--measurement-time` says, which takes minutes per
//! module for a 500 KB object.
//!
//! `auto` cases cannot go through `kwctl bench`: kwctl replays a recorded host exchange
//! once, and `kwctl bench` evaluates thousands of times. They are timed with `kwctl -v run`
//! instead: from the debug line policy-evaluator writes when the module calls the host to
//! the end of the process, which holds the answer's transfer, the module's read of the
//! Node list, the rest of the evaluation and kwctl printing the response.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cases::Case;
use crate::{Module, fail, target_dir, workspace_root};

pub struct Kwctl {
    binary: PathBuf,
    pub rounds: u16,
    dir: PathBuf,
}

impl Kwctl {
    /// `$KWCTL` or `kwctl` on PATH; `Err` says why the instrument does not run.
    pub fn find(rounds: u16) -> Result<Kwctl, String> {
        if rounds == 0 {
            return Err("BENCH_KWCTL_ROUNDS=0".into());
        }
        let binary = match std::env::var_os("KWCTL") {
            Some(path) => PathBuf::from(path),
            None => std::env::var_os("PATH")
                .and_then(|path| {
                    std::env::split_paths(&path)
                        .map(|dir| dir.join("kwctl"))
                        .find(|candidate| candidate.is_file())
                })
                .ok_or("kwctl is not on PATH (get it from Kubewarden's releases)")?,
        };
        let dir = target_dir().join("bench/kwctl");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Kwctl {
            binary,
            rounds,
            dir,
        })
    }

    pub fn version(&self) -> String {
        Command::new(&self.binary)
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| {
                let text = String::from_utf8_lossy(&o.stdout).into_owned();
                text.lines().next().map(|l| l.trim().to_owned())
            })
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "kwctl".to_owned())
    }

    /// Which cases this instrument measures: requests of a usual size, and `auto`.
    pub fn measures(case: &Case) -> bool {
        case.nodes.is_some() || case.request_len() <= 32 * 1024
    }

    /// The mean time per evaluation of every module on every case (`kwctl bench` for
    /// request cases, `kwctl -v run` for `auto` cases), averaged over the rounds.
    pub fn measure(&self, cases: &[&Case], modules: &[Module], seconds: u16) -> Vec<Vec<Duration>> {
        let annotated: Vec<PathBuf> = modules.iter().map(|m| self.annotate(m)).collect();
        let mut sums = vec![vec![Duration::ZERO; modules.len()]; cases.len()];
        let inputs: Vec<Inputs> = cases.iter().map(|c| self.inputs(c)).collect();
        for _ in 0..self.rounds {
            for (c, case) in cases.iter().enumerate() {
                for (m, module) in modules.iter().enumerate() {
                    let t = if case.nodes.is_some() {
                        if module.baseline {
                            // The floors call no host: nothing to compare with.
                            continue;
                        }
                        self.run_auto(case, &inputs[c], module, &annotated[m])
                    } else {
                        self.bench(case, &inputs[c], module, &annotated[m], seconds)
                    };
                    sums[c][m] += t;
                }
            }
        }
        sums.into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|t| t / u32::from(self.rounds))
                    .collect()
            })
            .collect()
    }

    /// kwctl grants context-aware resources from the module's metadata only.
    fn annotate(&self, module: &Module) -> PathBuf {
        if module.baseline {
            return module.path.clone();
        }
        let out = self.dir.join(format!("{}.annotated.wasm", module.name));
        let root = workspace_root();
        self.run_ok(
            Command::new(&self.binary)
                .arg("annotate")
                .arg("-m")
                .arg(root.join("metadata.yml"))
                .arg("-u")
                .arg(root.join("README.md"))
                .arg("-o")
                .arg(&out)
                .arg(&module.path),
        );
        out
    }

    fn inputs(&self, case: &Case) -> Inputs {
        let slug = case.slug();
        let request = self.dir.join(format!("{slug}.request.json"));
        write(&request, &serde_json::to_vec(&case.request).expect("JSON"));
        let session = case.nodes.as_ref().map(|nodes| {
            let path = self.dir.join(format!("{slug}.session.yml"));
            write(&path, session(nodes).as_bytes());
            path
        });
        Inputs { request, session }
    }

    fn command(&self, verb: &str, case: &Case, inputs: &Inputs, module: &Module) -> Command {
        let mut command = Command::new(&self.binary);
        command.arg(verb).arg("--request-path").arg(&inputs.request);
        let settings = case.settings(module.baseline).to_string();
        command.arg("--settings-json").arg(settings);
        if let Some(trust) = std::env::var_os("KWCTL_SIGSTORE_TRUST_CONFIG") {
            command.arg("--sigstore-trust-config").arg(trust);
        }
        command
    }

    fn bench(
        &self,
        case: &Case,
        inputs: &Inputs,
        module: &Module,
        wasm: &Path,
        seconds: u16,
    ) -> Duration {
        let mut command = self.command("bench", case, inputs, module);
        command
            .args(["--warm-up-time", "1", "--measurement-time"])
            .arg(seconds.to_string())
            .arg(wasm);
        let output = self.run_ok(&mut command);
        parse_validate_mean(&strip_ansi(&output)).unwrap_or_else(|| {
            fail(&format!(
                "kwctl bench printed no mean for validate ({} on {:?}):\n{}",
                module.name, case.name, output
            ))
        })
    }

    /// From the module's host call to the end of `kwctl -v run`.
    fn run_auto(&self, case: &Case, inputs: &Inputs, module: &Module, wasm: &Path) -> Duration {
        let mut command = Command::new(&self.binary);
        command.arg("-v");
        let sub = self.command("run", case, inputs, module);
        command.args(sub.get_args());
        if let Some(session) = &inputs.session {
            command
                .arg("--allow-context-aware")
                .arg("--replay-host-capabilities-interactions")
                .arg(session);
        }
        command
            .arg(wasm)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| fail(&format!("cannot start kwctl: {e}")));
        let mut called = None;
        let mut log = String::new();
        if let Some(stderr) = child.stderr.take() {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if called.is_none() && line.contains("invoking host_callback") {
                    called = Some(Instant::now());
                }
                if log.len() < 4000 {
                    log.push_str(&line);
                    log.push('\n');
                }
            }
        }
        let status = child
            .wait()
            .unwrap_or_else(|e| fail(&format!("kwctl: {e}")));
        let end = Instant::now();
        if !status.success() || log.contains("ERROR") || log.contains("WARN") {
            fail(&format!(
                "kwctl run of {} on {:?} failed:\n{log}",
                module.name, case.name
            ));
        }
        match called {
            Some(called) => end - called,
            None => fail(&format!(
                "kwctl run of {} on {:?} showed no host call:\n{log}",
                module.name, case.name
            )),
        }
    }

    fn run_ok(&self, command: &mut Command) -> String {
        let output = command
            .output()
            .unwrap_or_else(|e| fail(&format!("cannot start {}: {e}", self.binary.display())));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if !output.status.success() {
            fail(&format!("{command:?} failed:\n{text}"));
        }
        text
    }
}

struct Inputs {
    request: PathBuf,
    session: Option<PathBuf>,
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
}

/// A replay session answering the module's Node list call once. YAML's double-quoted
/// scalars take JSON string escapes, so the list goes in as a JSON string.
fn session(nodes: &[u8]) -> String {
    let payload = serde_json::to_string(&String::from_utf8_lossy(nodes)).expect("JSON");
    format!(
        "- type: Exchange\n  request: |\n    !KubernetesListResourceAll\n    api_version: v1\n    \
         kind: Node\n    label_selector: null\n    field_selector: null\n    field_masks:\n    \
         - metadata.name\n    - status.nodeInfo.kubeletVersion\n  response:\n    type: Success\n    \
         payload: {payload}\n"
    )
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The `mean` of `validate [...]:` then `elapsed [min mean max]: [a b c]`.
fn parse_validate_mean(output: &str) -> Option<Duration> {
    let mut lines = output.lines();
    lines.find(|l| l.starts_with("validate ["))?;
    let elapsed = lines.next()?;
    let values = elapsed.rsplit_once("]:")?.1;
    let inside = values.split_once('[')?.1.split_once(']')?.0;
    let mean = inside.split_whitespace().nth(1)?;
    parse_duration(mean)
}

fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let seconds = match unit {
        "ns" => value * 1e-9,
        "µs" | "us" => value * 1e-6,
        "ms" => value * 1e-3,
        "s" => value,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}
