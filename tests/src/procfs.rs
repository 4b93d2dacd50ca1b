//! What Linux's `/proc` says about the processes and sockets a test started: whether a process
//! is gone or a zombie, its children, and which process holds which listening socket (so a test
//! can tell a socket handed over by an upgrade from one bound anew, or count the ports a process
//! listens on).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

/// Whether process `pid` is gone for good: no /proc entry (a zombie still has one, in state Z).
pub fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('X')),
    }
}

/// The state letter of process `pid` (R, S, Z, ...), if it exists.
pub fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.trim_start().chars().next()
}

/// The direct children of process `pid`, from every thread's children list.
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return children;
    };
    for task in tasks.flatten() {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            children.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    children.sort_unstable();
    children.dedup();
    children
}

/// The inode of the socket listening on `addr` (IPv4 only), from /proc/net/tcp.
pub fn listening_inode(addr: SocketAddr) -> u64 {
    let SocketAddr::V4(v4) = addr else {
        panic!("IPv4 only")
    };
    let local = format!(
        "{:08X}:{:04X}",
        u32::from_le_bytes(v4.ip().octets()),
        v4.port()
    );
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let inodes: Vec<u64> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address, st == 0A (LISTEN), inode
            (fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&"0A"))
                .then(|| fields.get(9)?.parse().ok())
                .flatten()
        })
        .collect();
    assert_eq!(
        inodes.len(),
        1,
        "one listening socket on {addr}: {inodes:?}"
    );
    inodes[0]
}

/// Whether process `pid` holds socket `inode` among its descriptors.
pub fn holds_socket(pid: u32, inode: u64) -> bool {
    let target = format!("socket:[{inode}]");
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("list the process's descriptors")
        .flatten()
        .any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|link| link.as_os_str() == target.as_str())
        })
}

/// The ports process `pid` listens on (TCP, IPv4 and IPv6): its descriptors' sockets that
/// /proc/net/tcp and /proc/net/tcp6 list in state LISTEN.
pub fn listening_ports(pid: u32) -> BTreeSet<u16> {
    let mut ports_by_inode = BTreeMap::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(table) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in table.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address (HEXIP:HEXPORT), st == 0A (LISTEN), inode
            let port = fields
                .get(1)
                .and_then(|local| local.rsplit_once(':'))
                .and_then(|(_, port)| u16::from_str_radix(port, 16).ok());
            let inode = fields.get(9).and_then(|inode| inode.parse::<u64>().ok());
            if let (Some(port), Some(inode), Some(&"0A")) = (port, inode, fields.get(3)) {
                ports_by_inode.insert(inode, port);
            }
        }
    }
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("list the process's descriptors")
        .flatten()
        .filter_map(|fd| {
            let link = std::fs::read_link(fd.path()).ok()?;
            let inode = link
                .to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse::<u64>()
                .ok()?;
            ports_by_inode.get(&inode).copied()
        })
        .collect()
}
