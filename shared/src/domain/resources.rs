//! What a task needs of a host: CPU, memory, host ports, platform (what a host has: capacity.rs).
//!
//! The rules follow what ECS itself applies when it places a task on an EC2 container instance,
//! so that placement here agrees with ECS's: a host we judge to fit is one ECS takes the task on.

use serde::{Deserialize, Serialize};

pub use super::capacity::{Reservation, ResourceEntry, Resources, CPU, MEMORY, PORTS, PORTS_UDP};
use super::host::HostFacts;

/// A host port a container maps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortNeed {
    pub port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

/// What one container of a task definition reserves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerNeeds {
    pub name: String,
    #[serde(default)]
    pub cpu: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<i64>,
    /// Fixed host ports: a port mapping's `hostPort`, or in `host` network mode its
    /// `containerPort`. A dynamic host port (bridge mode, `hostPort` 0 or absent) is not listed,
    /// and a port 0 here is ignored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_ports: Vec<PortNeed>,
}

/// A container instance attribute a task definition requires (`requiresAttributes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequiredAttribute {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// What a task definition needs of a host (read from DescribeTaskDefinition when a revision is
/// written, so placement decides without calling ECS).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskNeeds {
    /// Task-level CPU units, when the task definition sets them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<i64>,
    /// Task-level memory (MiB), when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerNeeds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    /// `runtimePlatform.operatingSystemFamily` (LINUX, WINDOWS_SERVER_2022_CORE, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_family: Option<String>,
    /// `runtimePlatform.cpuArchitecture` (X86_64, ARM64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_architecture: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires_attributes: Vec<RequiredAttribute>,
}

/// Container instance attributes the ECS agent sets.
pub const OS_TYPE_ATTRIBUTE: &str = "ecs.os-type";
pub const OS_FAMILY_ATTRIBUTE: &str = "ecs.os-family";
pub const CPU_ARCHITECTURE_ATTRIBUTE: &str = "ecs.cpu-architecture";
/// The `ecs.os-family` a Windows agent sets when it cannot tell the release.
const GENERIC_WINDOWS_FAMILY: &str = "windows";

/// What a host lacking `ecs.cpu-architecture` is taken to be: ECS's default for EC2 instances
/// registered by agents that predate the attribute, all of them x86_64 (ARM64 instances came
/// with agents that set it).
pub const DEFAULT_CPU_ARCHITECTURE: &str = "x86_64";
/// What a host lacking `ecs.os-type` is taken to be: agents that predate the attribute ran on
/// Linux only (Windows support came with it).
pub const DEFAULT_OS_TYPE: &str = "linux";

impl TaskNeeds {
    /// Whether `runtimePlatform.operatingSystemFamily` names a Windows Server.
    pub fn is_windows(&self) -> bool {
        self.os_family
            .as_deref()
            .is_some_and(|f| f.to_ascii_uppercase().starts_with("WINDOWS"))
    }

    /// Operating system, CPU architecture and required attributes against the host, in that
    /// order. The OS family maps to `ecs.os-type` (LINUX ↔ linux, WINDOWS_SERVER_* ↔ windows);
    /// where the host also has a specific `ecs.os-family`, that must equal the family. A host
    /// without `ecs.os-type` is taken as linux and one without
    /// `ecs.cpu-architecture` as x86_64 (see [`DEFAULT_OS_TYPE`], [`DEFAULT_CPU_ARCHITECTURE`]).
    /// Values compare case-insensitively.
    pub fn platform_fit(&self, host: &dyn HostFacts) -> Result<(), String> {
        let value = |name: &str| host.attribute(name).flatten();
        if let Some(family) = self.os_family.as_deref() {
            let wanted_type = if family.eq_ignore_ascii_case("LINUX") {
                Some("linux")
            } else if self.is_windows() {
                Some("windows")
            } else {
                None
            };
            let host_type = value(OS_TYPE_ATTRIBUTE).unwrap_or(DEFAULT_OS_TYPE);
            if let Some(wanted) = wanted_type {
                if !host_type.eq_ignore_ascii_case(wanted) {
                    return Err(format!("needs {family}, host is {host_type}"));
                }
            }
            // The Windows agent says plain "windows" when it cannot read the release: then the
            // os-type above decides alone.
            if let Some(host_family) = value(OS_FAMILY_ATTRIBUTE)
                .filter(|f| !f.eq_ignore_ascii_case(GENERIC_WINDOWS_FAMILY))
            {
                if !host_family.eq_ignore_ascii_case(family) {
                    return Err(format!("needs {family}, host is {host_family}"));
                }
            }
        }
        if let Some(arch) = self.cpu_architecture.as_deref() {
            let host_arch = value(CPU_ARCHITECTURE_ATTRIBUTE).unwrap_or(DEFAULT_CPU_ARCHITECTURE);
            if !host_arch.eq_ignore_ascii_case(arch) {
                return Err(format!("needs {arch}, host is {host_arch}"));
            }
        }
        for required in &self.requires_attributes {
            let name = required.name.as_str();
            match (host.attribute(name), required.value.as_deref()) {
                (None, None) => return Err(format!("needs attribute {name}, host has none")),
                (None, Some(v)) => {
                    return Err(format!("needs attribute {name}={v}, host has none"))
                }
                (Some(_), None) => {}
                (Some(None), Some(v)) => {
                    return Err(format!(
                        "needs attribute {name}={v}, host has {name} without a value"
                    ))
                }
                (Some(Some(have)), Some(v)) => {
                    if have != v {
                        return Err(format!(
                            "needs attribute {name}={v}, host has {name}={have}"
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::domain::host::Attributes;
    use crate::domain::overrides::{ContainerOverride, TaskOverride};
    use proptest::prelude::*;

    struct FakeHost {
        attributes: Attributes,
    }

    impl FakeHost {
        fn with(attrs: &[(&str, Option<&str>)]) -> Self {
            Self {
                attributes: attrs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.map(str::to_owned)))
                    .collect(),
            }
        }
    }

    impl HostFacts for FakeHost {
        fn container_instance_arn(&self) -> &str {
            "arn:aws:ecs:us-east-1:123456789012:container-instance/c/abc"
        }
        fn attribute(&self, name: &str) -> Option<Option<&str>> {
            self.attributes.get(name).map(|v| v.as_deref())
        }
        fn ec2_instance_id(&self) -> Option<&str> {
            Some("i-0123456789abcdef0")
        }
        fn agent_connected(&self) -> bool {
            true
        }
        fn agent_version(&self) -> Option<&str> {
            Some("1.90.0")
        }
    }

    fn container(
        name: &str,
        cpu: i64,
        memory: Option<i64>,
        reservation: Option<i64>,
    ) -> ContainerNeeds {
        ContainerNeeds {
            name: name.into(),
            cpu,
            memory,
            memory_reservation: reservation,
            host_ports: vec![],
        }
    }

    fn port(port: u16, protocol: &str) -> PortNeed {
        PortNeed {
            port,
            protocol: protocol.into(),
        }
    }

    fn ports(list: &[u16]) -> BTreeSet<u16> {
        list.iter().copied().collect()
    }

    fn two_containers() -> TaskNeeds {
        TaskNeeds {
            containers: vec![
                container("app", 256, Some(512), Some(256)),
                container("sidecar", 128, Some(128), None),
            ],
            ..TaskNeeds::default()
        }
    }

    // --- Resources ---

    #[test]
    fn resources_from_event_json() {
        let json = serde_json::json!([
            {"name": "CPU", "type": "INTEGER", "integerValue": 2048, "doubleValue": 0.0, "longValue": 0},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": 7680},
            {"name": "PORTS", "type": "STRINGSET", "stringSetValue": ["22", "2376", "2375", "51678", "51679"]},
            {"name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": []},
            {"name": "GPU", "type": "STRINGSET", "stringSetValue": ["gpu-1"]},
            {"name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": null}
        ]);
        let entries: Vec<ResourceEntry> = serde_json::from_value(json).unwrap();
        let r = Resources::from_entries(&entries);
        assert_eq!(r.cpu, 2048);
        assert_eq!(r.memory, 7680);
        assert_eq!(r.ports, ports(&[22, 2375, 2376, 51678, 51679]));
        assert!(r.udp_ports.is_empty());
    }

    #[test]
    fn resources_from_named_ranges_and_garbage() {
        let tcp = vec![
            "8000-8002".to_owned(),
            "x".to_owned(),
            "70000".to_owned(),
            " 53 ".to_owned(),
        ];
        let udp = vec!["53".to_owned(), "9-8".to_owned()];
        let r = Resources::from_named([
            ("CPU", None, &[][..]),
            ("MEMORY", Some(100), &[][..]),
            ("PORTS", None, tcp.as_slice()),
            ("PORTS_UDP", None, udp.as_slice()),
        ]);
        assert_eq!(r.cpu, 0);
        assert_eq!(r.memory, 100);
        assert_eq!(r.ports, ports(&[53, 8000, 8001, 8002]));
        assert_eq!(r.udp_ports, ports(&[53]));
    }

    // --- reservation ---

    #[test]
    fn sums_containers_memory_reservation_before_memory() {
        let r = two_containers().reservation(None);
        assert_eq!(r.cpu, 384);
        // app reserves its memoryReservation (256), sidecar its memory (128).
        assert_eq!(r.memory, 384);
        assert!(r.ports.is_empty() && r.udp_ports.is_empty());
    }

    #[test]
    fn container_without_any_size_reserves_nothing() {
        let needs = TaskNeeds {
            containers: vec![container("a", 0, None, None)],
            ..TaskNeeds::default()
        };
        assert_eq!(needs.reservation(None), Reservation::default());
    }

    #[test]
    fn task_level_wins_over_containers() {
        let needs = TaskNeeds {
            cpu: Some(1024),
            memory: Some(2048),
            ..two_containers()
        };
        let r = needs.reservation(None);
        assert_eq!((r.cpu, r.memory), (1024, 2048));
    }

    #[test]
    fn task_level_decided_per_dimension() {
        let needs = TaskNeeds {
            memory: Some(2048),
            ..two_containers()
        };
        let r = needs.reservation(None);
        assert_eq!((r.cpu, r.memory), (384, 2048));
        let needs = TaskNeeds {
            cpu: Some(1024),
            ..two_containers()
        };
        let r = needs.reservation(None);
        assert_eq!((r.cpu, r.memory), (1024, 384));
    }

    #[test]
    fn task_level_overrides_win_over_task_definition_and_containers() {
        let needs = TaskNeeds {
            cpu: Some(1024),
            memory: Some(2048),
            ..two_containers()
        };
        let o = TaskOverride {
            cpu: Some("2 vCPU".into()),
            memory: Some("0.5 GB".into()),
            ..TaskOverride::default()
        };
        let r = needs.reservation(Some(&o));
        assert_eq!((r.cpu, r.memory), (2048, 512));
        // Also where the task definition has no task-level size.
        let r = two_containers().reservation(Some(&o));
        assert_eq!((r.cpu, r.memory), (2048, 512));
    }

    #[test]
    fn container_overrides_apply_to_the_named_container() {
        let o = TaskOverride {
            container_overrides: vec![ContainerOverride {
                name: "sidecar".into(),
                cpu: Some(512),
                memory_reservation: Some(64),
                ..ContainerOverride::default()
            }],
            ..TaskOverride::default()
        };
        let r = two_containers().reservation(Some(&o));
        assert_eq!(r.cpu, 256 + 512);
        assert_eq!(r.memory, 256 + 64);

        // memory overridden where the definition has a memoryReservation: the reservation stays.
        let o = TaskOverride {
            container_overrides: vec![ContainerOverride {
                name: "app".into(),
                memory: Some(4096),
                ..ContainerOverride::default()
            }],
            ..TaskOverride::default()
        };
        assert_eq!(two_containers().reservation(Some(&o)).memory, 256 + 128);

        // memory overridden where only memory was set: the new memory counts.
        let o = TaskOverride {
            container_overrides: vec![ContainerOverride {
                name: "sidecar".into(),
                memory: Some(1000),
                ..ContainerOverride::default()
            }],
            ..TaskOverride::default()
        };
        assert_eq!(two_containers().reservation(Some(&o)).memory, 256 + 1000);
    }

    #[test]
    fn container_overrides_do_not_matter_under_task_level_size() {
        let needs = TaskNeeds {
            cpu: Some(1024),
            memory: Some(2048),
            ..two_containers()
        };
        let o = TaskOverride {
            container_overrides: vec![ContainerOverride {
                name: "app".into(),
                cpu: Some(4096),
                memory_reservation: Some(8192),
                ..ContainerOverride::default()
            }],
            ..TaskOverride::default()
        };
        let r = needs.reservation(Some(&o));
        assert_eq!((r.cpu, r.memory), (1024, 2048));
    }

    #[test]
    fn windows_ignores_task_level_size() {
        let needs = TaskNeeds {
            cpu: Some(1024),
            memory: Some(2048),
            os_family: Some("WINDOWS_SERVER_2022_CORE".into()),
            ..two_containers()
        };
        let o = TaskOverride {
            cpu: Some("4096".into()),
            ..TaskOverride::default()
        };
        let r = needs.reservation(Some(&o));
        assert_eq!((r.cpu, r.memory), (384, 384));
    }

    fn with_ports(mode: Option<&str>) -> TaskNeeds {
        TaskNeeds {
            network_mode: mode.map(str::to_owned),
            containers: vec![
                ContainerNeeds {
                    host_ports: vec![port(8080, "tcp"), port(53, "udp"), port(0, "tcp")],
                    ..container("app", 0, Some(64), None)
                },
                ContainerNeeds {
                    host_ports: vec![port(53, "tcp"), port(9000, "UDP")],
                    ..container("sidecar", 0, Some(64), None)
                },
            ],
            ..TaskNeeds::default()
        }
    }

    #[test]
    fn bridge_and_host_reserve_fixed_host_ports_by_protocol() {
        for mode in [None, Some("bridge"), Some("host"), Some("HOST")] {
            let r = with_ports(mode).reservation(None);
            assert_eq!(r.ports, ports(&[53, 8080]), "{mode:?}");
            assert_eq!(r.udp_ports, ports(&[53, 9000]), "{mode:?}");
        }
    }

    #[test]
    fn awsvpc_and_none_reserve_no_host_ports() {
        for mode in ["awsvpc", "none"] {
            let r = with_ports(Some(mode)).reservation(None);
            assert!(r.ports.is_empty() && r.udp_ports.is_empty(), "{mode}");
            assert_eq!(r.memory, 128);
        }
    }

    // --- fits ---

    fn host(cpu: i64, memory: i64, tcp: &[u16], udp: &[u16]) -> Resources {
        Resources {
            cpu,
            memory,
            ports: ports(tcp),
            udp_ports: ports(udp),
        }
    }

    fn need(cpu: i64, memory: i64, tcp: &[u16], udp: &[u16]) -> Reservation {
        Reservation {
            cpu,
            memory,
            ports: ports(tcp),
            udp_ports: ports(udp),
        }
    }

    #[test]
    fn fits_when_everything_is_free() {
        let n = need(512, 512, &[8080], &[53]);
        assert_eq!(n.fits(&host(512, 512, &[22], &[54]), None), Ok(()));
    }

    #[test]
    fn misfit_reasons() {
        let n = need(1024, 512, &[8080], &[53]);
        assert_eq!(
            n.fits(&host(2048, 300, &[], &[]), None),
            Err("needs 512 MiB memory, 300 free".into())
        );
        assert_eq!(
            n.fits(&host(512, 4096, &[], &[]), None),
            Err("needs 1024 CPU units, 512 free".into())
        );
        assert_eq!(
            n.fits(&host(2048, 4096, &[22, 8080], &[]), None),
            Err("needs host port 8080/tcp, in use".into())
        );
        assert_eq!(
            n.fits(&host(2048, 4096, &[53], &[53]), None),
            Err("needs host port 53/udp, in use".into())
        );
    }

    #[test]
    fn first_reason_in_fixed_order() {
        let n = need(1024, 512, &[80, 8080], &[53]);
        let full = host(0, 0, &[80, 8080], &[53]);
        assert_eq!(
            n.fits(&full, None),
            Err("needs 512 MiB memory, 0 free".into())
        );
        let full = host(0, 512, &[80, 8080], &[53]);
        assert_eq!(
            n.fits(&full, None),
            Err("needs 1024 CPU units, 0 free".into())
        );
        let full = host(1024, 512, &[80, 8080], &[53]);
        assert_eq!(
            n.fits(&full, None),
            Err("needs host port 80/tcp, in use".into())
        );
    }

    #[test]
    fn freed_resources_count_back() {
        let n = need(1024, 1024, &[8080], &[53]);
        let remaining = host(512, 512, &[8080], &[53]);
        assert!(n.fits(&remaining, None).is_err());
        let ours = need(512, 512, &[8080], &[53]);
        assert_eq!(n.fits(&remaining, Some(&ours)), Ok(()));
        // Freed but still short.
        let small = need(256, 512, &[8080], &[53]);
        assert_eq!(
            n.fits(&remaining, Some(&small)),
            Err("needs 1024 CPU units, 768 free".into())
        );
        // A port the old task does not hold stays in use.
        let other_port = need(512, 512, &[9090], &[53]);
        assert_eq!(
            n.fits(&remaining, Some(&other_port)),
            Err("needs host port 8080/tcp, in use".into())
        );
    }

    // --- platform ---

    fn linux_x86() -> FakeHost {
        FakeHost::with(&[
            ("ecs.os-type", Some("linux")),
            ("ecs.os-family", Some("LINUX")),
            ("ecs.cpu-architecture", Some("x86_64")),
        ])
    }

    fn platform(os: Option<&str>, arch: Option<&str>) -> TaskNeeds {
        TaskNeeds {
            os_family: os.map(str::to_owned),
            cpu_architecture: arch.map(str::to_owned),
            ..TaskNeeds::default()
        }
    }

    #[test]
    fn no_platform_needs_fit_anywhere() {
        assert_eq!(platform(None, None).platform_fit(&linux_x86()), Ok(()));
        assert_eq!(
            platform(None, None).platform_fit(&FakeHost::with(&[])),
            Ok(())
        );
    }

    #[test]
    fn linux_task() {
        let t = platform(Some("LINUX"), None);
        assert_eq!(t.platform_fit(&linux_x86()), Ok(()));
        let win = FakeHost::with(&[
            ("ecs.os-type", Some("windows")),
            ("ecs.os-family", Some("WINDOWS_SERVER_2022_CORE")),
        ]);
        assert_eq!(
            t.platform_fit(&win),
            Err("needs LINUX, host is windows".into())
        );
        // No os-type attribute: linux.
        assert_eq!(t.platform_fit(&FakeHost::with(&[])), Ok(()));
        // os-type only (no os-family): os-type decides.
        let only_type = FakeHost::with(&[("ecs.os-type", Some("linux"))]);
        assert_eq!(t.platform_fit(&only_type), Ok(()));
    }

    #[test]
    fn windows_task() {
        let t = platform(Some("WINDOWS_SERVER_2022_CORE"), None);
        assert_eq!(
            t.platform_fit(&linux_x86()),
            Err("needs WINDOWS_SERVER_2022_CORE, host is linux".into())
        );
        assert_eq!(
            t.platform_fit(&FakeHost::with(&[])),
            Err("needs WINDOWS_SERVER_2022_CORE, host is linux".into())
        );
        let same = FakeHost::with(&[
            ("ecs.os-type", Some("windows")),
            ("ecs.os-family", Some("WINDOWS_SERVER_2022_CORE")),
        ]);
        assert_eq!(t.platform_fit(&same), Ok(()));
        let other_release = FakeHost::with(&[
            ("ecs.os-type", Some("windows")),
            ("ecs.os-family", Some("WINDOWS_SERVER_2019_FULL")),
        ]);
        assert_eq!(
            t.platform_fit(&other_release),
            Err("needs WINDOWS_SERVER_2022_CORE, host is WINDOWS_SERVER_2019_FULL".into())
        );
        // A Windows host that does not say its family: os-type decides.
        let no_family = FakeHost::with(&[("ecs.os-type", Some("windows"))]);
        assert_eq!(t.platform_fit(&no_family), Ok(()));
        // Nor one whose agent could not tell the release (it says plain "windows").
        let generic = FakeHost::with(&[
            ("ecs.os-type", Some("windows")),
            ("ecs.os-family", Some("windows")),
        ]);
        assert_eq!(t.platform_fit(&generic), Ok(()));
        assert_eq!(
            platform(Some("LINUX"), None).platform_fit(&generic),
            Err("needs LINUX, host is windows".into())
        );
    }

    #[test]
    fn cpu_architecture() {
        let arm = platform(None, Some("ARM64"));
        assert_eq!(
            arm.platform_fit(&linux_x86()),
            Err("needs ARM64, host is x86_64".into())
        );
        let graviton = FakeHost::with(&[("ecs.cpu-architecture", Some("arm64"))]);
        assert_eq!(arm.platform_fit(&graviton), Ok(()));
        // No attribute: x86_64.
        assert_eq!(
            arm.platform_fit(&FakeHost::with(&[])),
            Err("needs ARM64, host is x86_64".into())
        );
        let x86 = platform(Some("LINUX"), Some("X86_64"));
        assert_eq!(x86.platform_fit(&linux_x86()), Ok(()));
        assert_eq!(x86.platform_fit(&FakeHost::with(&[])), Ok(()));
        assert_eq!(
            x86.platform_fit(&graviton),
            Err("needs X86_64, host is arm64".into())
        );
    }

    #[test]
    fn os_is_checked_before_architecture() {
        let t = platform(Some("LINUX"), Some("ARM64"));
        let win = FakeHost::with(&[("ecs.os-type", Some("windows"))]);
        assert_eq!(
            t.platform_fit(&win),
            Err("needs LINUX, host is windows".into())
        );
    }

    #[test]
    fn required_attributes() {
        let t = TaskNeeds {
            requires_attributes: vec![
                RequiredAttribute {
                    name: "ecs.capability.gpu".into(),
                    value: None,
                },
                RequiredAttribute {
                    name: "team".into(),
                    value: Some("blue".into()),
                },
            ],
            ..TaskNeeds::default()
        };
        assert_eq!(
            t.platform_fit(&FakeHost::with(&[])),
            Err("needs attribute ecs.capability.gpu, host has none".into())
        );
        let gpu = ("ecs.capability.gpu", None);
        assert_eq!(
            t.platform_fit(&FakeHost::with(&[gpu])),
            Err("needs attribute team=blue, host has none".into())
        );
        assert_eq!(
            t.platform_fit(&FakeHost::with(&[gpu, ("team", None)])),
            Err("needs attribute team=blue, host has team without a value".into())
        );
        assert_eq!(
            t.platform_fit(&FakeHost::with(&[gpu, ("team", Some("red"))])),
            Err("needs attribute team=blue, host has team=red".into())
        );
        assert_eq!(
            t.platform_fit(&FakeHost::with(&[gpu, ("team", Some("blue"))])),
            Ok(())
        );
        // A required name with no value is met by the attribute with any value.
        let valued_gpu = ("ecs.capability.gpu", Some("yes"));
        assert_eq!(
            t.platform_fit(&FakeHost::with(&[valued_gpu, ("team", Some("blue"))])),
            Ok(())
        );
    }

    // --- properties ---

    fn port_set() -> impl Strategy<Value = BTreeSet<u16>> {
        prop::collection::btree_set(0u16..20, 0..6)
    }

    fn resources() -> impl Strategy<Value = Resources> {
        (0i64..5000, 0i64..5000, port_set(), port_set()).prop_map(
            |(cpu, memory, ports, udp_ports)| Resources {
                cpu,
                memory,
                ports,
                udp_ports,
            },
        )
    }

    fn reservation() -> impl Strategy<Value = Reservation> {
        (0i64..5000, 0i64..5000, port_set(), port_set()).prop_map(
            |(cpu, memory, ports, udp_ports)| Reservation {
                cpu,
                memory,
                ports,
                udp_ports,
            },
        )
    }

    proptest! {
        /// More remaining (more CPU, more memory, fewer ports in use) never turns a fit into a
        /// misfit, with or without freed resources.
        #[test]
        fn fits_is_monotone(
            need in reservation(),
            small in resources(),
            more_cpu in 0i64..3000,
            more_memory in 0i64..3000,
            keep_tcp in prop::collection::vec(any::<bool>(), 20),
            keep_udp in prop::collection::vec(any::<bool>(), 20),
            freed in prop::option::of(reservation()),
        ) {
            let big = Resources {
                cpu: small.cpu + more_cpu,
                memory: small.memory + more_memory,
                ports: small.ports.iter().copied().filter(|p| keep_tcp[usize::from(*p)]).collect(),
                udp_ports: small.udp_ports.iter().copied().filter(|p| keep_udp[usize::from(*p)]).collect(),
            };
            if need.fits(&small, freed.as_ref()).is_ok() {
                prop_assert_eq!(need.fits(&big, freed.as_ref()), Ok(()));
            }
        }

        /// Freeing resources never turns a fit into a misfit either.
        #[test]
        fn freed_never_hurts(need in reservation(), remaining in resources(), freed in reservation()) {
            if need.fits(&remaining, None).is_ok() {
                prop_assert_eq!(need.fits(&remaining, Some(&freed)), Ok(()));
            }
        }
    }
}
