//! `${NAME}` in a config file: replaced by the environment variable's value
//! before the file is parsed, so secrets stay out of the file. Write it
//! inside a string (`webhook_secret = "${HOOK_SECRET}"`): in a `"..."` or
//! `"""..."""` string the value is escaped as TOML reads it back (a `"`, a
//! `\` or a newline in a password arrives unchanged); elsewhere (`'...'`,
//! a bare number) it is put as it is. An unset variable is an error naming
//! it and its line; comments are left alone.

/// A `${NAME}` whose variable is not set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unset {
    /// 1-based line.
    pub line: usize,
    /// The variable.
    pub name: String,
}

/// Where a `${NAME}` stands.
#[derive(Clone, Copy, PartialEq)]
enum At {
    Bare,
    /// In a `"..."` string.
    Basic,
    /// In a `'...'` string.
    Literal,
    /// In a `"""..."""` string (across lines).
    MultiBasic,
    /// In a `'''...'''` string (across lines).
    MultiLiteral,
}

/// `text` with every `${NAME}` replaced through `lookup`, or every unset one.
pub fn interpolate(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, Vec<Unset>> {
    let mut out = String::with_capacity(text.len());
    let mut unset = Vec::new();
    let mut at = At::Bare;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        // Only the multi-line strings go on past the end of a line.
        if matches!(at, At::Basic | At::Literal) {
            at = At::Bare;
        }
        let mut rest = line;
        while let Some(c) = rest.chars().next() {
            if let Some(name) = placeholder(rest) {
                match lookup(name) {
                    Some(v) if matches!(at, At::Basic | At::MultiBasic) => {
                        escape_basic(&v, &mut out)
                    }
                    Some(v) => out.push_str(&v),
                    None => unset.push(Unset {
                        line: i + 1,
                        name: name.to_string(),
                    }),
                }
                rest = &rest[name.len() + 3..];
                continue;
            }
            let mut taken = c.len_utf8();
            let triple = |q: &str| rest.starts_with(q);
            match (at, c) {
                (At::Bare, '#') => taken = rest.len(), // a comment
                (At::Bare, '"') if triple("\"\"\"") => (at, taken) = (At::MultiBasic, 3),
                (At::Bare, '\'') if triple("'''") => (at, taken) = (At::MultiLiteral, 3),
                (At::Bare, '"') => at = At::Basic,
                (At::Bare, '\'') => at = At::Literal,
                (At::MultiBasic, '"') if triple("\"\"\"") => (at, taken) = (At::Bare, 3),
                (At::MultiLiteral, '\'') if triple("'''") => (at, taken) = (At::Bare, 3),
                (At::Basic, '"') | (At::Literal, '\'') => at = At::Bare,
                // An escape: the next character is not a closing quote.
                (At::Basic | At::MultiBasic, '\\') => {
                    taken += rest[1..].chars().next().map_or(0, char::len_utf8)
                }
                _ => {}
            }
            out.push_str(&rest[..taken]);
            rest = &rest[taken..];
        }
    }
    if unset.is_empty() {
        Ok(out)
    } else {
        Err(unset)
    }
}

/// The variable name of a `${NAME}` at the start of `s`.
fn placeholder(s: &str) -> Option<&str> {
    let body = s.strip_prefix("${")?;
    let name = &body[..body.find('}')?];
    let valid = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then_some(name)
}

/// `v` as the inside of a TOML `"..."` string.
fn escape_basic(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
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

    #[test]
    fn a_value_reads_back_unchanged_from_a_string_whatever_it_holds() {
        let secret = "p\"a\\ss\tw\nord\u{1}'#${X}é";
        let env = |n: &str| match n {
            "S" => Some(secret.to_string()),
            "N" => Some("42".to_string()),
            _ => None,
        };
        let text = "a = \"${S}\"\nb = \"x\\\"${S}\" # ${UNSET}\nn = ${N}\nc = '${N}'\n";
        let out = interpolate(text, env).unwrap();
        let v: toml::Value = toml::from_str(&out).unwrap();
        assert_eq!(v["a"].as_str(), Some(secret));
        assert_eq!(v["b"].as_str(), Some(format!("x\"{secret}").as_str()));
        assert_eq!(v["n"].as_integer(), Some(42));
        assert_eq!(v["c"].as_str(), Some("42"));
        // Multi-line strings: a `#` in them is no comment, and a value
        // in a `"""` string is escaped too.
        let text = "m = \"\"\"\nline # ${S}\n\"\"\"\nl = '''\n# ${N}\n'''\n";
        let out = interpolate(text, env).unwrap();
        let v: toml::Value = toml::from_str(&out).unwrap();
        assert_eq!(v["m"].as_str(), Some(format!("line # {secret}\n").as_str()));
        assert_eq!(v["l"].as_str(), Some("# 42\n"));
    }
}
