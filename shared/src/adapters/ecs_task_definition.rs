//! What a task definition needs of a host, read from the SDK's `TaskDefinition`
//! (DescribeTaskDefinition), and a host's resources from the SDK's `Resource` list. Pure
//! conversions: no calls.

use aws_sdk_ecs::types::{ContainerDefinition, Resource, TaskDefinition};

use crate::domain::overrides::{parse_cpu, parse_memory};
use crate::domain::resources::{ContainerNeeds, PortNeed, RequiredAttribute, Resources, TaskNeeds};

/// Prefixes of the `requiresAttributes` that ECS derives from the task definition's own features
/// (`ecs.capability.execution-role-awslogs`, `com.amazonaws.ecs.capability.docker-remote-api.1.19`,
/// `ecs.capability.task-eni`, …).
///
/// They are dropped from [`TaskNeeds::requires_attributes`]: ECS adds them to every task
/// definition that uses the feature, and every agent able to run such a task advertises them, so
/// they say nothing about which of a cluster's hosts to pick. Container instance events from
/// EventBridge do list capability attributes; keeping them would still only catch hosts whose
/// agent is too old for the task definition — and ECS itself refuses to start a task on such a
/// host, which surfaces as a launch failure for that host rather than as a silent skip. The
/// custom attributes and the ones without these prefixes (`ecs.os-type`, …) are kept.
pub const DERIVED_ATTRIBUTE_PREFIXES: &[&str] =
    &["ecs.capability.", "com.amazonaws.ecs.capability."];

/// What `td` needs of a host:
/// - task-level `cpu` / `memory` as parsed by `parse_cpu` / `parse_memory` (unparsable: `None`);
/// - per container: name, `cpu`, `memory`, `memoryReservation`, and its fixed host ports: each
///   port mapping's `hostPort`, or in `host` network mode its `containerPort` (the host port
///   there); a mapping with no fixed host port (bridge mode's dynamic ports, port ranges) is left
///   out;
/// - network mode in lowercase; `runtimePlatform`'s OS family and CPU architecture as ECS spells
///   them ("LINUX", "ARM64");
/// - `requiresAttributes` less the ones ECS derives itself (see [`DERIVED_ATTRIBUTE_PREFIXES`]).
pub fn needs_of(td: &TaskDefinition) -> TaskNeeds {
    let network_mode = td.network_mode().map(|m| m.as_str().to_ascii_lowercase());
    let host_mode = network_mode.as_deref() == Some("host");
    let platform = td.runtime_platform();
    TaskNeeds {
        cpu: td.cpu().and_then(|s| parse_cpu(s).ok()),
        memory: td.memory().and_then(|s| parse_memory(s).ok()),
        containers: td
            .container_definitions()
            .iter()
            .map(|c| container_needs(c, host_mode))
            .collect(),
        network_mode,
        os_family: platform
            .and_then(|p| p.operating_system_family())
            .map(|f| f.as_str().to_owned()),
        cpu_architecture: platform
            .and_then(|p| p.cpu_architecture())
            .map(|a| a.as_str().to_owned()),
        requires_attributes: td
            .requires_attributes()
            .iter()
            .filter(|a| {
                !DERIVED_ATTRIBUTE_PREFIXES
                    .iter()
                    .any(|prefix| a.name().starts_with(prefix))
            })
            .map(|a| RequiredAttribute {
                name: a.name().to_owned(),
                value: a.value().map(str::to_owned),
            })
            .collect(),
    }
}

fn container_needs(c: &ContainerDefinition, host_mode: bool) -> ContainerNeeds {
    let host_ports = c
        .port_mappings()
        .iter()
        .filter_map(|m| {
            let port = match m.host_port() {
                Some(p) if p > 0 => p,
                _ if host_mode => m.container_port()?,
                _ => return None,
            };
            let port = u16::try_from(port).ok().filter(|p| *p > 0)?;
            let protocol = m
                .protocol()
                .map_or_else(|| "tcp".to_owned(), |p| p.as_str().to_ascii_lowercase());
            Some(PortNeed { port, protocol })
        })
        .collect();
    ContainerNeeds {
        name: c.name().unwrap_or_default().to_owned(),
        cpu: i64::from(c.cpu()),
        memory: c.memory().map(i64::from),
        memory_reservation: c.memory_reservation().map(i64::from),
        host_ports,
    }
}

/// A container instance's resources from the SDK's list (`remainingResources` or
/// `registeredResources` of DescribeContainerInstances).
pub fn resources_of(list: &[Resource]) -> Resources {
    Resources::from_named(list.iter().map(|r| {
        (
            r.name().unwrap_or_default(),
            Some(i64::from(r.integer_value())),
            r.string_set_value(),
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::{
        Attribute, CpuArchitecture, NetworkMode, OsFamily, PortMapping, RuntimePlatform,
        TransportProtocol,
    };

    fn mapping(
        container: i32,
        host: Option<i32>,
        protocol: Option<TransportProtocol>,
    ) -> PortMapping {
        PortMapping::builder()
            .container_port(container)
            .set_host_port(host)
            .set_protocol(protocol)
            .build()
    }

    fn attribute(name: &str, value: Option<&str>) -> Attribute {
        Attribute::builder()
            .name(name)
            .set_value(value.map(str::to_owned))
            .build()
            .unwrap()
    }

    fn tcp(port: u16) -> PortNeed {
        PortNeed {
            port,
            protocol: "tcp".into(),
        }
    }

    fn udp(port: u16) -> PortNeed {
        PortNeed {
            port,
            protocol: "udp".into(),
        }
    }

    fn app(mappings: Vec<PortMapping>) -> ContainerDefinition {
        ContainerDefinition::builder()
            .name("app")
            .cpu(256)
            .memory(512)
            .memory_reservation(256)
            .set_port_mappings(Some(mappings))
            .build()
    }

    #[test]
    fn full_task_definition() {
        let td = TaskDefinition::builder()
            .cpu("1 vCPU")
            .memory("2 GB")
            .network_mode(NetworkMode::Bridge)
            .runtime_platform(
                RuntimePlatform::builder()
                    .operating_system_family(OsFamily::Linux)
                    .cpu_architecture(CpuArchitecture::Arm64)
                    .build(),
            )
            .container_definitions(app(vec![
                mapping(80, Some(8080), Some(TransportProtocol::Tcp)),
                mapping(53, Some(53), Some(TransportProtocol::Udp)),
                mapping(9000, Some(0), None),
                mapping(9001, None, None),
            ]))
            .container_definitions(ContainerDefinition::builder().name("sidecar").build())
            .requires_attributes(attribute(
                "com.amazonaws.ecs.capability.logging-driver.awslogs",
                None,
            ))
            .requires_attributes(attribute("ecs.capability.execution-role-awslogs", None))
            .requires_attributes(attribute("team", Some("blue")))
            .requires_attributes(attribute("ecs.capability", None))
            .requires_attributes(attribute("custom.gpu", None))
            .build();
        let needs = needs_of(&td);
        assert_eq!(
            needs,
            TaskNeeds {
                cpu: Some(1024),
                memory: Some(2048),
                containers: vec![
                    ContainerNeeds {
                        name: "app".into(),
                        cpu: 256,
                        memory: Some(512),
                        memory_reservation: Some(256),
                        host_ports: vec![tcp(8080), udp(53)],
                    },
                    ContainerNeeds {
                        name: "sidecar".into(),
                        ..ContainerNeeds::default()
                    },
                ],
                network_mode: Some("bridge".into()),
                os_family: Some("LINUX".into()),
                cpu_architecture: Some("ARM64".into()),
                requires_attributes: vec![
                    RequiredAttribute {
                        name: "team".into(),
                        value: Some("blue".into()),
                    },
                    RequiredAttribute {
                        name: "ecs.capability".into(),
                        value: None,
                    },
                    RequiredAttribute {
                        name: "custom.gpu".into(),
                        value: None,
                    },
                ],
            }
        );
        let r = needs.reservation(None);
        assert_eq!((r.cpu, r.memory), (1024, 2048));
    }

    #[test]
    fn minimal_task_definition() {
        let td = TaskDefinition::builder()
            .container_definitions(
                ContainerDefinition::builder()
                    .name("only")
                    .memory(128)
                    .build(),
            )
            .build();
        let needs = needs_of(&td);
        assert_eq!(
            needs,
            TaskNeeds {
                containers: vec![ContainerNeeds {
                    name: "only".into(),
                    memory: Some(128),
                    ..ContainerNeeds::default()
                }],
                ..TaskNeeds::default()
            }
        );
        assert_eq!(needs.reservation(None).memory, 128);
    }

    #[test]
    fn unparsable_task_sizes_are_none() {
        let td = TaskDefinition::builder().cpu("lots").memory("2 TB").build();
        let needs = needs_of(&td);
        assert_eq!((needs.cpu, needs.memory), (None, None));
    }

    #[test]
    fn host_mode_maps_container_ports() {
        let td = TaskDefinition::builder()
            .network_mode(NetworkMode::Host)
            .container_definitions(app(vec![
                mapping(80, None, None),
                mapping(443, Some(443), Some(TransportProtocol::Tcp)),
                mapping(514, Some(0), Some(TransportProtocol::Udp)),
            ]))
            .build();
        let needs = needs_of(&td);
        assert_eq!(needs.network_mode.as_deref(), Some("host"));
        assert_eq!(
            needs.containers[0].host_ports,
            vec![tcp(80), tcp(443), udp(514)]
        );
        let r = needs.reservation(None);
        assert_eq!(r.ports, [80, 443].into_iter().collect());
        assert_eq!(r.udp_ports, [514].into_iter().collect());
    }

    #[test]
    fn awsvpc_reserves_no_host_ports() {
        let td = TaskDefinition::builder()
            .network_mode(NetworkMode::Awsvpc)
            .container_definitions(app(vec![mapping(80, Some(80), None)]))
            .build();
        let needs = needs_of(&td);
        assert_eq!(needs.network_mode.as_deref(), Some("awsvpc"));
        assert!(needs.reservation(None).ports.is_empty());
    }

    #[test]
    fn windows_platform() {
        let td = TaskDefinition::builder()
            .runtime_platform(
                RuntimePlatform::builder()
                    .operating_system_family(OsFamily::WindowsServer2022Core)
                    .cpu_architecture(CpuArchitecture::X8664)
                    .build(),
            )
            .build();
        let needs = needs_of(&td);
        assert_eq!(needs.os_family.as_deref(), Some("WINDOWS_SERVER_2022_CORE"));
        assert_eq!(needs.cpu_architecture.as_deref(), Some("X86_64"));
        assert!(needs.is_windows());
    }

    #[test]
    fn resources_from_the_sdk() {
        let list = vec![
            Resource::builder()
                .name("CPU")
                .r#type("INTEGER")
                .integer_value(2048)
                .build(),
            Resource::builder()
                .name("MEMORY")
                .r#type("INTEGER")
                .integer_value(3892)
                .build(),
            Resource::builder()
                .name("PORTS")
                .r#type("STRINGSET")
                .string_set_value("22")
                .string_set_value("2376")
                .build(),
            Resource::builder()
                .name("PORTS_UDP")
                .r#type("STRINGSET")
                .string_set_value("53")
                .build(),
        ];
        let r = resources_of(&list);
        assert_eq!(
            r,
            Resources {
                cpu: 2048,
                memory: 3892,
                ports: [22, 2376].into_iter().collect(),
                udp_ports: [53].into_iter().collect(),
            }
        );
    }
}
