//! The read gate's cost on the hot path: the forwarding driver recomputes every pause reason
//! after each message (`set` for six reasons, then `is_open`), so this is paid per frame.
//!
//! ```sh
//! cargo bench -p proxy-core --bench read_gate -- --quick
//! ```

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use proxy_core::gate::{Direction, PauseReason, ReadGate, Side};

/// One recomputation as the driver does it: every reason set from the session's state.
fn recompute(gate: &mut ReadGate, queued: usize, deferred: bool) -> bool {
    gate.set(
        PauseReason::Backpressure(Side::Backend),
        queued >= 256 * 1024,
    );
    gate.set(
        PauseReason::Backpressure(Side::Client),
        queued >= 512 * 1024,
    );
    gate.set(PauseReason::StageDeferred(Direction::Request), deferred);
    gate.set(PauseReason::StageDeferred(Direction::Response), false);
    gate.set(PauseReason::Draining, false);
    gate.is_open()
}

fn read_gate(c: &mut Criterion) {
    let mut group = c.benchmark_group("read_gate");
    group.throughput(Throughput::Elements(1));
    group.bench_function("recompute_open", |b| {
        let mut gate = ReadGate::open();
        b.iter(|| recompute(&mut gate, black_box(1024), black_box(false)));
    });
    group.bench_function("recompute_flapping", |b| {
        let mut gate = ReadGate::open();
        let mut queued = 0usize;
        b.iter(|| {
            // Alternates across the high watermark, so reasons are set and cleared.
            queued = if queued == 0 { 300 * 1024 } else { 0 };
            recompute(&mut gate, black_box(queued), black_box(queued > 0))
        });
    });
    group.finish();
}

criterion_group!(benches, read_gate);
criterion_main!(benches);
