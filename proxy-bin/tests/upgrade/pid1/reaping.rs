//! PID 1 reaps: orphans in its namespace, and a child backend's orphan, while the child
//! backend's own exit status stays its worker's.

use super::*;

#[test]
fn as_pid_1_the_master_reaps_orphans() {
    let config = write_config("pid1-reap.toml", &config_text("1s"));
    let pid_file = temp_path("pid1-reap.pid");
    let sluice = Master::start(SLUICE.path(), &config, &pid_file, true);
    wait_for_pid(&pid_file);
    // A process in the namespace whose parent exits at once: its orphan goes to PID 1.
    let output = Command::new("nsenter")
        .args(["--target", &sluice.master.to_string(), "--pid", "--mount"])
        .args(["sh", "-c", "sleep 2 >/dev/null 2>&1 & echo $!"])
        .output()
        .unwrap();
    assert!(output.status.success(), "nsenter: {output:?}");
    let orphan: u32 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap();
    let outer = outer_pid(sluice.master, orphan).expect("the orphan is the master's child");
    assert!(children_of(sluice.master).contains(&outer));
    // It exits after two seconds; a zombie would stay in state Z.
    let deadline = Instant::now() + STEP_TIMEOUT;
    while let Some(state) = process_state(outer) {
        assert!(
            Instant::now() < deadline,
            "orphan {outer} not reaped: state {state}"
        );
        thread::sleep(Duration::from_millis(20));
    }
    sluice.running.wait_for("master: reaped an orphan");
    assert!(sluice.alive());
    let exit = sluice.terminate();
    assert_eq!(exit.code(), Some(0), "{exit:?}");
}

#[test]
fn as_pid_1_child_backends_stay_the_workers_and_their_orphans_are_reaped() {
    // A child backend that answers, leaves a grandchild behind and exits 7.
    let config = "[[listener]]\nname = \"tool\"\nbind = \"127.0.0.1:0\"\nprotocol = \"tcp\"\n\
                  cluster = \"child\"\n\n[cluster.child]\n\
                  exec = [\"/bin/sh\", \"-c\", \"sleep 1 </dev/null >/dev/null 2>&1 & echo $!; exit 7\"]\n\n\
                  [shutdown]\naccept_grace = \"0s\"\ndrain_timeout = \"1s\"\n";
    let config = write_config("pid1-child.toml", config);
    let pid_file = temp_path("pid1-child.pid");
    let sluice = Master::start_with(
        SLUICE.path(),
        &config,
        &pid_file,
        true,
        "warn,sluice=info,proxy_frontend::accept=info,proxy_backend=debug",
        &[],
    );
    let addr = sluice.running.listening_addr();
    let mut client = TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = String::new();
    client.read_to_string(&mut got).unwrap();
    let grandchild: u32 = got.trim().parse().unwrap();
    // The worker, not the master, waited for its child and saw its status.
    let reaped = sluice.running.wait_for("child reaped");
    assert_eq!(reaped["status"], "exit status: 7", "{reaped}");
    assert_eq!(reaped["pid"], wait_for_pid(&pid_file), "{reaped}");
    // Its orphan went to PID 1, which reaped it when it exited: at the end of its sleep, or
    // at the SIGTERM the worker sends the child's process group as the session ends.
    let orphan = sluice.running.wait_for("master: reaped an orphan");
    assert_eq!(orphan["orphan.pid"], grandchild, "{orphan}");
    assert!(
        ["exit status: 0", "signal: 15"].contains(&orphan["status"].as_str().unwrap()),
        "{orphan}"
    );
    let exit = sluice.terminate();
    assert_eq!(exit.code(), Some(0), "{exit:?}");
}
