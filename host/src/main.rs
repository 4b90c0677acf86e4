//! `copra`: the server, the worker and the operator's command line (`copra::app`).

fn main() -> anyhow::Result<()> {
    copra::app::main()
}
