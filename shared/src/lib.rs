//! daemon-scheduler core: the domain, the pure planner, the ports and their AWS adapters, and the
//! use cases every Lambda function runs. See docs/design.md.

pub mod adapters;
/// Chaos at volume over the simulated cluster (issue 10): the run, its invariants, its figures.
#[cfg(any(test, feature = "fakes"))]
pub mod chaos;
pub mod clock;
pub mod domain;
pub mod error;
pub mod executor;
/// In-process fakes of the ports (tests and fault injection only).
#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
/// Fault injection over the ports: AWS's throttling, 5xx and latency on the fakes.
#[cfg(any(test, feature = "fakes"))]
pub mod faulty;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod planner;
pub mod ports;
pub mod runtime;
pub mod services;
pub mod work;

pub use error::{Error, Result};

#[cfg(test)]
mod alarm_gate_tests;
#[cfg(test)]
mod chaos_tests;
#[cfg(test)]
mod convergence_tests;
#[cfg(test)]
mod launch_deadline_tests;
#[cfg(test)]
mod placement_properties;
#[cfg(test)]
mod rollout_properties;
/// A simulated cluster over the fakes: ECS's events as ECS would emit them (tests, benches).
#[cfg(any(test, feature = "fakes"))]
pub mod sim;
