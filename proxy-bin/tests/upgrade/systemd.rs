//! The binary under systemd: socket activation serves on the socket systemd passed, and
//! sd_notify hears RELOADING, the new MAINPID and READY across an upgrade.

use std::net::TcpListener;
use std::process::Command;

use sluice_tests::STEP_TIMEOUT;
use sluice_tests::process::{Generations, Running, temp_path, write_config};
use sluice_tests::procfs::{holds_socket, listening_inode};

use crate::load::one_request;
use crate::{
    QUIET, SLUICE, echo_backend, lifecycle_block, listener_block, read_pid, terminate, upgrade,
    wait_exited,
};

#[test]
fn socket_activation_serves_on_the_socket_systemd_passed() {
    let backend = echo_backend();
    // Bound by "systemd" (the test): the config asks for its exact address.
    let socket = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let inode = listening_inode(addr);
    let config = format!(
        "[[listener]]\nname = \"plain\"\nbind = \"{addr}\"\nprotocol = \"tcp\"\ncluster = \"local\"\n\n\
         [cluster.local]\nbackends = [\"{backend}\"]\n\n[shutdown]\naccept_grace = \"0s\"\ndrain_timeout = \"1s\"\n"
    );
    let path = write_config("activation.toml", &config);
    // As systemd would: the socket as descriptor 3, LISTEN_PID naming the process that runs
    // sluice (the shell, which then becomes sluice by exec), and the socket's name.
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(format!(
            "exec 3<&0 0</dev/null; LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=plain exec {SLUICE} run --log-format json --config {}",
            path.display()
        ))
        .env("RUST_LOG", QUIET)
        .stdin(std::process::Stdio::from(std::os::fd::OwnedFd::from(socket)));
    let sluice = Running::spawn(command);
    let adopted = sluice.find("adopted inherited socket");
    assert_eq!(adopted["from"], "systemd");
    assert_eq!(adopted["listener.name"], "plain");
    assert_eq!(sluice.listening_addr(), addr);
    one_request(addr, 1).unwrap();
    assert_eq!(
        listening_inode(addr),
        inode,
        "served on the inherited socket, not a new one"
    );
    assert!(holds_socket(sluice.pid(), inode));
    assert_eq!(sluice.terminate().code(), Some(0));
}

#[test]
fn systemd_hears_reloading_the_new_main_pid_and_ready() {
    use std::os::unix::net::UnixDatagram;
    let backend = echo_backend();
    let config = format!(
        "{}{}",
        listener_block("plain", backend),
        lifecycle_block("1s", "10s")
    );
    let notify_path = temp_path("notify.sock");
    let _ = std::fs::remove_file(&notify_path);
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
    let pid_file = temp_path("notify.pid");
    let _ = std::fs::remove_file(&pid_file);
    let path = write_config("notify.toml", &config);
    let mut command = Command::new(SLUICE);
    command
        .args(["run", "--log-format", "json", "--config"])
        .arg(&path)
        .arg("--pid-file")
        .arg(&pid_file)
        .env("RUST_LOG", QUIET)
        .env("NOTIFY_SOCKET", &notify_path)
        .stdin(std::process::Stdio::null());
    let sluice = Running::spawn(command);
    let mut generations = Generations::new(sluice.pid(), &pid_file);
    let mut received = Vec::new();
    let mut next = || {
        let mut buffer = [0u8; 512];
        let n = notify.recv(&mut buffer).unwrap();
        let message = String::from_utf8_lossy(&buffer[..n]).into_owned();
        received.push(message.clone());
        message
    };
    assert_eq!(next(), "READY=1\n");
    let output = upgrade(&pid_file, false);
    assert!(output.status.success(), "{output:?}");
    let successor = read_pid(&pid_file);
    generations.pids.push(successor);
    let reloading = next();
    assert!(
        reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{reloading:?}"
    );
    // The old process's MAINPID and the successor's READY may arrive in either order.
    let mut rest = [next(), next()];
    rest.sort();
    assert_eq!(
        rest,
        [format!("MAINPID={successor}\n"), "READY=1\n".to_owned()]
    );
    wait_exited(sluice.pid());
    terminate(successor);
    let _ = std::fs::remove_file(&notify_path);
}
