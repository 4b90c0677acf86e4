//! `copra engine-check`: start a media engine as a job would and have it try what its
//! confinement must refuse (reading outside its directory, sockets, processes, programs,
//! signalling or tracing the server), then print what held. Exits non-zero if anything
//! that should be refused was not.

use anyhow::Context;

use crate::config::Limits;
use crate::confined::Engine;

pub async fn engine_check(limits: &Limits, json: bool) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir().context("no temporary directory")?;
    let (outside, writable) = (scratch.path().join("outside"), scratch.path().join("work"));
    std::fs::create_dir(&writable)?;
    std::fs::write(&outside, b"not for the engine")?;
    let (landlock, checks) = Engine::new(limits).self_check(&outside, &writable).await?;
    let failed = checks.iter().filter(|c| !c.refused).count();
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({"landlock": landlock, "checks": checks}))?);
    } else {
        println!("Landlock: {landlock} (full: the engine reads only its input and writes only its work directory)");
        for check in &checks {
            let mark = if check.refused { "refused" } else { "ALLOWED" };
            println!("  {mark:8} {}: {}", check.what, check.detail);
        }
    }
    anyhow::ensure!(failed == 0, "{failed} of {} checks were not refused", checks.len());
    Ok(())
}
