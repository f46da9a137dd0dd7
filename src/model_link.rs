//! Where a modelcar publishes its model, read from its own shell command.
//!
//! KServe's modelcars run `sh -c "ln -s[f] /proc/$$$$/root/models <path> &&
//! sleep infinity"` (v0.20 may prefix `mkdir -p <dir> &&` and quote paths).
//! `<path>` is what the model server reads, so a native sidecar is "started"
//! once that link exists.

use crate::json_text::{self, Fields};

/// The link path, when the command creates exactly the usual link.
pub fn link_path(container: &Fields) -> Option<String> {
    link(container).map(|l| l.path)
}

/// The modelcar's shell, which runs the command that makes the link, and the link.
#[derive(Debug, PartialEq)]
pub struct Link {
    pub shell: String,
    pub path: String,
}

/// The shell and the link path, when the command creates exactly the usual link.
pub fn link(container: &Fields) -> Option<Link> {
    let mut words: Vec<String> = Vec::new();
    for key in ["command", "args"] {
        // A field that is not a list is not a command line; a list with
        // anything but strings in it is one this reader cannot follow.
        let Some(items) = container.raw(key).and_then(|l| json_text::items(l).ok()) else {
            continue;
        };
        for item in items {
            words.push(json_text::parse(item).ok()?);
        }
    }
    let script = words
        .iter()
        .position(|w| *w == "-c")
        .and_then(|i| words.get(i + 1))?;
    let path = split_commands(script)?
        .iter()
        .find_map(|command| ln_target(command))?;
    Some(Link {
        shell: words.first()?.clone(),
        path,
    })
}

/// How long a hook waits for the link at most: as long as the startup probe.
pub const MAX_WAIT_SECONDS: u32 = 120;

/// A postStart hook (a `lifecycle.postStart` value, as JSON text) that returns
/// once `link.path` exists and resolves, or after `MAX_WAIT_SECONDS`. It always
/// succeeds: a failed hook makes the kubelet kill the container. It polls every
/// 0.1 s, or every second where `sleep` takes whole seconds only.
pub fn wait_hook(link: &Link) -> String {
    let ticks = MAX_WAIT_SECONDS * 10;
    let script = format!(
        "i=0; until [ -e {} ] || [ $i -ge {ticks} ]; do \
         sleep 0.1 2>/dev/null && i=$((i+1)) || {{ sleep 1; i=$((i+10)); }}; done",
        single_quoted(&link.path)
    );
    let command = [link.shell.as_str(), "-c", &script].map(json_text::quoted);
    format!(r#"{{"exec":{{"command":[{}]}}}}"#, command.join(","))
}

/// A startup probe that passes once `path` exists and resolves, as JSON text.
pub fn startup_probe(path: &str) -> String {
    let test = json_text::quoted(&format!("test -e {}", single_quoted(path)));
    format!(
        r#"{{"exec":{{"command":["sh","-c",{test}]}},"periodSeconds":1,"failureThreshold":120}}"#
    )
}

fn ln_target(words: &[String]) -> Option<String> {
    let (program, rest) = words.split_first()?;
    if program != "ln" {
        return None;
    }
    let operands: Vec<&String> = rest.iter().filter(|w| !w.starts_with('-')).collect();
    match operands.as_slice() {
        [source, link]
            if source.starts_with("/proc/")
                && source.ends_with("/root/models")
                && link.starts_with('/')
                && !link.contains(['$', '`', '*', '?', '[']) =>
        {
            Some(link.to_string())
        }
        _ => None,
    }
}

/// Splits a shell script into simple commands of unquoted words. `None` for
/// anything this small reader does not understand (unbalanced quotes).
fn split_commands(script: &str) -> Option<Vec<Vec<String>>> {
    let mut commands = vec![Vec::new()];
    let mut word: Option<String> = None;
    let mut chars = script.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => w.push(c),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => w.push(chars.next()?),
                        c => w.push(c),
                    }
                }
            }
            '\\' => word.get_or_insert_with(String::new).push(chars.next()?),
            '&' | '|' | ';' | '\n' => {
                commands.last_mut()?.extend(word.take());
                while chars.next_if(|n| matches!(n, '&' | '|')).is_some() {}
                commands.push(Vec::new());
            }
            c if c.is_whitespace() => commands.last_mut()?.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    commands.last_mut()?.extend(word);
    Some(commands)
}

fn single_quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::{Value, json};

    fn path(container: Value) -> Option<String> {
        link_path(&Fields::parse(&container.to_string()).unwrap())
    }

    fn probe(path: &str) -> Value {
        serde_json::from_str(&startup_probe(path)).unwrap()
    }

    #[rstest]
    #[case::kserve_v0_12(json!({"args": ["sh", "-c", "ln -s /proc/$$$$/root/models /mnt/models && sleep infinity"]}), Some("/mnt/models"))]
    #[case::kserve_ln_sf(json!({"args": ["sh", "-c", "ln -sf /proc/$$$$/root/models /mnt/models && sleep infinity"]}), Some("/mnt/models"))]
    #[case::kserve_v0_20_mkdir(
        json!({"args": ["sh", "-c", "mkdir -p /mnt/models && ln -sf /proc/$$$$/root/models /mnt/models/my-llama && sleep infinity"]}),
        Some("/mnt/models/my-llama")
    )]
    #[case::single_quoted(json!({"args": ["sh", "-c", "mkdir -p '/mnt/models-1' && ln -sf /proc/$$$$/root/models '/mnt/models-1/meta llama' && sleep infinity"]}), Some("/mnt/models-1/meta llama"))]
    #[case::double_quoted(json!({"args": ["sh", "-c", "ln -s -f /proc/$$$$/root/models \"/mnt/m\" && sleep infinity"]}), Some("/mnt/m"))]
    #[case::in_command(json!({"command": ["/bin/sh", "-c"], "args": ["ln -s /proc/$$$$/root/models /mnt/models; sleep infinity"]}), Some("/mnt/models"))]
    #[case::no_command(json!({}), None)]
    #[case::no_shell(json!({"args": ["serve"]}), None)]
    #[case::other_script(json!({"args": ["sh", "-c", "sleep infinity"]}), None)]
    #[case::link_from_elsewhere(json!({"args": ["sh", "-c", "ln -s /models /mnt/models && sleep infinity"]}), None)]
    #[case::relative_link(json!({"args": ["sh", "-c", "ln -s /proc/$$$$/root/models models && sleep infinity"]}), None)]
    #[case::variable_in_link(json!({"args": ["sh", "-c", "ln -s /proc/$$$$/root/models $DIR/models && sleep infinity"]}), None)]
    #[case::unbalanced_quote(json!({"args": ["sh", "-c", "ln -s /proc/$$$$/root/models '/mnt/models && sleep infinity"]}), None)]
    #[case::non_string_arg(json!({"args": ["sh", "-c", 5]}), None)]
    #[case::command_not_a_list(json!({"command": "sh", "args": ["sh", "-c", "ln -s /proc/$$$$/root/models /mnt/models"]}), Some("/mnt/models"))]
    fn derives_the_link_path(#[case] container: Value, #[case] expected: Option<&str>) {
        assert_eq!(path(container).as_deref(), expected);
    }

    #[test]
    fn probe_quotes_the_path() {
        assert_eq!(
            probe("/mnt/it's")["exec"]["command"],
            json!(["sh", "-c", r"test -e '/mnt/it'\''s'"])
        );
    }

    #[test]
    fn probe_is_a_valid_kubernetes_probe() {
        let p = probe("/mnt/models");
        let typed: k8s_openapi::api::core::v1::Probe = serde_json::from_value(p.clone()).unwrap();
        assert_eq!(serde_json::to_value(typed).unwrap(), p);
    }

    fn hook(path: &str) -> Value {
        let link = Link {
            shell: "sh".into(),
            path: path.into(),
        };
        serde_json::from_str(&wait_hook(&link)).unwrap()
    }

    #[test]
    fn the_hook_runs_the_modelcars_shell_and_quotes_the_path() {
        let container = json!({"command": ["/bin/sh", "-c"], "args": ["ln -s /proc/$$$$/root/models '/mnt/it''s' && sleep infinity"]});
        let found = link(&Fields::parse(&container.to_string()).unwrap()).unwrap();
        assert_eq!(found.shell, "/bin/sh");
        let command =
            &serde_json::from_str::<Value>(&wait_hook(&found)).unwrap()["exec"]["command"];
        assert_eq!(command[0], "/bin/sh");
        assert!(
            command[2].as_str().unwrap().contains("[ -e '/mnt/its' ]"),
            "{command}"
        );
        let typed: k8s_openapi::api::core::v1::LifecycleHandler =
            serde_json::from_value(hook("/mnt/models")).unwrap();
        assert!(typed.exec.is_some());
    }

    /// The hook run by a real shell: it returns once the link exists, and
    /// succeeds; it waits while the link is missing.
    #[test]
    fn the_hook_waits_for_the_link_and_succeeds() {
        let dir = std::env::temp_dir().join(format!("modelcar-hook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("models");
        let script = |path: &std::path::Path| {
            hook(path.to_str().unwrap())["exec"]["command"][2]
                .as_str()
                .unwrap()
                .to_string()
        };
        let run = |script: String| {
            std::process::Command::new("sh")
                .args(["-c", &script])
                .spawn()
                .unwrap()
        };
        let mut waiting = run(script(&path));
        std::thread::sleep(std::time::Duration::from_millis(400));
        assert!(
            waiting.try_wait().unwrap().is_none(),
            "returned before the link existed"
        );
        std::os::unix::fs::symlink(&dir, &path).unwrap();
        let started = std::time::Instant::now();
        let status = waiting.wait().unwrap();
        assert!(status.success());
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert!(run(script(&path)).wait().unwrap().success());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn probe_waits_two_minutes_at_most() {
        let p = probe("/mnt/models");
        assert_eq!(
            (&p["periodSeconds"], &p["failureThreshold"]),
            (&json!(1), &json!(120))
        );
    }
}
