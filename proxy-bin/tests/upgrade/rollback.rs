//! Failed successors rolled back: a successor that exits, hangs or rejects its config is killed
//! and reaped, a second trigger meanwhile is refused, and the old process keeps serving until a
//! successor that works takes over.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use sluice_tests::STEP_TIMEOUT;
use sluice_tests::process::{
    Generations, Running, http_get, temp_path, wait_for_pid_file, write_config,
};

use crate::load::{ConnectLoop, one_request};
use crate::{
    QUIET, SLUICE, echo_backend, lifecycle_block, listener_block, read_pid, terminate, upgrade,
    wait_reaped,
};

/// Replaces the executable at `path` with a shell script (atomically, so it is never seen
/// half written).
fn write_script(path: &Path, body: &str) {
    let aside = path.with_extension("tmp");
    std::fs::write(&aside, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&aside, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&aside, path).unwrap();
}

/// The successor's PID from a failure reason: "successor (pid N) ...".
fn successor_pid(reason: &str) -> u32 {
    let start = reason.find("(pid ").unwrap() + 5;
    let end = start + reason[start..].find(')').unwrap();
    reason[start..end].parse().unwrap()
}

fn status_field(pid_file: &Path, key: &str) -> Option<String> {
    let mut name = pid_file.as_os_str().to_owned();
    name.push(".status");
    let text = std::fs::read_to_string(PathBuf::from(name)).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .map(str::to_owned)
}

/// A successor that speaks the hand-off up to `go` and then exits 3, as one that crashes while
/// taking over would.
const DIES_AFTER_GO: &str = r#"
import os, socket, struct, sys
link = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
link.connect(os.environ["SLUICE_UPGRADE_SOCKET"])
message, fds, _, _ = socket.recv_fds(link, 65536, 253)
(length,) = struct.unpack(">I", message[:4])
got = len(message) - 4
for _ in range(1000):
    if got >= length:
        break
    got += len(link.recv(65536))
link.sendall(b"ready\n")
said = b""
for _ in range(64):
    chunk = link.recv(64)
    said += chunk
    if not chunk or said.endswith(b"\n"):
        break
sys.exit(3 if said.startswith(b"go\n") else 5)
"#;

#[test]
fn failed_successors_are_killed_and_reaped_while_the_old_process_keeps_serving() {
    let backend = echo_backend();
    let config_text = format!(
        "{}{}",
        listener_block("plain", backend),
        lifecycle_block("2s", "1s")
    );
    let config = write_config("failing.toml", &config_text);
    let pid_file = temp_path("failing.pid");
    let binary = temp_path("failing-successor");
    let _ = std::fs::remove_file(&pid_file);
    write_script(&binary, "exit 1");
    let mut command = Command::new(SLUICE);
    command
        .args(["run", "--log-format", "json", "--config"])
        .arg(&config)
        .arg("--pid-file")
        .arg(&pid_file)
        .arg("--upgrade-binary")
        .arg(&binary)
        .env("RUST_LOG", QUIET)
        .stdin(std::process::Stdio::null());
    let sluice = Running::spawn(command);
    let mut generations = Generations::new(sluice.pid(), &pid_file);
    let addr = sluice.listening_addr();
    let admin = sluice.admin_addr();
    assert_eq!(wait_for_pid_file(&pid_file), sluice.pid());
    let connects = ConnectLoop::start(addr, 500);
    let failed = |output: &Output| -> String {
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(
            read_pid(&pid_file),
            sluice.pid(),
            "the PID file still names the old process"
        );
        assert_eq!(http_get(admin, "/readyz"), (200, "ready\n".to_owned()));
        stderr
    };

    // 1. The new binary exits 1 at once.
    let stderr = failed(&upgrade(&pid_file, false));
    assert!(
        stderr.contains("upgrade failed: successor (pid"),
        "{stderr}"
    );
    assert!(
        stderr.contains("exited before it was ready (exit status: 1)"),
        "{stderr}"
    );
    wait_reaped(successor_pid(&stderr));
    let logged = sluice.wait_for("upgrade failed; still serving");
    assert!(
        logged["reason.detail"]
            .as_str()
            .unwrap()
            .contains("exit status: 1"),
        "{logged}"
    );

    // 2. The new binary hangs before it is ready; a second trigger meanwhile is refused.
    write_script(&binary, "sleep 30");
    let hanging = {
        let pid_file = pid_file.clone();
        thread::spawn(move || upgrade(&pid_file, false))
    };
    let deadline = Instant::now() + STEP_TIMEOUT;
    while status_field(&pid_file, "outcome").as_deref() != Some("started") {
        assert!(Instant::now() < deadline, "the upgrade never started");
        thread::sleep(Duration::from_millis(10));
    }
    let stderr = failed(&upgrade(&pid_file, true));
    assert!(stderr.contains("reload refused: upgrade"), "{stderr}");
    assert!(stderr.contains("still in progress"), "{stderr}");
    sluice.wait_for("upgrade refused");
    let stderr = failed(&hanging.join().unwrap());
    assert!(
        stderr.contains("was not ready within upgrade_timeout (1s)"),
        "{stderr}"
    );
    wait_reaped(successor_pid(&stderr));

    // 3. A real successor with an invalid config reports why, and is reaped.
    write_script(&binary, &format!("exec {SLUICE} \"$@\""));
    std::fs::write(
        &config,
        config_text.replace("drain_timeout = \"2s\"", "drain_timeout = \"soon\""),
    )
    .unwrap();
    let stderr = failed(&upgrade(&pid_file, true));
    assert!(stderr.contains("reload failed: successor (pid"), "{stderr}");
    assert!(stderr.contains("shutdown.drain_timeout"), "{stderr}");
    assert!(stderr.contains("invalid duration \"soon\""), "{stderr}");
    wait_reaped(successor_pid(&stderr));

    // 4. A successor that takes the sockets, reports ready, and exits when told `go`: the
    // upgrade failed (not "succeeded", then silence), and the old process serves on.
    std::fs::write(&config, &config_text).unwrap();
    let fake = temp_path("dies-after-go.py");
    std::fs::write(&fake, DIES_AFTER_GO).unwrap();
    write_script(
        &binary,
        &format!("exec /usr/bin/python3 {} \"$@\"", fake.display()),
    );
    let stderr = failed(&upgrade(&pid_file, false));
    assert!(
        stderr.contains("exited after it was told to take over (exit status: 3)"),
        "{stderr}"
    );
    wait_reaped(successor_pid(&stderr));
    one_request(addr, 2).unwrap();
    write_script(&binary, &format!("exec {SLUICE} \"$@\""));

    // Every connection during all of that was served; the old process still is.
    let served = connects.finish();
    assert!(served > 0);

    // A reload of the config this process loaded is done in place: no successor.
    let output = upgrade(&pid_file, true);
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && said.contains("reload done in place"),
        "{output:?}"
    );
    assert_eq!(read_pid(&pid_file), sluice.pid());

    // 5. With the config fixed and the real binary, the same path hands over (the config
    // differs from the one this process loaded, or the reload would be in place).
    std::fs::write(&config, format!("{config_text}\n# fixed\n")).unwrap();
    let output = upgrade(&pid_file, true);
    assert!(output.status.success(), "{output:?}");
    let successor = read_pid(&pid_file);
    generations.pids.push(successor);
    assert_ne!(successor, sluice.pid());
    one_request(addr, 1).unwrap();
    let mut sluice = sluice;
    let deadline = Instant::now() + STEP_TIMEOUT;
    while sluice.try_exit().is_none() {
        assert!(
            Instant::now() < deadline,
            "the old process did not exit after the hand-off"
        );
        thread::sleep(Duration::from_millis(20));
    }
    terminate(successor);
}
