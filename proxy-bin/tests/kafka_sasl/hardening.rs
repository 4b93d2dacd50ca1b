//! A terminating listener under attack, from raw sockets: unknown users look like real ones,
//! guesses do not lock out the user who knows the password, password checks cannot take the
//! workers from other sessions, anonymous clients hold a bounded number of sessions, and
//! oversized SCRAM messages are refused.

use std::net::TcpStream;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use rdkafka::mocking::MockCluster;
use sluice_tests::kafka_wire::{connect, frame, read_frame};

use crate::{ALICE, Proxy, close_with, cluster_toml, terminate_with, users_file, users_file_with};

/// A raw client's SASL exchange with the proxy (also used by `reload`).
pub(crate) struct RawSasl {
    pub(crate) stream: TcpStream,
    correlation: i32,
}

impl RawSasl {
    pub(crate) fn connect(port: u16) -> Self {
        Self {
            stream: connect(port),
            correlation: 0,
        }
    }

    pub(crate) fn request(
        &mut self,
        api: ApiKey,
        version: i16,
        body: &impl Encodable,
    ) -> std::io::Result<Vec<u8>> {
        use std::io::Write as _;
        let mut encoded = bytes::BytesMut::new();
        body.encode(&mut encoded, version).unwrap();
        self.correlation += 1;
        self.stream
            .write_all(&frame(api as i16, version, self.correlation, &encoded))?;
        read_frame(&mut self.stream)
    }

    /// SaslHandshake v1 for `mechanism`: its error code.
    pub(crate) fn handshake(&mut self, mechanism: &str) -> i16 {
        let body = SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_string(mechanism.to_owned()));
        let answer = self.request(ApiKey::SaslHandshake, 1, &body).unwrap();
        let mut answer = bytes::Bytes::from(answer[4..].to_vec());
        SaslHandshakeResponse::decode(&mut answer, 1)
            .unwrap()
            .error_code
    }

    /// SaslAuthenticate v1 with `token` (v1 keeps the header unflexible for `frame`).
    pub(crate) fn authenticate(
        &mut self,
        token: &[u8],
    ) -> std::io::Result<SaslAuthenticateResponse> {
        let body =
            SaslAuthenticateRequest::default().with_auth_bytes(bytes::Bytes::from(token.to_vec()));
        let answer = self.request(ApiKey::SaslAuthenticate, 1, &body)?;
        let mut answer = bytes::Bytes::from(answer[4..].to_vec());
        Ok(SaslAuthenticateResponse::decode(&mut answer, 1).unwrap())
    }

    /// A whole PLAIN login: the SaslAuthenticate error code.
    pub(crate) fn plain(port: u16, user: &str, password: &str) -> std::io::Result<i16> {
        let mut client = Self::connect(port);
        assert_eq!(client.handshake("PLAIN"), 0);
        let token = format!("\0{user}\0{password}");
        Ok(client.authenticate(token.as_bytes())?.error_code)
    }

    /// SCRAM's server-first message for `user`: (salt, iterations).
    fn scram_challenge(port: u16, mechanism: &str, user: &str) -> (Vec<u8>, u32) {
        let mut client = Self::connect(port);
        assert_eq!(client.handshake(mechanism), 0);
        let answer = client
            .authenticate(format!("n,,n={user},r=fyko+d2lbbFgONRv9qkxdawL").as_bytes())
            .unwrap();
        assert_eq!(answer.error_code, 0, "{answer:?}");
        let text = String::from_utf8(answer.auth_bytes.to_vec()).unwrap();
        let mut salt = None;
        let mut iterations = None;
        for part in text.split(',') {
            if let Some(value) = part.strip_prefix("s=") {
                salt = Some(BASE64.decode(value).unwrap());
            }
            if let Some(value) = part.strip_prefix("i=") {
                iterations = Some(value.parse().unwrap());
            }
        }
        (salt.unwrap(), iterations.unwrap())
    }
}

#[test]
fn unknown_users_get_scram_challenges_like_real_ones() {
    let mock = MockCluster::new(1).unwrap();
    let users = users_file("sasl-users-decoys.toml", &[ALICE]);
    let proxy = Proxy::start(
        "sasl-decoys.toml",
        &terminate_with(&users),
        &cluster_toml("main", &mock),
    );
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let (alice_salt, alice_iterations) =
            RawSasl::scram_challenge(proxy.bootstrap, mechanism, "alice");
        let (decoy_salt, decoy_iterations) =
            RawSasl::scram_challenge(proxy.bootstrap, mechanism, "mallory");
        assert_eq!(decoy_iterations, alice_iterations, "{mechanism}");
        assert_eq!(decoy_salt.len(), alice_salt.len(), "{mechanism}");
        // Asked again, each is the same: a real user's salt is stored, a decoy's is derived.
        assert_eq!(
            RawSasl::scram_challenge(proxy.bootstrap, mechanism, "mallory").0,
            decoy_salt
        );
        assert_eq!(
            RawSasl::scram_challenge(proxy.bootstrap, mechanism, "alice").0,
            alice_salt
        );
        assert_ne!(
            RawSasl::scram_challenge(proxy.bootstrap, mechanism, "trudy").0,
            decoy_salt
        );
        // Not a function of the name anyone can compute (decoys used to be its hash).
        let digest = match mechanism {
            "SCRAM-SHA-256" => &ring::digest::SHA256,
            _ => &ring::digest::SHA512,
        };
        let public = ring::digest::digest(digest, b"mallory");
        assert_ne!(decoy_salt[..], public.as_ref()[..16], "{mechanism}");
    }
}

#[test]
fn guesses_at_a_password_do_not_lock_out_the_user_who_knows_it() {
    let mock = MockCluster::new(1).unwrap();
    let users = users_file("sasl-users-lockout.toml", &[ALICE]);
    // The default 10 s timeout: the old address-wide delay (a 10 s ceiling, successes waiting
    // too) locked the address out for longer than that after 8 failures.
    let proxy = Proxy::start(
        "sasl-lockout.toml",
        &terminate_with(&users),
        &cluster_toml("main", &mock),
    );
    let guesses: Vec<_> = (0..20)
        .map(|i| {
            let port = proxy.bootstrap;
            std::thread::spawn(move || RawSasl::plain(port, "alice", &format!("guess-{i}")))
        })
        .collect();
    for guess in guesses {
        assert_eq!(
            guess.join().unwrap().unwrap(),
            58,
            "SASL_AUTHENTICATION_FAILED"
        );
    }
    assert!(
        proxy.metric("sluice_sasl_failures_delayed_total{listener=\"kafka\"}") >= 20,
        "{}",
        proxy.metrics()
    );
    // The failures doubled each other's delays (one (client, user) pair) ...
    let doubled = (0..20).any(|_| {
        proxy.sluice.wait_for("client authentication failed")["delay_ms"]
            .as_u64()
            .is_some_and(|ms| ms >= 200)
    });
    assert!(doubled, "the failure delay did not grow");
    // ... and the right password from the same address is answered at once, well within the
    // authentication timeout, by PLAIN and by SCRAM.
    assert_eq!(
        RawSasl::plain(proxy.bootstrap, ALICE.0, ALICE.1).unwrap(),
        0
    );
    let line = proxy.sluice.wait_for("client authenticated");
    assert_eq!(line["auth.principal"], "alice", "{line}");
}

#[test]
fn a_flood_of_plain_guesses_is_bounded_and_leaves_other_sessions_answered() {
    let mock = MockCluster::new(1).unwrap();
    // The most iterations the users file allows: each wrong guess costs the most it can.
    let users = users_file_with(
        "sasl-users-flood.toml",
        &[ALICE],
        &["--iterations", "16384"],
    );
    let listener = format!(
        "{}\ntimeout = \"30s\"\nmax_unauthenticated_per_source = 1000",
        terminate_with(&users)
    );
    let proxy = Proxy::start("sasl-flood.toml", &listener, &cluster_toml("main", &mock));
    proxy.wait_discovered();
    // Guessers that never wait on each other's delays: each guesses at another name, and a
    // name that does not exist costs what a real user's wrong password does.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let guessers: Vec<_> = (0..64)
        .map(|g| {
            let port = proxy.bootstrap;
            let stop = stop.clone();
            std::thread::spawn(move || {
                for attempt in 0..50 {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let user = format!("user-{g}-{attempt}");
                    if let Ok(code) = RawSasl::plain(port, &user, "guess") {
                        assert_eq!(code, 58, "a guess succeeded");
                    }
                }
            })
        })
        .collect();
    // Meanwhile the listener's own answers keep coming: ApiVersions on new connections, each
    // within a bound far above its normal latency.
    for _ in 0..20 {
        let mut client = RawSasl::connect(proxy.bootstrap);
        client
            .stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let answer = client
            .request(
                ApiKey::ApiVersions,
                0,
                &kafka_protocol::messages::ApiVersionsRequest::default(),
            )
            .expect("ApiVersions went unanswered during the flood");
        let mut body = bytes::Bytes::from(answer[4..].to_vec());
        assert_eq!(
            ApiVersionsResponse::decode(&mut body, 0)
                .unwrap()
                .error_code,
            0
        );
    }
    // The queue of password checks is bounded: beyond it, guesses are refused unchecked.
    let refused = "sluice_sasl_refused_total{listener=\"kafka\",reason=\"password_checks_busy\"}";
    let mut saw_refusals = false;
    for _ in 0..600 {
        if proxy.metric(refused) > 0 {
            saw_refusals = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for guesser in guessers {
        guesser.join().unwrap();
    }
    assert!(saw_refusals, "no check was refused:\n{}", proxy.metrics());
    // And the user who knows the password still gets in.
    assert_eq!(
        RawSasl::plain(proxy.bootstrap, ALICE.0, ALICE.1).unwrap(),
        0
    );
}

#[test]
fn anonymous_clients_hold_a_bounded_number_of_sessions() {
    let mock = MockCluster::new(1).unwrap();
    let users = users_file("sasl-users-pending.toml", &[ALICE]);
    let listener = format!(
        "{}\nmax_unauthenticated_per_source = 2",
        terminate_with(&users)
    );
    let proxy = Proxy::start("sasl-pending.toml", &listener, &cluster_toml("main", &mock));
    // Both count once their handshakes are answered; a third is closed unanswered.
    let mut first = RawSasl::connect(proxy.bootstrap);
    let mut second = RawSasl::connect(proxy.bootstrap);
    assert_eq!(first.handshake("PLAIN"), 0);
    assert_eq!(second.handshake("PLAIN"), 0);
    let mut probe = RawSasl::connect(proxy.bootstrap);
    let refused = close_with(&proxy.sluice, "source_unauthenticated_limit");
    assert_eq!(refused["fault"], "downstream", "{refused}");
    assert!(probe.authenticate(b"\0alice\0x").is_err());
    assert_eq!(
        proxy.metric(
            "sluice_sasl_refused_total{listener=\"kafka\",reason=\"source_unauthenticated_limit\"}"
        ),
        1
    );
    // One leaves: once the proxy has seen it go, a newcomer gets in.
    drop(first);
    let left = close_with(&proxy.sluice, "client_closed_before_authentication");
    assert_eq!(left["fault"], "downstream", "{left}");
    assert_eq!(
        RawSasl::plain(proxy.bootstrap, ALICE.0, ALICE.1).unwrap(),
        0
    );
}

#[test]
fn oversized_and_extended_scram_messages_are_refused() {
    let mock = MockCluster::new(1).unwrap();
    let users = users_file("sasl-users-oversized.toml", &[ALICE]);
    let proxy = Proxy::start(
        "sasl-oversized.toml",
        &terminate_with(&users),
        &cluster_toml("main", &mock),
    );
    let huge = format!("n,,n=alice,r={}", "x".repeat(510 * 1024));
    for (message, why) in [
        (huge.as_str(), "too long"),
        ("n,,m=ext,n=alice,r=abc", "m="),
    ] {
        let mut client = RawSasl::connect(proxy.bootstrap);
        assert_eq!(client.handshake("SCRAM-SHA-512"), 0);
        let answer = client.authenticate(message.as_bytes()).unwrap();
        assert_eq!(answer.error_code, 58);
        let text = answer
            .error_message
            .map(|m| m.to_string())
            .unwrap_or_default();
        assert!(text.contains(why), "{text}");
        close_with(&proxy.sluice, "auth_failed");
    }
}
