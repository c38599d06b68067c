//! The binary's configuration errors: each names the file, the receiver or route and the key,
//! exits non-zero before connecting anywhere, and never shows a secret.

mod common;

use std::process::Command;

use common::write;

fn check(config: &std::path::Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sdash-notify"))
        .arg("--check-config")
        .arg("--config")
        .arg(config)
        .output()
        .unwrap_or_else(|e| panic!("cannot run sdash-notify: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn configuration_errors_are_clear_and_keep_secrets() {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = write(dir.path(), "hook.secret", "TOP-SECRET-SIGNING-KEY\n");
    let receiver = format!(
        "[[receiver]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"https://hooks.example.com/sdash\"\nsecret_file = \"{}\"\n",
        secret.display()
    );
    let good = write(
        dir.path(),
        "good.toml",
        &format!("{receiver}\n[[route]]\nreceivers = [\"hook\"]\nseverities = [\"critical\"]\n"),
    );
    let (ok, text) = check(&good);
    assert!(ok, "{text}");
    assert!(text.contains("1 receiver(s), 1 route(s): OK"), "{text}");

    let missing_ca = dir.path().join("no-such-ca.pem");
    for (name, body, expected) in [
        (
            "typo.toml",
            format!("{receiver}\n[[route]]\nreceiver = [\"hook\"]\n"),
            vec!["typo.toml", "unknown field `receiver`", "line"],
        ),
        (
            "undefined.toml",
            format!("{receiver}\n[[route]]\nreceivers = [\"pager\"]\n"),
            vec!["undefined.toml", "route 1", "receiver \"pager\" is not defined"],
        ),
        (
            "duration.toml",
            format!("group_window = \"soon\"\n{receiver}\n[[route]]\nreceivers = [\"hook\"]\n"),
            vec!["group_window", "\"soon\" is not a duration"],
        ),
        (
            "secret.toml",
            "[[receiver]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"https://h/x\"\nsecret_file = \"/nonexistent/hook.secret\"\n[[route]]\nreceivers = [\"hook\"]\n".to_owned(),
            vec!["receiver \"hook\"", "cannot read secret_file /nonexistent/hook.secret"],
        ),
        (
            "ca.toml",
            format!(
                "{receiver}ca_file = \"{}\"\n[[route]]\nreceivers = [\"hook\"]\n",
                missing_ca.display()
            ),
            vec!["receiver \"hook\"", "ca_file", "no-such-ca.pem"],
        ),
        (
            "email.toml",
            "[[receiver]]\nname = \"mail\"\ntype = \"email\"\nsmtp_host = \"smtp.example.com\"\nfrom = \"not an address\"\nto = [\"ops@example.com\"]\n[[route]]\nreceivers = [\"mail\"]\n".to_owned(),
            vec!["receiver \"mail\" (email)", "from \"not an address\" is not an email address"],
        ),
    ] {
        let path = write(dir.path(), name, &body);
        let (ok, text) = check(&path);
        assert!(!ok, "{name} was accepted: {text}");
        for e in expected {
            assert!(text.contains(e), "{name}: expected {e:?} in:\n{text}");
        }
        assert!(!text.contains("TOP-SECRET"), "{name} shows the secret:\n{text}");
    }
    let (ok, text) = check(&dir.path().join("absent.toml"));
    assert!(
        !ok && text.contains("cannot read the notifier configuration"),
        "{text}"
    );
}
