//! The only `bindgen!` calls in the host: one per plugin world. The shared `types` and
//! `host` interfaces are generated once (by the storage world) and reused by the others.

pub mod storage {
    wasmtime::component::bindgen!({
        world: "storage-plugin",
        path: "../wit",
        exports: { default: async },
    });
}

pub mod format {
    wasmtime::component::bindgen!({
        world: "format-plugin",
        path: "../wit",
        exports: { default: async },
        with: {
            "copra:plugin/types": super::storage::copra::plugin::types,
            "copra:plugin/host": super::storage::copra::plugin::host,
        },
    });
}

pub mod condition {
    wasmtime::component::bindgen!({
        world: "condition-plugin",
        path: "../wit",
        exports: { default: async },
        with: {
            "copra:plugin/types": super::storage::copra::plugin::types,
            "copra:plugin/host": super::storage::copra::plugin::host,
        },
    });
}

pub mod notifier {
    wasmtime::component::bindgen!({
        world: "notifier-plugin",
        path: "../wit",
        exports: { default: async },
        with: {
            "copra:plugin/types": super::storage::copra::plugin::types,
            "copra:plugin/host": super::storage::copra::plugin::host,
        },
    });
}

pub use storage::copra::plugin::host;
pub use storage::copra::plugin::types;
