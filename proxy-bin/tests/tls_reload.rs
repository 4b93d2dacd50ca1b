//! Certificate reload in the real binary: a change of the files on disk, SIGHUP with the same
//! config (in place) and SIGHUP after a config change (through a successor) each make new
//! handshakes see the new certificate while an established session keeps working; a SIGHUP
//! while the files are broken keeps the previous ones. `/metrics` counts the reloads, the
//! failed one and a failed client handshake, and gives each certificate's not-after.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "helpers of this test file fail the test on bad setup"
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;

use sluice_tests::STEP_TIMEOUT;
use sluice_tests::certs::{TestCa, temp_dir};
use sluice_tests::openssl::peer_certificate_subject;
use sluice_tests::process::{SluiceBinary, echo_backend, http_get, write_config};

const SLUICE: SluiceBinary = SluiceBinary::new(env!("CARGO_BIN_EXE_sluice"));

#[test]
fn sighup_and_changed_files_reload_certificates_without_dropping_sessions() {
    let dir = temp_dir("binary-reload");
    let ca = TestCa::new("Reload CA");
    let (chain, key) = ca.issue(&["first.example"]).write_to(&dir, "server");
    let backend = echo_backend();
    let config = format!(
        "[[listener]]\nname = \"tls\"\nbind = \"127.0.0.1:0\"\nprotocol = \"tcp\"\ncluster = \"local\"\n\
         [listener.tls]\ncert = \"{}\"\nkey = \"{}\"\n\n[cluster.local]\nbackends = [\"{backend}\"]\n\n\
         [admin]\nbind = \"127.0.0.1:0\"\n\n\
         [shutdown]\naccept_grace = \"0s\"\ndrain_timeout = \"10s\"\nupgrade_timeout = \"5s\"\n",
        chain.display(),
        key.display()
    );
    let sluice = SLUICE.run(&config, "tls-reload.toml");
    let addr = sluice.listening_addr();
    let admin = sluice.admin_addr();
    let subject = || peer_certificate_subject(addr, Some("first.example")).unwrap_or_default();
    assert!(subject().contains("first.example"), "{}", subject());
    let expiry = format!(
        "sluice_tls_certificate_expiry_seconds{{listener=\"tls\",server_names=\"default\",file=\"{}\"}}",
        chain.display()
    );
    assert_eq!(metric(admin, &expiry), not_after(&chain));

    // A client that speaks no TLS fails the handshake, and is counted.
    let failures = "sluice_tls_handshake_failures_total{listener=\"tls\"}";
    assert_eq!(metric(admin, failures), 0);
    let mut plain = TcpStream::connect(addr).unwrap();
    plain.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
    plain.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let _ = plain.read(&mut [0; 64]);
    wait_until("the failed handshake is counted", || {
        metric(admin, failures) == 1
    });

    // An established session, through TLS, held across both reloads.
    let mut held = HeldSession::open(addr);
    held.echo(b"before\n");

    let second = ca.issue(&["second.example"]);
    std::fs::write(&chain, &second.chain_pem).unwrap();
    std::fs::write(&key, &second.key_pem).unwrap();
    let reloaded = sluice.wait_for("tls certificates reloaded");
    assert_eq!(reloaded["trigger"], "files changed");
    assert!(subject().contains("second.example"), "{}", subject());
    held.echo(b"after file change\n");
    let reloads = |outcome: &str| {
        metric(
            admin,
            &format!("sluice_tls_reloads_total{{listener=\"tls\",outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!((reloads("succeeded"), reloads("failed")), (1, 0));
    assert_eq!(metric(admin, &expiry), not_after(&chain));

    // A broken file keeps the last good certificate, and a SIGHUP then is rolled back.
    std::fs::write(&key, "not a key").unwrap();
    sluice.wait_for("tls reload failed; keeping the previous certificates");
    assert!(subject().contains("second.example"), "{}", subject());
    assert_eq!((reloads("succeeded"), reloads("failed")), (1, 1));
    sluice.signal("-HUP");
    // The config is unchanged: the files are re-read in place, and the broken one is kept out.
    let failed = sluice.wait_for("reload failed; still serving");
    let reason = failed["reason.detail"].as_str().unwrap();
    assert!(
        reason.contains("the certificates of listener tls")
            && reason.contains(&key.display().to_string()),
        "{failed}"
    );
    assert!(subject().contains("second.example"), "{}", subject());
    held.echo(b"after a failed sighup\n");
    let upgrades = |outcome: &str| {
        metric(
            admin,
            &format!("sluice_upgrades_total{{outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(
        (
            upgrades("succeeded"),
            upgrades("failed"),
            upgrades("refused")
        ),
        (0, 1, 0)
    );

    // SIGHUP with good files and the same config: reloaded in place, by this very process; the
    // held session is untouched.
    let third = ca.issue(&["third.example"]);
    std::fs::write(&chain, &third.chain_pem).unwrap();
    std::fs::write(&key, &third.key_pem).unwrap();
    sluice.signal("-HUP");
    let reloaded = sluice.wait_for("tls certificates reloaded");
    assert_eq!(reloaded["trigger"], "SIGHUP");
    sluice.wait_for("reloaded in place");
    assert!(subject().contains("third.example"), "{}", subject());
    held.echo(b"after an in-place sighup\n");
    assert_eq!((upgrades("succeeded"), upgrades("failed")), (1, 1));

    // SIGHUP after the config changed: a successor takes over with it; the held session, on
    // the old process, keeps working while that one drains.
    let fourth = ca.issue(&["fourth.example"]);
    std::fs::write(&chain, &fourth.chain_pem).unwrap();
    std::fs::write(&key, &fourth.key_pem).unwrap();
    write_config("tls-reload.toml", &format!("{config}\n# edited\n"));
    sluice.signal("-HUP");
    let handed = sluice.wait_for("upgrade: handed over to the successor");
    let successor = handed["successor.pid"].as_u64().unwrap();
    let _successor = Successor(successor);
    assert!(subject().contains("fourth.example"), "{}", subject());
    held.echo(b"after sighup\n");

    drop(held);
    assert_eq!(sluice.wait_exit().code(), Some(0));
}

/// The value of the sample `series` (name and labels) in `/metrics`.
fn metric(admin: SocketAddr, series: &str) -> u64 {
    let (status, body) = http_get(admin, "/metrics");
    assert_eq!(status, 200);
    body.lines()
        .find_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            (key == series).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or_else(|| panic!("no {series} in /metrics:\n{body}"))
}

/// Polls `check` every 20 ms until it holds, for at most [`STEP_TIMEOUT`].
fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + STEP_TIMEOUT;
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The not-after of the leaf in `chain`, in seconds since the Unix epoch, as openssl and
/// date read it.
fn not_after(chain: &Path) -> u64 {
    let output = Command::new("openssl")
        .args(["x509", "-noout", "-enddate", "-in"])
        .arg(chain)
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let date = text.trim().strip_prefix("notAfter=").unwrap();
    let output = Command::new("date")
        .args(["-u", "-d", date, "+%s"])
        .output()
        .unwrap();
    String::from_utf8(output.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Stops the successor at the end of the test.
struct Successor(u64);

impl Drop for Successor {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.to_string()])
            .status();
    }
}

/// An `openssl s_client` session kept open, piped both ways; its output is read on a thread
/// so every read is bounded by `STEP_TIMEOUT`.
struct HeldSession {
    child: Child,
    output: mpsc::Receiver<Vec<u8>>,
}

impl HeldSession {
    fn open(addr: SocketAddr) -> Self {
        let mut child = Command::new("openssl")
            .args([
                "s_client",
                "-quiet",
                "-connect",
                &addr.to_string(),
                "-servername",
                "first.example",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let (tx, output) = mpsc::channel();
        thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut chunk) {
                if n == 0 || tx.send(chunk[..n].to_vec()).is_err() {
                    return;
                }
            }
        });
        Self { child, output }
    }

    /// Sends `text` and waits (bounded) for it to come back.
    fn echo(&mut self, text: &[u8]) {
        self.child.stdin.as_mut().unwrap().write_all(text).unwrap();
        let mut back = Vec::new();
        while back.len() < text.len() {
            let chunk = self.output.recv_timeout(STEP_TIMEOUT).unwrap();
            back.extend_from_slice(&chunk);
        }
        assert_eq!(back, text);
    }
}

impl Drop for HeldSession {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
