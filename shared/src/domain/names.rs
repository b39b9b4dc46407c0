use crate::error::Error;

/// Blox v0.3: `^[a-zA-Z0-9-_]{1,30}$`.
pub fn validate_environment_name(name: &str) -> Result<(), Error> {
    if name.trim().is_empty() {
        return Err(Error::invalid("name", "name must not be blank"));
    }
    if name.len() > 30 {
        return Err(Error::invalid("name", "name must be at most 30 characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(Error::invalid(
            "name",
            "name may contain only letters, digits, '-' and '_'",
        ));
    }
    Ok(())
}

/// What ECS takes as a task definition: `family`, `family:revision`, or a task definition ARN
/// `arn:<partition>:ecs:<region>:<account>:task-definition/family[:revision]`. Checked before ECS
/// is asked, so malformed input is a 400 of ours rather than whatever ECS makes of it.
pub fn validate_task_definition(td: &str) -> Result<(), Error> {
    let family_revision = match td.strip_prefix("arn:") {
        Some(rest) => match rest.splitn(5, ':').collect::<Vec<_>>().as_slice() {
            [partition, "ecs", region, account, resource]
                if !partition.is_empty()
                    && !region.is_empty()
                    && account.len() == 12
                    && account.bytes().all(|b| b.is_ascii_digit()) =>
            {
                resource.strip_prefix("task-definition/")
            }
            _ => None,
        },
        None => Some(td),
    };
    // ECS: a family is 1 to 255 letters, digits, '-' and '_'; a revision counts from 1.
    let valid = family_revision.is_some_and(|fr| {
        let (family, revision) = match fr.split_once(':') {
            Some((f, r)) => (f, Some(r)),
            None => (fr, None),
        };
        (1..=255).contains(&family.len())
            && family
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && revision.is_none_or(|r| {
                r.bytes().all(|b| b.is_ascii_digit()) && r.parse::<u32>().is_ok_and(|n| n > 0)
            })
    });
    if valid {
        Ok(())
    } else {
        Err(Error::invalid(
            "taskDefinition",
            "taskDefinition must be a family, family:revision or a task definition ARN",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_definitions_are_a_family_a_revision_or_an_arn() {
        for ok in [
            "log-shipper",
            "log_shipper:2",
            &"f".repeat(255),
            "arn:aws:ecs:us-east-1:123456789012:task-definition/log-shipper:12",
            "arn:aws-cn:ecs:cn-north-1:123456789012:task-definition/agent",
        ] {
            assert!(validate_task_definition(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ":",
            "a:",
            "a:b",
            "a:0",
            "a:+1",
            "a:1:2",
            "a/b",
            "é",
            &"f".repeat(256),
            "arn:x",
            "arn:aws:ecs:us-east-1:123456789012:service/web",
            "arn:aws:ecs:us-east-1:1234:task-definition/a:1",
        ] {
            let err = validate_task_definition(bad).unwrap_err();
            assert_eq!(err.field(), Some("taskDefinition"), "{bad}");
        }
    }

    #[test]
    fn accepts_blox_names_and_rejects_the_rest() {
        for ok in ["a", "log-shipper_2", &"x".repeat(30)] {
            assert!(validate_environment_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "   ", "has space", "dot.name", &"x".repeat(31), "ünï"] {
            let err = validate_environment_name(bad).unwrap_err();
            assert_eq!(err.field(), Some("name"), "{bad}");
        }
    }
}
