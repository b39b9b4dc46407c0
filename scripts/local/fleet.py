"""A fake ECS fleet in moto: clusters, task definitions, hosts (EC2 instance + container instance).

Checked with moto 5.2.5:
- register_container_instance needs an EC2 instance that moto knows: run_instances first, then pass
  an instanceIdentityDocument JSON with its instanceId. moto reads only `instanceId`; the instance's
  image, zone and type become the ecs.ami-id / ecs.availability-zone / ecs.instance-type
  attributes, and ecs.os-type is "linux" unless the AMI is a Windows one (so pick an ECS-optimized
  Amazon Linux AMI from moto's catalogue). Resources are fixed: CPU 4096, MEMORY 7482.
- the new container instance is ACTIVE with agentConnected true, has no `version` and no
  `updatedAt` (registeredAt only). update_container_instances_state(status="DRAINING") works and
  list_container_instances(status=...) filters on it.
- deregister_container_instance refuses an instance with running tasks unless force=True, and then
  deletes it from moto altogether (no INACTIVE state; describe reports it under failures as
  MISSING, with a short-format ARN); its tasks keep running.
- remainingResources: StartTask subtracts the sum of the task definition's container `cpu` and
  `memory` (never the task's overrides), StopTask gives it back; StartTask never refuses a host
  for lack of room (moto over-commits).
- put_attributes with targetType "container-instance" wants the instance's id (the ARN's last
  part) as targetId; delete_attributes removes an attribute only when the value given equals the
  one set. Both show at once in describe_container_instances' `attributes`.
"""

from __future__ import annotations

import json
from typing import Any

_IMAGE_CACHE: dict[int, str] = {}


def ecs_image_id(ec2: Any) -> str:
    """An ECS-optimized Amazon Linux AMI from moto's catalogue (any AMI as a fallback)."""
    key = id(ec2)
    if key not in _IMAGE_CACHE:
        for pattern in ("amzn2-ami-ecs-hvm-*", "al2023-ami-ecs-hvm-*", "amzn2-ami-hvm-*"):
            images = ec2.describe_images(Filters=[{"Name": "name", "Values": [pattern]}])["Images"]
            images = [i for i in images if i.get("Platform") != "windows"]
            if images:
                _IMAGE_CACHE[key] = sorted(images, key=lambda i: i.get("Name", ""))[-1]["ImageId"]
                break
        else:
            _IMAGE_CACHE[key] = ec2.describe_images()["Images"][0]["ImageId"]
    return _IMAGE_CACHE[key]


def ensure_cluster(ecs: Any, name: str) -> str:
    return ecs.create_cluster(clusterName=name)["cluster"]["clusterArn"]


def register_task_definition(ecs: Any, family: str, image: str = "public.ecr.aws/docker/library/busybox:stable",
                             *, cpu: int = 64, memory: int = 64) -> str:
    """One container named after the family, reserving `cpu` units and `memory` MiB."""
    td = ecs.register_task_definition(
        family=family,
        containerDefinitions=[{
            "name": family,
            "image": image,
            "cpu": cpu,
            "memory": memory,
            "essential": True,
            "command": ["sh", "-c", "while true; do sleep 3600; done"],
        }],
    )["taskDefinition"]
    return td["taskDefinitionArn"]


def add_hosts(ec2: Any, ecs: Any, cluster: str, n: int, instance_type: str = "m5.large",
              zones: tuple[str, ...] = ("us-east-1a", "us-east-1b", "us-east-1c")) -> list[str]:
    """Launch n EC2 instances and register each as a container instance; returns their ARNs."""
    image = ecs_image_id(ec2)
    arns = []
    for i in range(n):
        zone = zones[i % len(zones)]
        inst = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType=instance_type,
                                 Placement={"AvailabilityZone": zone})["Instances"][0]
        doc = {
            "accountId": "123456789012",
            "architecture": "x86_64",
            "availabilityZone": inst["Placement"]["AvailabilityZone"],
            "imageId": image,
            "instanceId": inst["InstanceId"],
            "instanceType": instance_type,
            "privateIp": inst.get("PrivateIpAddress"),
            "region": "us-east-1",
            "version": "2017-09-30",
        }
        ci = ecs.register_container_instance(cluster=cluster, instanceIdentityDocument=json.dumps(doc))["containerInstance"]
        arns.append(ci["containerInstanceArn"])
    return arns


def _attribute(host_arn: str, name: str, value: str | None) -> dict[str, Any]:
    attr = {"name": name, "targetType": "container-instance", "targetId": host_arn.rsplit("/", 1)[-1]}
    if value is not None:
        attr["value"] = value
    return attr


def set_attribute(ecs: Any, cluster: str, host_arn: str, name: str, value: str | None) -> None:
    """ECS PutAttributes on one container instance (a custom attribute, e.g. gpu=true)."""
    ecs.put_attributes(cluster=cluster, attributes=[_attribute(host_arn, name, value)])


def remove_attribute(ecs: Any, cluster: str, host_arn: str, name: str) -> None:
    """ECS DeleteAttributes of one container instance's attribute (moto wants its value too)."""
    ci = ecs.describe_container_instances(cluster=cluster, containerInstances=[host_arn])["containerInstances"][0]
    value = next((a.get("value") for a in ci.get("attributes", []) if a["name"] == name), None)
    ecs.delete_attributes(cluster=cluster, attributes=[_attribute(host_arn, name, value)])


def remaining(ecs: Any, cluster: str, host_arn: str) -> dict[str, int]:
    """{"CPU": units, "MEMORY": MiB} a container instance has left, as ECS reports it."""
    ci = ecs.describe_container_instances(cluster=cluster, containerInstances=[host_arn])["containerInstances"][0]
    return {r["name"]: r.get("integerValue", 0) for r in ci.get("remainingResources", []) if r["name"] in ("CPU", "MEMORY")}
