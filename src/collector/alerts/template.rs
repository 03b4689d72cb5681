//! A small text template: `{name}` placeholders among literal text, `{{`
//! and `}}` for literal braces. Parsing checks every placeholder against the
//! names allowed where the template is used, so a typo stops the collector
//! at start instead of sending a broken message. A line whose placeholders
//! all come out empty is left out (so "Links down: {links}" disappears when
//! no link is down). Rendering passes each value through an escaper (URL,
//! form or JSON escaping for SMS gateway templates; none for messages).

use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(String),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    lines: Vec<Vec<Piece>>,
}

impl Template {
    /// Parse `text`; every placeholder must be one of `allowed`. The error
    /// says what is wrong (the caller adds the key).
    pub fn parse(text: &str, allowed: &[&str]) -> Result<Template, String> {
        let mut lines = Vec::new();
        for (n, line) in text.split('\n').enumerate() {
            let mut pieces = Vec::new();
            let mut lit = String::new();
            let mut chars = line.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '{' if chars.peek() == Some(&'{') => {
                        chars.next();
                        lit.push('{');
                    }
                    '}' if chars.peek() == Some(&'}') => {
                        chars.next();
                        lit.push('}');
                    }
                    '{' => {
                        let mut name = String::new();
                        loop {
                            match chars.next() {
                                Some('}') => break,
                                Some(c) if c.is_ascii_alphanumeric() || c == '_' => name.push(c),
                                _ => {
                                    return Err(format!(
                                        "line {}: unclosed or malformed placeholder `{{{name}`: write `{{name}}` with one of {} (`{{{{` for a literal brace)",
                                        n + 1,
                                        list(allowed)
                                    ));
                                }
                            }
                        }
                        if !allowed.contains(&name.as_str()) {
                            return Err(format!(
                                "line {}: unknown placeholder `{{{name}}}`: use one of {}",
                                n + 1,
                                list(allowed)
                            ));
                        }
                        if !lit.is_empty() {
                            pieces.push(Piece::Text(std::mem::take(&mut lit)));
                        }
                        pieces.push(Piece::Var(name));
                    }
                    '}' => {
                        return Err(format!(
                            "line {}: a lone `}}`: write `}}}}` for a literal brace",
                            n + 1
                        ));
                    }
                    c => lit.push(c),
                }
            }
            if !lit.is_empty() {
                pieces.push(Piece::Text(lit));
            }
            lines.push(pieces);
        }
        Ok(Template { lines })
    }

    /// Render with `value` for each placeholder, passed through `escape`.
    pub fn render<'v>(
        &self,
        value: impl Fn(&str) -> Cow<'v, str>,
        escape: impl Fn(&str) -> Cow<'_, str>,
    ) -> String {
        let mut out: Vec<String> = Vec::with_capacity(self.lines.len());
        for line in &self.lines {
            let mut s = String::new();
            let (mut vars, mut filled) = (0, 0);
            for p in line {
                match p {
                    Piece::Text(t) => s.push_str(t),
                    Piece::Var(name) => {
                        vars += 1;
                        let v = value(name);
                        if !v.is_empty() {
                            filled += 1;
                        }
                        s.push_str(&escape(&v));
                    }
                }
            }
            if vars > 0 && filled == 0 {
                continue;
            }
            out.push(s);
        }
        out.join("\n").trim().to_string()
    }

    /// The placeholders it uses.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().flatten().filter_map(|p| match p {
            Piece::Var(n) => Some(n.as_str()),
            Piece::Text(_) => None,
        })
    }
}

fn list(allowed: &[&str]) -> String {
    allowed
        .iter()
        .map(|a| format!("{{{a}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// No escaping.
pub fn raw(s: &str) -> Cow<'_, str> {
    Cow::Borrowed(s)
}

/// Percent-encoding for a URL query value or form field (RFC 3986
/// unreserved characters kept, everything else `%XX` of its UTF-8 bytes).
pub fn url_escape(s: &str) -> Cow<'_, str> {
    if s.bytes().all(unreserved) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if unreserved(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Cow::Owned(out)
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// The inside of a JSON string (without the quotes).
pub fn json_escape(s: &str) -> Cow<'_, str> {
    let quoted = serde_json::to_string(s).unwrap_or_default();
    Cow::Owned(quoted[1..quoted.len().saturating_sub(1).max(1)].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(name: &str) -> Cow<'static, str> {
        Cow::Borrowed(match name {
            "who" => "laptop-7",
            "links" => "",
            "text" => "a&b c=\"ঢাকা\"\n",
            _ => "?",
        })
    }

    #[test]
    fn placeholders_braces_and_empty_lines() {
        let t = Template::parse(
            "Down: {who} {{x}}\nLinks: {links}\nfixed line\n{links}{links}",
            &["who", "links"],
        )
        .unwrap();
        assert_eq!(t.render(vals, raw), "Down: laptop-7 {x}\nfixed line");
        assert_eq!(
            t.names().collect::<Vec<_>>(),
            ["who", "links", "links", "links"]
        );
    }

    #[test]
    fn errors_say_what_and_where() {
        let e = Template::parse("ok\nhi {whom}", &["who"]).unwrap_err();
        assert!(
            e.contains("line 2") && e.contains("`{whom}`") && e.contains("{who}"),
            "{e}"
        );
        let e = Template::parse("hi {who", &["who"]).unwrap_err();
        assert!(e.contains("unclosed"), "{e}");
        let e = Template::parse("a } b", &["who"]).unwrap_err();
        assert!(e.contains("lone"), "{e}");
        let e = Template::parse("{wh o}", &["who"]).unwrap_err();
        assert!(e.contains("malformed"), "{e}");
    }

    #[test]
    fn escapers() {
        let t = Template::parse("to=01711&msg={text}", &["text"]).unwrap();
        assert_eq!(
            t.render(vals, url_escape),
            "to=01711&msg=a%26b%20c%3D%22%E0%A6%A2%E0%A6%BE%E0%A6%95%E0%A6%BE%22%0A"
        );
        let t = Template::parse("{\"m\":\"{text}\"}", &["text"]);
        assert!(t.is_err(), "a JSON body's braces must be doubled");
        let t = Template::parse("{{\"m\":\"{text}\"}}", &["text"]).unwrap();
        let body = t.render(vals, json_escape);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["m"], "a&b c=\"ঢাকা\"\n");
        assert_eq!(json_escape(""), "");
    }
}
