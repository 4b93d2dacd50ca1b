//! A child-process backend that answers and exits without reading what the client sent: the
//! write to its stdin fails, yet its answer is read to the end and delivered before the session
//! closes, every time. Every wait is bounded.

use std::io::{Read, Write};
use std::net::TcpStream;

use sluice_tests::STEP_TIMEOUT;

use crate::SLUICE;

#[test]
fn a_child_that_answers_and_exits_unread_gets_its_answer_to_the_client_every_time() {
    // A tool that rejects its input: one line out, exit, stdin never read.
    let config = "[[listener]]\nname = \"tool\"\nbind = \"127.0.0.1:0\"\nprotocol = \"tcp\"\n\
                  cluster = \"child\"\n\n[cluster.child]\n\
                  exec = [\"/bin/sh\", \"-c\", \"echo rejected; exit 3\"]\n\n\
                  [shutdown]\naccept_grace = \"0s\"\ndrain_timeout = \"1s\"\n";
    let sluice = SLUICE.run(config, "child-answers-and-exits.toml");
    let addr = sluice.listening_addr();
    // Far more than a pipe holds, so writing to the child fails once it has exited.
    let upload = vec![b'x'; 1 << 20];
    for attempt in 0..20 {
        let mut client = TcpStream::connect(addr).unwrap();
        client.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
        let _ = client.write_all(&upload);
        let mut got = Vec::new();
        let _ = client.read_to_end(&mut got);
        assert_eq!(
            String::from_utf8_lossy(&got),
            "rejected\n",
            "attempt {attempt}: the child's answer was lost"
        );
        // Whether the failed write or the child's EOF came first, the backend ended it.
        let close = sluice.wait_for("session closed");
        let label = close["reason.label"].as_str().unwrap();
        assert!(
            ["backend_error", "backend_closed"].contains(&label),
            "attempt {attempt}: {close}"
        );
    }
    // The listener keeps serving afterwards.
    let mut client = TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
    let mut got = Vec::new();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    client.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"rejected\n");
}
