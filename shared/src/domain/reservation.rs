//! What a task reserves on a host once its per-host overrides apply (the size fit checks).

use super::capacity::Reservation;
use super::overrides::{parse_cpu, parse_memory, TaskOverride};
use super::resources::TaskNeeds;

impl TaskNeeds {
    /// What one task takes with `overrides` applied, by ECS's rules for EC2 container instances:
    /// - CPU: the task-level size when set (the overrides' task-level `cpu` wins over the task
    ///   definition's); otherwise the sum of the containers' `cpu` (a container override's `cpu`
    ///   wins over its definition's; absent: 0).
    /// - Memory: likewise the task-level size, else the sum over containers of `memoryReservation`
    ///   when set, else `memory` (each after that container's overrides).
    /// - Each of CPU and memory is decided on its own: a task may size one at task level only.
    /// - Task-level sizes are ignored for Windows containers (as the RegisterTaskDefinition
    ///   reference says), so a task whose `runtimePlatform` names a Windows Server reserves its
    ///   containers' sums. A Windows task definition without `runtimePlatform` cannot be told
    ///   apart and is counted as Linux.
    /// - Host ports: every fixed host port of every container, split by protocol; `awsvpc` tasks
    ///   (ports on their own network interface) and `none` tasks reserve none.
    pub fn reservation(&self, overrides: Option<&TaskOverride>) -> Reservation {
        let windows = self.is_windows();
        let task_level = |over: Option<&str>, parse: fn(&str) -> Result<i64, String>, td| {
            if windows {
                return None;
            }
            over.and_then(|s| parse(s).ok()).or(td)
        };
        let task_cpu = task_level(
            overrides.and_then(|o| o.cpu.as_deref()),
            parse_cpu,
            self.cpu,
        );
        let task_memory = task_level(
            overrides.and_then(|o| o.memory.as_deref()),
            parse_memory,
            self.memory,
        );
        let mut cpu = 0i64;
        let mut memory = 0i64;
        for c in &self.containers {
            let over =
                overrides.and_then(|o| o.container_overrides.iter().find(|x| x.name == c.name));
            let c_cpu = over.and_then(|o| o.cpu).unwrap_or(c.cpu);
            let c_reservation = over
                .and_then(|o| o.memory_reservation)
                .or(c.memory_reservation);
            let c_memory = over.and_then(|o| o.memory).or(c.memory);
            cpu = cpu.saturating_add(c_cpu.max(0));
            memory = memory.saturating_add(c_reservation.or(c_memory).unwrap_or(0).max(0));
        }
        let mut out = Reservation {
            cpu: task_cpu.unwrap_or(cpu),
            memory: task_memory.unwrap_or(memory),
            ..Reservation::default()
        };
        let mode = self.network_mode.as_deref().map(str::to_ascii_lowercase);
        if !matches!(mode.as_deref(), Some("awsvpc" | "none")) {
            for p in self.containers.iter().flat_map(|c| &c.host_ports) {
                if p.port == 0 {
                    continue;
                }
                if p.protocol.eq_ignore_ascii_case("udp") {
                    out.udp_ports.insert(p.port);
                } else {
                    out.ports.insert(p.port);
                }
            }
        }
        out
    }
}
