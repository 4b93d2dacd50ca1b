//! The sans-IO state machines of a session: one frontend machine per client connection and one
//! backend machine per route. Drivers in `proxy-frontend` and `proxy-backend` do the I/O and feed
//! events in; every transition consumes the old state and returns the new one, or a typed
//! [`InvalidEvent`] naming the state and the event. Nothing here panics on a bad event.

mod backend;
mod frontend;

#[cfg(test)]
mod backend_tests;
#[cfg(test)]
mod frontend_tests;

pub use self::backend::{BackendEvent, BackendState};
pub use self::frontend::{FrontendEvent, FrontendMachine, FrontendState, Phases};

/// An event that is not legal in the machine's current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{machine} state machine: event {event} is not valid in state {state}")]
pub struct InvalidEvent {
    /// `"frontend"` or `"backend"`.
    pub machine: &'static str,
    /// The state the machine was in; it is left unchanged by the failed transition.
    pub state: &'static str,
    /// The event that was refused.
    pub event: &'static str,
}
