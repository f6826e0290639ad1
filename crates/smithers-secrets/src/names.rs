//! What a secret's name and environment may be: names are what workflows
//! write after `secrets.` and what reaches a sandbox as an environment
//! variable; environments are plain words.

/// Why `name` cannot be a secret's name, if it cannot.
pub fn name_problem(name: &str) -> Option<String> {
    let ok = name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    (!ok).then(|| {
        format!(
            "secret name {name:?} must be letters, digits and `_`, not starting with a digit (at most 128)"
        )
    })
}

/// Why `environment` cannot be an environment's name, if it cannot.
pub fn environment_problem(environment: &str) -> Option<String> {
    let ok = !environment.is_empty()
        && environment.len() <= 64
        && environment.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && environment
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_'));
    (!ok).then(|| {
        format!(
            "environment {environment:?} must be lowercase letters, digits, `-` and `_` (at most 64)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_environments() {
        for good in ["OPENAI_API_KEY", "_x", "a1"] {
            assert_eq!(name_problem(good), None);
        }
        for bad in ["", "1X", "A-B", "A B", &"A".repeat(129)] {
            assert!(name_problem(bad).is_some(), "{bad}");
        }
        for good in ["dev", "prod-eu", "stage_2", "1"] {
            assert_eq!(environment_problem(good), None);
        }
        for bad in ["", "Dev", "-x", "a b", &"a".repeat(65)] {
            assert!(environment_problem(bad).is_some(), "{bad}");
        }
    }
}
