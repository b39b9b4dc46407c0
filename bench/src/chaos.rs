//! `bench chaos`: chaos at volume (issue 10) as the "Chaos at volume" section of
//! docs/benchmarks.md — the run of `shared::chaos` on the in-process fakes at a bigger size than
//! `cargo test`'s (BENCH_CHAOS_HOSTS, default 1,000 hosts; BENCH_CHAOS_EVENTS, default 30,000
//! deliveries), and the run of `integration_tests::moto_chaos` against moto with the real
//! adapters (BENCH_CHAOS_MOTO_EVENTS, default 1,000). Seeded by CHAOS_SEED (else random, and
//! printed). The runs check their invariants as the tests do: a broken one ends the bench.

use integration_tests::moto_chaos;
use integration_tests::shared::chaos::{self, seed_from_env, Config};
use integration_tests::World;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name}")))
}

/// The section, both runs measured here.
pub fn run() -> String {
    let seed = seed_from_env();
    let fakes = Config {
        hosts: env_or("BENCH_CHAOS_HOSTS", 1000),
        events: env_or("BENCH_CHAOS_EVENTS", 30_000),
        ..Config::full(seed)
    };
    eprintln!(
        "bench: chaos on the fakes ({} hosts, {} events, CHAOS_SEED={seed})",
        fakes.hosts, fakes.events
    );
    // One thread: the simulation holds the product's clock in a thread-local.
    let on_fakes = integration_tests::shared::sim::block_on(chaos::run(fakes));
    let moto = moto_chaos::Config {
        events: env_or("BENCH_CHAOS_MOTO_EVENTS", 1000),
        ..moto_chaos::Config::standard(seed)
    };
    eprintln!(
        "bench: chaos on moto ({} hosts, {} events)",
        moto.hosts, moto.events
    );
    let on_moto = crate::runtime().block_on(async {
        let w = World::new().await;
        moto_chaos::run(&w, moto).await
    });
    format!(
        "{}\n{}",
        on_fakes.markdown(&format!(
            "On the in-process fakes: {} hosts, {} events",
            fakes.hosts, fakes.events
        )),
        on_moto.markdown(&format!(
            "On moto, the real adapters: {} hosts, {} events",
            moto.hosts, moto.events
        ))
    )
}
