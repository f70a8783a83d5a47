//! `${NAME}` in a config file: replaced by the environment variable's value
//! before the file is parsed, so secrets stay out of the file. Write it
//! inside a string (`webhook_secret = "${HOOK_SECRET}"`). An unset variable
//! is an error naming it and its line; comment lines are left alone.

/// A `${NAME}` whose variable is not set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unset {
    /// 1-based line.
    pub line: usize,
    /// The variable.
    pub name: String,
}

/// `text` with every `${NAME}` replaced through `lookup`, or every unset one.
pub fn interpolate(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, Vec<Unset>> {
    let mut out = String::with_capacity(text.len());
    let mut unset = Vec::new();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("${") {
            let Some(len) = rest[at + 2..].find('}') else {
                break;
            };
            let name = &rest[at + 2..at + 2 + len];
            let valid = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            out.push_str(&rest[..at]);
            if !valid {
                out.push_str("${");
                rest = &rest[at + 2..];
                continue;
            }
            match lookup(name) {
                Some(v) => out.push_str(&v),
                None => unset.push(Unset {
                    line: i + 1,
                    name: name.to_string(),
                }),
            }
            rest = &rest[at + 3 + len..];
        }
        out.push_str(rest);
    }
    if unset.is_empty() {
        Ok(out)
    } else {
        Err(unset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_set_variables_and_names_unset_ones_with_their_line() {
        let env = |n: &str| (n == "TOKEN").then(|| "s3cret".to_string());
        assert_eq!(
            interpolate("a = \"${TOKEN}\"\n# ${NOPE}\nb = \"x${TOKEN}y\"", env).unwrap(),
            "a = \"s3cret\"\n# ${NOPE}\nb = \"xs3crety\""
        );
        assert_eq!(
            interpolate("a = 1\nb = \"${MISSING}\"\nc = \"${1X} ${}\"", env),
            Err(vec![Unset {
                line: 2,
                name: "MISSING".into()
            }])
        );
    }
}
