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

#[cfg(test)]
mod tests {
    use super::*;

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
