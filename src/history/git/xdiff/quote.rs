//! Path quoting as git's quote_c_style with core.quotePath=true (the
//! default): a path holding a control byte, `"`, `\`, DEL or any byte
//! from 0x80 up is written in double quotes with C escapes, the bytes
//! without a short escape as three octal digits.

/// Does git escape this byte in a path?
fn must_quote(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\' || b >= 0x7f
}

/// Append the escaped form of `s` (without the surrounding quotes).
fn push_escaped(out: &mut Vec<u8>, s: &[u8]) {
    for &b in s {
        if !must_quote(b) {
            out.push(b);
            continue;
        }
        out.push(b'\\');
        let short = match b {
            0x07 => Some(b'a'),
            0x08 => Some(b'b'),
            b'\t' => Some(b't'),
            b'\n' => Some(b'n'),
            0x0b => Some(b'v'),
            0x0c => Some(b'f'),
            b'\r' => Some(b'r'),
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            _ => None,
        };
        match short {
            Some(c) => out.push(c),
            None => {
                out.push(b'0' + ((b >> 6) & 0o3));
                out.push(b'0' + ((b >> 3) & 0o7));
                out.push(b'0' + (b & 0o7));
            }
        }
    }
}

/// `path` as git prints it in `rename from`/`rename to` lines and in
/// most other places: unchanged when it needs no escaping, else in
/// double quotes with C-style escapes (e.g. `"caf\303\251"`).
pub fn quote_path(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len() + 2);
    if path.iter().any(|&b| must_quote(b)) {
        out.push(b'"');
        push_escaped(&mut out, path);
        out.push(b'"');
    } else {
        out.extend_from_slice(path);
    }
    out
}

/// `prefix` followed by `path`, quoted as one string when either needs
/// it, so that the quotes go around the `a/`/`b/` prefix too.
pub(crate) fn quote_prefixed(prefix: &[u8], path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix.len() + path.len() + 2);
    if prefix.iter().chain(path).any(|&b| must_quote(b)) {
        out.push(b'"');
        push_escaped(&mut out, prefix);
        push_escaped(&mut out, path);
        out.push(b'"');
    } else {
        out.extend_from_slice(prefix);
        out.extend_from_slice(path);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_path(b"plain/file.txt"), b"plain/file.txt");
        assert_eq!(quote_path(b"caf\xc3\xa9"), b"\"caf\\303\\251\"");
        assert_eq!(quote_path(b"a\"b\\c\td\x01\x7f"), b"\"a\\\"b\\\\c\\td\\001\\177\"");
        assert_eq!(quote_prefixed(b"a/", b"x y"), b"a/x y");
        assert_eq!(quote_prefixed(b"a/", b"\xff"), b"\"a/\\377\"");
    }
}
