//! The sockets the config binds must not take one another's port: two listeners on one port
//! (`0.0.0.0:9192` and `127.0.0.1:9192` included), or `admin.bind` on a listener's port. A
//! port-per-broker listener's broker ports are checked in [`super::kafka_ports`].
//!
//! Addresses on different specific IPs do not collide; an unspecified one (`0.0.0.0`, `::`)
//! collides with every address. Port 0 asks the kernel for a free port, so it never collides
//! (but the same address twice is still refused, as written twice by mistake).

use std::net::{IpAddr, SocketAddr};

use super::validate::Validator;
use super::{AdminConfig, path};

/// Whether sockets on `a` and on `b` could claim the same port.
pub(super) fn may_share(a: IpAddr, b: IpAddr) -> bool {
    a == b || a.is_unspecified() || b.is_unspecified()
}

/// Whether sockets bound to `a` and to `b` would want the same port.
pub(super) fn collide(a: SocketAddr, b: SocketAddr) -> bool {
    a == b || (a.port() != 0 && a.port() == b.port() && may_share(a.ip(), b.ip()))
}

// === impl Validator ===

impl Validator {
    /// Reports an `[admin]` bind on a listener's port (any listener whose `bind` parsed).
    pub(super) fn admin_port_collisions(&mut self, admin: Option<&AdminConfig>) {
        // Port 0 asks the kernel for a free port: never one a listener has.
        let Some(admin) = admin.filter(|admin| admin.bind.port() != 0) else {
            return;
        };
        let taken: Vec<String> = self
            .binds
            .iter()
            .filter(|(bind, _)| collide(admin.bind, *bind))
            .map(|(bind, owner)| format!("{owner} (bind = \"{bind}\")"))
            .collect();
        for owner in taken {
            self.error(
                path::key("admin", "bind"),
                format!("{} takes the port of {owner}", admin.bind),
            );
        }
    }
}
