//! Plain values the session model is made of: identifiers, addresses, prerequisites, the two
//! sides of a session and whose fault a failure was.
//!
//! A leaf: these types depend on nothing else in the crate, so the modules that use them
//! (context, routing, the state machines, close reasons) never import each other in a circle.

mod backend;
mod ids;
mod prerequisites;
mod side;

pub use self::backend::{BackendAddr, BackendTarget};
pub use self::ids::{RouteId, SessionId};
pub use self::prerequisites::Prerequisites;
pub use self::side::{Direction, Fault, Side};
