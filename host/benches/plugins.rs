//! Plugin host costs on the real first-party plugins (`scripts/build-plugins.sh` first):
//! warm call, new store + instantiate, one plugin use as a job does it, start-up with a
//! warm compile cache, and hot-reload latency (always: it makes its new version itself).
//! `cargo bench -p copra --bench plugins`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use copra::plugins::Plugins;
use copra::types::MediaInfo;
use criterion::{Criterion, criterion_group, criterion_main};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn input() -> MediaInfo {
    MediaInfo {
        width: 1920,
        height: 1080,
        duration: 60.0,
        fps: 30.0,
        has_video: true,
        has_audio: true,
        video_codec: "h264".into(),
        audio_codec: "aac".into(),
        sample_rate: 48000,
        channels: 2,
        ..MediaInfo::default()
    }
}

const CONDITION: &str = "({{ input.rotation }} = 0 or {{ input.rotation }} = 180) and {{ input.width }} > {{ input.height }}";

fn bench(c: &mut Criterion) {
    // A current-thread runtime: `block_on` adds the least on top of what is measured.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    // As the server runs: calls are timed into the Prometheus recorder.
    copra::metrics::handle();
    let cache = tempfile::tempdir().expect("tempdir");
    let dist = root().join("plugins/dist");
    let plugins = rt.block_on(Plugins::start(&dist, cache.path(), HashMap::new(), Default::default())).expect("plugins load");
    let info = input();

    let mut warm = rt.block_on(plugins.condition_instance()).expect("instance");
    c.bench_function("condition: warm call (trivial expression: host + ABI cost)", |b| {
        b.iter(|| rt.block_on(warm.evaluate("true", &info)).expect("evaluates"))
    });
    c.bench_function("condition: warm call (the Coconut reference's landscape expression)", |b| {
        b.iter(|| rt.block_on(warm.evaluate(CONDITION, &info)).expect("evaluates"))
    });
    c.bench_function("condition: new store + instantiate", |b| b.iter(|| rt.block_on(plugins.condition_instance()).expect("instance")));
    c.bench_function("condition: one use as a job does it (store + instantiate + call + drop)", |b| {
        b.iter(|| rt.block_on(plugins.condition_evaluate(CONDITION, &info)).expect("evaluates"))
    });
    c.bench_function("format: one use as a job does it (plan mp4:720p)", |b| {
        b.iter(|| rt.block_on(plugins.format_plan("mp4:720p::quality=4", "{}", &info)).expect("plans"))
    });
    c.bench_function("start-up: load 4 plugins from a warm compile cache", |b| {
        b.iter(|| rt.block_on(Plugins::start(&dist, cache.path(), HashMap::new(), Default::default())).expect("plugins load"))
    });

    // Hot reload, once (it includes the watcher's settle time and a compile): replace
    // condition-expr with a new version of itself (the same component with a custom
    // section added, so a new hash and an uncached compile), renamed into place as an
    // operator's deploy does, and time until calls go to the new version.
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["storage-s3", "format-video", "condition-expr"] {
        std::fs::copy(dist.join(format!("{name}.wasm")), dir.path().join(format!("{name}.wasm"))).expect("copy");
    }
    let mut reloads = Vec::new();
    let cold_cache = tempfile::tempdir().expect("tempdir");
    let live = rt.block_on(Plugins::start(dir.path(), cold_cache.path(), HashMap::new(), Default::default())).expect("plugins load");
    let _watcher = rt.block_on(async { live.watch() }).expect("watch");
    let version = |live: &Plugins| live.list().iter().find(|p| &*p.name == "condition-expr").map(|p| p.sha256.clone());
    for round in 0..5u8 {
        let before = version(&live);
        let mut bytes = std::fs::read(dist.join("condition-expr.wasm")).expect("read");
        bytes.extend(custom_section("copra-bench", &[round]));
        let staged = dir.path().join(".swap");
        std::fs::write(&staged, &bytes).expect("write");
        let written = Instant::now();
        std::fs::rename(&staged, dir.path().join("condition-expr.wasm")).expect("rename");
        while version(&live) == before {
            assert!(written.elapsed() < Duration::from_secs(30), "hot reload never happened");
            // Wait inside the runtime: the watcher's task runs only while it is driven.
            rt.block_on(async { tokio::time::sleep(Duration::from_millis(1)).await });
        }
        reloads.push(written.elapsed().as_secs_f64() * 1000.0);
        rt.block_on(live.condition_evaluate(CONDITION, &info)).expect("the new version evaluates");
    }
    reloads.sort_by(f64::total_cmp);
    println!(
        "hot reload: file renamed into place -> calls go to the new version (uncached compile included): median {:.0} ms, {:.0}-{:.0} ms over {} reloads",
        reloads[reloads.len() / 2],
        reloads[0],
        reloads[reloads.len() - 1],
        reloads.len()
    );
}

/// A WebAssembly custom section (id 0): valid anywhere in a component, ignored by it.
fn custom_section(name: &str, payload: &[u8]) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            out.push(if n == 0 { byte } else { byte | 0x80 });
            if n == 0 {
                return;
            }
        }
    }
    let mut body = Vec::new();
    leb(name.len(), &mut body);
    body.extend(name.as_bytes());
    body.extend(payload);
    let mut section = vec![0u8];
    leb(body.len(), &mut section);
    section.extend(body);
    section
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
