//! A kwctl-like runner for this policy, for machines without kwctl:
//!
//! modelcar-prefetch-run [--settings-json JSON | -s settings.yaml]
//!     [--replay-host-capabilities-interactions session.yml] [--explain] [--trace]
//!     -r request.json [policy.wasm]
//! (`--trace` prints the policy's host calls and log lines on stderr)
//! modelcar-prefetch-run --explain-kwctl-output < kwctl-run-output.json

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use modelcar_prefetch_host::{HostTable, Policy, read_json, report, session};
use serde_json::{Value, json};

const USAGE: &str = "usage: modelcar-prefetch-run [--settings-json JSON | -s SETTINGS_FILE] \
[--replay-host-capabilities-interactions SESSION_FILE] [--explain] [--trace] -r REQUEST_FILE [POLICY_WASM]
       modelcar-prefetch-run --explain-kwctl-output < kwctl-output.json";

#[derive(Default)]
struct Args {
    settings_json: Option<String>,
    settings_path: Option<PathBuf>,
    session: Option<PathBuf>,
    request: Option<PathBuf>,
    module: Option<PathBuf>,
    explain: bool,
    explain_kwctl_output: bool,
    trace: bool,
}

fn main() -> ExitCode {
    match parse_args(std::env::args().skip(1)).and_then(run) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args::default();
    while let Some(arg) = argv.next() {
        let mut value = |name: &str| {
            argv.next()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--settings-json" => args.settings_json = Some(value(&arg)?),
            "-s" | "--settings-path" => args.settings_path = Some(value(&arg)?.into()),
            "--replay-host-capabilities-interactions" => args.session = Some(value(&arg)?.into()),
            "-r" | "--request-path" => args.request = Some(value(&arg)?.into()),
            "--explain" => args.explain = true,
            "--explain-kwctl-output" => args.explain_kwctl_output = true,
            "--trace" => args.trace = true,
            // kwctl needs it for context-aware policies; here every capability is allowed
            // that the session answers.
            "--allow-context-aware" => {}
            "-h" | "--help" => return Err(USAGE.to_owned()),
            flag if flag.starts_with('-') => return Err(format!("unknown flag {flag}\n{USAGE}")),
            _ if args.module.is_none() => args.module = Some(arg.into()),
            _ => return Err(format!("unexpected argument {arg}\n{USAGE}")),
        }
    }
    if args.settings_json.is_some() && args.settings_path.is_some() {
        return Err("give --settings-json or --settings-path, not both".to_owned());
    }
    Ok(args)
}

fn run(args: Args) -> Result<ExitCode, String> {
    if args.explain_kwctl_output {
        let mut input = String::new();
        std::io::stdin()
            .read_to_string(&mut input)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
        let response: Value = serde_json::from_str(input.trim())
            .map_err(|e| format!("kwctl output is not one JSON object: {e}"))?;
        emit(&report::explain_kwctl_response(&response)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let request_path = args
        .request
        .ok_or_else(|| format!("-r is required\n{USAGE}"))?;
    let request = admission_request(read_json(&request_path).map_err(|e| e.to_string())?);
    let settings = match (&args.settings_json, &args.settings_path) {
        (Some(text), _) => {
            serde_json::from_str(text).map_err(|e| format!("--settings-json is not JSON: {e}"))?
        }
        (None, Some(path)) => read_settings_file(path)?,
        (None, None) => json!({}),
    };
    let host = match &args.session {
        Some(path) => session::load_host_table(path).map_err(|e| e.to_string())?,
        None => HostTable::new(),
    };
    let policy = match &args.module {
        Some(path) => Policy::load(path, host),
        None => Policy::with_host(host),
    }
    .map_err(|e| e.to_string())?;

    let verdict = policy
        .validate_settings(&settings)
        .map_err(|e| e.to_string())?;
    if !verdict.valid {
        return Err(format!(
            "Provided settings are not valid: {}",
            verdict.message.unwrap_or_default()
        ));
    }
    let evaluation = policy.validate(&request, &settings);
    if args.trace {
        for call in policy.host_calls() {
            eprintln!(
                "host call {}/{}/{}: {}",
                call.binding, call.namespace, call.operation, call.payload
            );
        }
        for line in policy.logs() {
            eprintln!("policy log: {line}");
        }
    }
    let evaluation = evaluation.map_err(|e| e.to_string())?;
    if args.explain {
        emit(&report::explain_evaluation(&evaluation))?;
    } else {
        let uid = request.get("uid").and_then(Value::as_str).unwrap_or("");
        let response = report::kwctl_response(uid, &evaluation);
        let line = serde_json::to_string(&response).map_err(|e| e.to_string())?;
        emit(&format!("{line}\n"))?;
    }
    Ok(ExitCode::SUCCESS)
}

// A reader that stops early (`| head`) is no error worth a panic.
fn emit(text: &str) -> Result<(), String> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("cannot write to stdout: {e}"))
        }
        _ => Ok(()),
    }
}

/// kwctl accepts a bare AdmissionRequest or a whole AdmissionReview.
fn admission_request(document: Value) -> Value {
    match document.get("request") {
        Some(request) if request.is_object() => request.clone(),
        _ => document,
    }
}

// YAML is a superset of JSON, so one parser reads both kinds of settings file.
fn read_settings_file(path: &PathBuf) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text)
        .map_err(|e| format!("{} is not YAML or JSON: {e}", path.display()))?;
    let settings = serde_json::to_value(yaml).map_err(|e| e.to_string())?;
    Ok(if settings.is_null() {
        json!({})
    } else {
        settings
    })
}
