//! Authorization decisions by resource type, operation and outcome, per listener: no principal
//! or resource name becomes a label, so the series are bounded by the rules' vocabulary.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{Operation, ResourceType};

const RESOURCES: usize = ResourceType::ALL.len();
const OPERATIONS: usize = Operation::ALL.len();

/// One listener's decision counters.
#[derive(Debug)]
pub struct AuthorizationMetrics {
    /// `[resource][operation][denied as usize]`.
    decisions: [[[AtomicU64; 2]; OPERATIONS]; RESOURCES],
}

impl Default for AuthorizationMetrics {
    fn default() -> Self {
        Self {
            decisions: std::array::from_fn(|_| {
                std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0)))
            }),
        }
    }
}

/// One series: how many decisions of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecisionCount {
    /// The resource type.
    pub resource: ResourceType,
    /// The operation asked for.
    pub operation: Operation,
    /// Allowed or denied.
    pub allowed: bool,
    /// How many.
    pub count: u64,
}

impl AuthorizationMetrics {
    /// Counts one decision.
    pub fn record(&self, resource: ResourceType, operation: Operation, allowed: bool) {
        self.decisions[resource.index()][operation.index()][usize::from(!allowed)]
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Every series with a count, in a stable order.
    pub fn snapshot(&self) -> Vec<DecisionCount> {
        let mut counts = Vec::new();
        for resource in ResourceType::ALL {
            for operation in Operation::ALL {
                for allowed in [true, false] {
                    let count = self.decisions[resource.index()][operation.index()]
                        [usize::from(!allowed)]
                    .load(Ordering::Relaxed);
                    if count > 0 {
                        counts.push(DecisionCount {
                            resource,
                            operation,
                            allowed,
                            count,
                        });
                    }
                }
            }
        }
        counts
    }
}
