//! The wasmtime engine every plugin shares: component model, epoch interruption, a
//! pooling allocator; the thread that ticks its epochs; and the linker with the host's
//! imports (WASI with nothing granted, wasi:http, `copra:plugin/host`).

use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings;
use super::state::PluginState;

/// Epochs tick every 10 ms; a call's CPU budget is counted in ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Bytes of a plugin's linear memory kept mapped between instances. Plugins are
/// instantiated for every call, so resetting their memory is on every call's path:
/// with `pagemap_scan` (Linux 6.7+) only the pages a call dirtied are reset, in place,
/// and the next instance takes no page faults. Bounded by what plugins actually touch.
const MEMORY_KEEP_RESIDENT: usize = 4 << 20;

/// The engine: async, epoch-interrupted, instances from a pool.
pub fn new_engine() -> anyhow::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(256)
        .total_core_instances(1024)
        .total_memories(512)
        .total_tables(512)
        .total_stacks(256)
        .max_memory_size(256 << 20)
        .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT)
        .table_keep_resident(64 << 10)
        .pagemap_scan(wasmtime::Enabled::Auto)
        // What does go back to the kernel goes in batches: one madvise, not one per drop.
        .decommit_batch_size(16);
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .wasm_component_model(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Ok(Engine::new(&config)?)
}

/// Tick the engine's epoch every [`EPOCH_TICK`] until the engine is dropped.
pub fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("copra-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .ok();
}

/// What a plugin may import: WASI (its context grants nothing but environment and a
/// captured stderr), outgoing wasi:http (checked per request), and the host's log.
pub fn new_linker(engine: &Engine) -> anyhow::Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    bindings::host::add_to_linker::<_, HasSelf<PluginState>>(&mut linker, |state| state)?;
    Ok(linker)
}
