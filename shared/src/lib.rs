//! daemon-scheduler core: the domain, the pure planner, the ports and their AWS adapters, and the
//! use cases every Lambda function runs. See docs/design.md.

pub mod adapters;
pub mod clock;
pub mod domain;
pub mod error;
pub mod executor;
/// In-process fakes of the ports (tests and fault injection only).
#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
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
mod convergence_tests;
#[cfg(test)]
mod launch_deadline_tests;
#[cfg(test)]
mod placement_properties;
#[cfg(test)]
mod sim;
