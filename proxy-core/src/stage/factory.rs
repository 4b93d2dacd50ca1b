//! Building stages from configuration: a registry of stage kinds, each with a factory.
//!
//! The binary and library users compose pipelines the same way: look a kind up in a
//! [`StageRegistry`], build its [`NewStage`] factory once per listener from the options table,
//! and let the factory make one [`Stage`] per session.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::{Protocol, Stage, StageOptions};
use crate::codec::RawTcp;
use crate::context::SessionContext;

/// Makes one stage per session; built once per listener.
pub trait NewStage<P: Protocol>: Send + Sync + 'static {
    /// The stage for a new session.
    fn new_stage(&self, cx: &SessionContext) -> Box<dyn Stage<P>>;

    /// The factory itself, for an embedder that looks for a kind's shared state (a quota's
    /// metrics, say) behind the `Arc<dyn NewStage>` a registry built; `None` unless the kind
    /// offers it.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

/// A stage kind's configuration could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StageConfigError {
    /// No stage of this kind is registered.
    #[error("unknown stage kind {kind:?} (known: {known})")]
    UnknownKind {
        /// The kind asked for.
        kind: String,
        /// The registered kinds, comma-separated.
        known: String,
    },
    /// An option the stage does not have.
    #[error("{key}: unknown option")]
    UnknownOption {
        /// The option's key.
        key: String,
    },
    /// An option the stage needs and did not get.
    #[error("{key}: required option is missing")]
    MissingOption {
        /// The option's key.
        key: &'static str,
    },
    /// An option with an unusable value.
    #[error("{key}: {message}")]
    InvalidOption {
        /// The option's key.
        key: &'static str,
        /// What was wrong.
        message: String,
    },
}

/// Builds a factory from a stage's options.
pub type BuildStage<P> =
    fn(&mut StageOptions<'_>) -> Result<Arc<dyn NewStage<P>>, StageConfigError>;

/// The stage kinds available to one protocol's listeners.
///
/// A kind is a name and a [`BuildStage`] function that reads the kind's options and returns
/// its per-listener [`NewStage`] factory; the factory makes one [`Stage`] per session.
///
/// ```
/// use std::net::SocketAddr;
/// use std::sync::Arc;
/// use bytes::Bytes;
/// use proxy_core::codec::RawTcp;
/// use proxy_core::route::Prerequisites;
/// use proxy_core::stage::{
///     Flow, NewStage, Stage, StageConfigError, StageContext, StageOptions, raw_tcp_registry,
/// };
/// use proxy_core::SessionContext;
///
/// /// Prefixes every chunk sent to the client. Options are read once per listener...
/// struct NewTag {
///     prefix: Bytes,
/// }
///
/// /// ...and each session gets its own stage.
/// struct Tag {
///     prefix: Bytes,
/// }
///
/// impl NewStage<RawTcp> for NewTag {
///     fn new_stage(&self, _cx: &SessionContext) -> Box<dyn Stage<RawTcp>> {
///         Box::new(Tag { prefix: self.prefix.clone() })
///     }
/// }
///
/// impl Stage<RawTcp> for Tag {
///     fn kind(&self) -> &'static str {
///         "tag"
///     }
///
///     fn on_response(&mut self, msg: Bytes, _cx: &mut StageContext<'_>) -> Flow<Bytes, Bytes> {
///         Flow::Forward([&self.prefix[..], &msg[..]].concat().into())
///     }
/// }
///
/// fn build(options: &mut StageOptions<'_>) -> Result<Arc<dyn NewStage<RawTcp>>, StageConfigError> {
///     let prefix = options
///         .string("prefix")?
///         .ok_or(StageConfigError::MissingOption { key: "prefix" })?;
///     Ok(Arc::new(NewTag { prefix: Bytes::copy_from_slice(prefix.as_bytes()) }))
/// }
///
/// // The built-in raw TCP kinds (`throttle`), and ours.
/// let mut registry = raw_tcp_registry();
/// registry.register("tag", build);
/// assert_eq!(registry.kinds().collect::<Vec<_>>(), ["tag", "throttle"]);
///
/// // Per listener: its `[[listener.stage]]` table, without `kind`.
/// let factory = registry.build("tag", &toml::from_str(r#"prefix = "> ""#)?)?;
/// // Per session:
/// let addr = SocketAddr::from(([127, 0, 0, 1], 1));
/// let mut cx = SessionContext::new("doc".into(), addr, addr, Prerequisites::TCP, Arc::default());
/// let mut stage = factory.new_stage(&cx);
/// let flow = stage.on_response(Bytes::from_static(b"hi"), &mut StageContext::new(&mut cx));
/// assert!(matches!(flow, Flow::Forward(msg) if msg == "> hi"));
///
/// // An option nobody reads (a typo, usually) is an error that names it.
/// let typo = toml::from_str("prefix = '> '\nprefx = '!'")?;
/// let err = registry.build("tag", &typo).err().map(|e| e.to_string());
/// assert_eq!(err.as_deref(), Some("prefx: unknown option"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct StageRegistry<P: Protocol> {
    kinds: BTreeMap<&'static str, BuildStage<P>>,
}

impl<P: Protocol> fmt::Debug for StageRegistry<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.kinds.keys()).finish()
    }
}

impl<P: Protocol> Default for StageRegistry<P> {
    fn default() -> Self {
        Self {
            kinds: BTreeMap::new(),
        }
    }
}

// === impl StageRegistry ===

impl<P: Protocol> StageRegistry<P> {
    /// A registry with no kinds.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `kind` available, built by `build`; a later registration of the same kind wins.
    pub fn register(&mut self, kind: &'static str, build: BuildStage<P>) -> &mut Self {
        self.kinds.insert(kind, build);
        self
    }

    /// The registered kinds, sorted.
    pub fn kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.kinds.keys().copied()
    }

    /// Builds the factory for `kind` from `options`; unknown options are an error.
    pub fn build(
        &self,
        kind: &str,
        options: &toml::Table,
    ) -> Result<Arc<dyn NewStage<P>>, StageConfigError> {
        let build = self
            .kinds
            .get(kind)
            .ok_or_else(|| StageConfigError::UnknownKind {
                kind: kind.to_owned(),
                known: self.kinds().collect::<Vec<_>>().join(", "),
            })?;
        let mut options = StageOptions::new(options);
        let factory = build(&mut options)?;
        options.finish()?;
        Ok(factory)
    }
}

/// The built-in stages for raw TCP listeners.
pub fn raw_tcp_registry() -> StageRegistry<RawTcp> {
    let mut registry = StageRegistry::new();
    registry.register(super::throttle::KIND, super::throttle::build);
    registry
}
