//! Upgrades and reloads under a master: as PID 1 of a namespace (three upgrades and a failed
//! reload under load, a new binary on disk, upgrades while earlier workers drain), with
//! `--master` outside one, and a PID-1 worker without a master refusing upgrades and reloading
//! in place.

use super::*;
use crate::load::ConnectLoop;

#[test]
fn as_pid_1_three_upgrades_and_a_failed_reload_keep_pid_1_and_refuse_nothing() {
    let text = config_text("1s");
    let config = write_config("pid1.toml", &text);
    let pid_file = temp_path("pid1.pid");
    let sluice = Master::start(SLUICE.path(), &config, &pid_file, true);
    let addr = sluice.running.listening_addr();
    let inode = listening_inode(addr);
    let mut workers = vec![wait_for_pid(&pid_file)];
    assert_ne!(workers[0], 1, "the worker is not PID 1");

    let connects = ConnectLoop::start(addr, 500);
    for round in 1..=3 {
        let before = connects.done();
        // Rounds 1 and 3 signal PID 1, which forwards; round 2 runs `sluice upgrade` inside.
        let record = if round == 2 {
            let output = sluice.upgrade_inside();
            assert!(output.status.success(), "upgrade {round}: {output:?}");
            let said = String::from_utf8_lossy(&output.stdout).into_owned();
            let expected = format!("process {} handed over to", workers[round - 1]);
            assert!(said.contains(&expected), "{said}");
            status(&pid_file).unwrap()
        } else {
            sluice.trigger("-USR2")
        };
        assert_eq!(
            record["outcome"], "succeeded",
            "upgrade {round}: {record:?}"
        );
        let worker = read_pid(&pid_file);
        assert_eq!(record["successor"], worker.to_string(), "{record:?}");
        assert!(
            !workers.contains(&worker),
            "upgrade {round}: {worker} again"
        );
        workers.push(worker);
        // The successor took over and keeps serving: alive, holding the socket, after its
        // predecessor has drained and exited.
        let previous = outer_pid(sluice.master, workers[round - 1]);
        let deadline = Instant::now() + STEP_TIMEOUT;
        while outer_pid(sluice.master, workers[round - 1]).is_some() {
            assert!(
                Instant::now() < deadline,
                "upgrade {round}: {previous:?} still runs"
            );
            thread::sleep(Duration::from_millis(20));
        }
        assert!(sluice.alive(), "upgrade {round}: PID 1 exited");
        assert!(holds_socket(sluice.worker(), inode), "upgrade {round}");
        let deadline = Instant::now() + STEP_TIMEOUT;
        while connects.done() < before + 200 {
            assert!(Instant::now() < deadline, "the load stalled");
            thread::sleep(Duration::from_millis(10));
        }
    }

    // A reload whose config does not parse fails, says so, and the worker keeps serving.
    std::fs::write(&config, "this is = not [toml\n").unwrap();
    let before = connects.done();
    let record = sluice.trigger("-HUP");
    assert_eq!(record["outcome"], "failed", "{record:?}");
    assert!(!record.contains_key("successor"), "{record:?}");
    assert_eq!(read_pid(&pid_file), *workers.last().unwrap());
    let deadline = Instant::now() + STEP_TIMEOUT;
    while connects.done() < before + 200 {
        assert!(
            Instant::now() < deadline,
            "the load stalled after the failed reload"
        );
        thread::sleep(Duration::from_millis(10));
    }
    std::fs::write(&config, &text).unwrap();
    let served = connects.finish();
    assert!(sluice.alive(), "PID 1 exited");
    assert_eq!(children_of(sluice.running.pid()), vec![sluice.master]);
    eprintln!("{served} connections, none refused, workers {workers:?}");

    // SIGTERM to PID 1 reaches the worker, which drains; then everything exits 0.
    let Master {
        running, master, ..
    } = sluice;
    Command::new("kill")
        .args(["-TERM", &master.to_string()])
        .status()
        .unwrap();
    running.wait_for("shutdown: complete");
    running.wait_for("master: the last worker exited");
    let exit = running.wait_exit();
    assert_eq!(exit.code(), Some(0), "{exit:?}");
    assert!(!pid_file.exists(), "the last worker removes its PID file");
}

#[test]
fn as_pid_1_an_upgrade_to_a_new_binary_on_disk_keeps_pid_1() {
    let scratch = ScratchDir::new("pid1-binary");
    let dir = scratch.path();
    let binary = dir.join("sluice");
    let replace = || {
        let aside = dir.join("sluice.new");
        std::fs::copy(SLUICE.path(), &aside).unwrap();
        std::fs::rename(&aside, &binary).unwrap();
    };
    replace();
    let config = write_config("pid1-binary.toml", &config_text("1s"));
    let pid_file = temp_path("pid1-binary.pid");
    let sluice = Master::start(&binary, &config, &pid_file, true);
    let addr = sluice.running.listening_addr();
    let first = sluice.worker();

    // A new file at the path (a new inode, as a package manager installs it).
    let old_inode = std::fs::metadata(&binary).unwrap().ino();
    replace();
    let new_inode = std::fs::metadata(&binary).unwrap().ino();
    assert_ne!(old_inode, new_inode);

    let master_pid = sluice.master;
    let connects = ConnectLoop::start(addr, 300);
    let record = sluice.trigger("-USR2");
    assert_eq!(record["outcome"], "succeeded", "{record:?}");
    let worker = sluice.worker();
    assert_ne!(worker, first);
    // The new worker runs the file now on disk; then PID 1 re-executes itself from it, keeping
    // its PID.
    let exe = |pid: u32| std::fs::metadata(format!("/proc/{pid}/exe")).unwrap().ino();
    assert_eq!(exe(worker), new_inode, "the new worker runs the new binary");
    sluice
        .running
        .wait_for("master: re-executing the new binary");
    sluice.running.wait_for("master: resumed on the new binary");
    assert_eq!(exe(sluice.master), new_inode, "PID 1 runs the new binary");
    assert_eq!(sluice.master, master_pid);
    assert_eq!(inner_pid(sluice.master), Some(1));
    assert!(sluice.alive());

    // The resumed master still knows its worker: later upgrades (the same file: no
    // re-execution) are forwarded and followed, a failed reload reported.
    let record = sluice.trigger("-USR2");
    assert_eq!(record["outcome"], "succeeded", "{record:?}");
    let third = sluice.worker();
    assert_ne!(third, worker);
    // A reload of a config that does not parse fails and is reported; the worker serves on.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, "this is = not [toml\n").unwrap();
    let record = sluice.trigger("-HUP");
    assert_eq!(record["outcome"], "failed", "{record:?}");
    assert_eq!(sluice.worker(), third);
    std::fs::write(&config, text).unwrap();
    // A third upgrade after it.
    let record = sluice.trigger("-USR2");
    assert_eq!(record["outcome"], "succeeded", "{record:?}");
    let fourth = sluice.worker();
    assert_ne!(fourth, third);
    let deadline = Instant::now() + STEP_TIMEOUT;
    while connects.done() < 100 {
        assert!(Instant::now() < deadline, "the load stalled");
        thread::sleep(Duration::from_millis(10));
    }
    let served = connects.finish();
    eprintln!(
        "{served} connections through three upgrades, a re-execution and a failed reload, \
         none refused"
    );
    assert!(holds_socket(fourth, listening_inode(addr)));
    assert_eq!(inner_pid(sluice.master), Some(1));
    // SIGTERM to the resumed PID 1 drains the worker and exits 0.
    let exit = sluice.terminate();
    assert_eq!(exit.code(), Some(0), "{exit:?}");
}

#[test]
fn with_master_an_upgrade_outlives_the_first_worker_and_sigterm_exits_0() {
    let config = write_config("master-flag.toml", &config_text("1s"));
    let pid_file = temp_path("master-flag.pid");
    let sluice = Master::start(SLUICE.path(), &config, &pid_file, false);
    let addr = sluice.running.listening_addr();
    let first = wait_for_pid(&pid_file);
    assert_ne!(first, sluice.master);
    // Outside a namespace, workers would outlive a master killed by a failing test.
    let mut generations = Generations::new(first, &pid_file);
    let connects = ConnectLoop::start(addr, 300);
    let record = sluice.trigger("-USR2");
    assert_eq!(record["outcome"], "succeeded", "{record:?}");
    let worker = read_pid(&pid_file);
    generations.pids.push(worker);
    // The successor's parent drains and exits; the master (a child subreaper) adopts it.
    let deadline = Instant::now() + STEP_TIMEOUT;
    while !children_of(sluice.master).contains(&worker) {
        assert!(
            Instant::now() < deadline,
            "{worker} not adopted by the master"
        );
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(process_state(first), None, "the first worker was reaped");
    connects.finish();
    assert!(holds_socket(worker, listening_inode(addr)));
    let exit = sluice.terminate();
    assert_eq!(exit.code(), Some(0), "{exit:?}");
}

#[test]
fn a_worker_that_is_pid_1_refuses_upgrades_and_reloads_an_unchanged_config_in_place() {
    require_unshare();
    let config = write_config("pid1-worker.toml", &config_text("1s"));
    let pid_file = temp_path("pid1-worker.pid");
    let _ = std::fs::remove_file(&pid_file);
    // The master's variable makes PID 1 a worker, as if someone had set it by hand.
    let mut command = Command::new("unshare");
    command
        .args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(SLUICE.path())
        .args(["run", "--log-format", "json", "--config"])
        .arg(&config)
        .env("SLUICE_MASTER_PID_FILE", &pid_file)
        .env("RUST_LOG", QUIET)
        .stdin(Stdio::null());
    let running = Running::spawn(command);
    let addr = running.listening_addr();
    assert_eq!(wait_for_pid(&pid_file), 1);
    let sluice = Master {
        master: *children_of(running.pid()).first().unwrap(),
        running,
        pid_file,
    };
    let record = sluice.trigger("-USR2");
    assert_eq!(record["outcome"], "refused", "{record:?}");
    assert!(record["reason"].contains("PID 1"), "{record:?}");
    // A SIGHUP with the config unchanged needs no successor: it reloads in place, PID 1 or not.
    let record = sluice.trigger("-HUP");
    assert_eq!(record["outcome"], "succeeded", "{record:?}");
    assert!(record["reason"].contains("in place"), "{record:?}");
    assert!(!record.contains_key("successor"), "{record:?}");
    assert_eq!(wait_for_pid(&sluice.pid_file), 1);
    // Still serving, on its own.
    crate::load::one_request(addr, 1).unwrap();
    assert!(sluice.alive());
    let exit = sluice.terminate();
    assert_eq!(exit.code(), Some(0), "{exit:?}");
}

#[test]
fn as_pid_1_upgrades_while_earlier_workers_drain_keep_pid_1() {
    let config = write_config("pid1-overlap.toml", &config_text("3s"));
    let pid_file = temp_path("pid1-overlap.pid");
    let sluice = Master::start(SLUICE.path(), &config, &pid_file, true);
    let addr = sluice.running.listening_addr();
    // An open session keeps each worker draining until its drain_timeout.
    let hold = || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
        stream.write_all(b"hold\n").unwrap();
        let mut echo = [0; 5];
        stream.read_exact(&mut echo).unwrap();
        stream
    };
    let first = sluice.worker();
    let _first_session = hold();
    // Upgrades run by the workers themselves (`sluice upgrade` inside), not through PID 1:
    // the master learns of them from the PID file alone.
    let output = sluice.upgrade_inside();
    assert!(output.status.success(), "{output:?}");
    let second = sluice.worker();
    // Past the first worker's closing of its listeners: this session is the second's.
    thread::sleep(Duration::from_millis(300));
    let _second_session = hold();
    let output = sluice.upgrade_inside();
    assert!(output.status.success(), "{output:?}");
    let third = sluice.worker();
    assert!(process_state(first).is_some() && process_state(second).is_some());

    // The first worker exits while the second still drains and the third serves: PID 1
    // follows the chain to the third.
    let deadline = Instant::now() + STEP_TIMEOUT;
    while process_state(first).is_some() {
        assert!(Instant::now() < deadline, "the first worker did not exit");
        thread::sleep(Duration::from_millis(20));
    }
    assert!(sluice.alive(), "PID 1 exited with the first worker");
    let deadline = Instant::now() + STEP_TIMEOUT;
    while process_state(second).is_some() {
        assert!(
            Instant::now() < deadline,
            "the second worker was not reaped"
        );
        thread::sleep(Duration::from_millis(20));
    }
    assert!(sluice.alive(), "PID 1 exited with the second worker");
    crate::load::one_request(addr, 7).unwrap();
    assert!(holds_socket(third, listening_inode(addr)));
    let exit = sluice.terminate();
    assert_eq!(exit.code(), Some(0), "{exit:?}");
}
