//! sdash-testkit: the fleet simulator (`sdash-sim`), the benchmarks (`sdash-bench`), the
//! WebDriver client of the dashboard's browser tests, and the cross-process tests of the whole
//! pipeline. The test harness itself (real nats-server, fresh databases) is `testkit/harness`.

pub use sdash_harness as harness;

pub mod bench;
pub mod pipeline;
pub mod sim;
pub mod webdriver;

pub use sdash_collector::http::install_crypto_provider;
