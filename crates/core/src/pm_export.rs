//! Postmortem exports: Markdown with the screenshots as files beside it (a zip), and one
//! self-contained HTML file with the screenshots inside (base64), to mail or attach anywhere.
//! Times are ISO-8601 with their offset.

use std::fmt::Write;

use base64::Engine;
use opslens_domain::{Evidence, Incident, Postmortem};

/// A screenshot of the incident with its bytes.
#[derive(Debug, Clone)]
pub struct Shot {
    /// The evidence row.
    pub evidence: Evidence,
    /// The image file.
    pub bytes: Vec<u8>,
    /// Its MIME type (from the bytes, at upload).
    pub mime: String,
}

/// What the exports are made of.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The document.
    pub postmortem: Postmortem,
    /// Its incident.
    pub incident: Incident,
    /// The incident's screenshots.
    pub shots: Vec<Shot>,
}

fn ext(mime: &str) -> &'static str {
    match mime {
        "image/jpeg" => "jpg",
        "image/webp" => "webp",
        _ => "png",
    }
}

/// File name of a screenshot inside the zip.
fn shot_path(s: &Shot) -> String {
    format!("screenshots/evidence-{}.{}", s.evidence.id, ext(&s.mime))
}

fn sections(b: &Bundle) -> [(&'static str, &str); 6] {
    let s = &b.postmortem.sections;
    [
        ("Summary", s.summary.as_str()),
        ("Impact", s.impact.as_str()),
        ("Root cause", s.root_cause.as_str()),
        ("Contributing factors", s.contributing_factors.as_str()),
        ("What went well", s.went_well.as_str()),
        ("What went badly", s.went_badly.as_str()),
    ]
}

impl Bundle {
    /// The postmortem as Markdown; screenshots are linked as `screenshots/…` files.
    pub fn to_markdown(&self) -> String {
        let i = &self.incident;
        let mut md = String::new();
        let _ = writeln!(md, "# Postmortem: incident #{} — {}\n", i.id, i.title);
        let _ = writeln!(
            md,
            "- **Severity:** {}\n- **Status:** {}\n- **Opened:** {}",
            i.severity,
            i.status,
            i.created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
        );
        for (label, t) in [("Mitigated", i.mitigated_at), ("Resolved", i.resolved_at)] {
            if let Some(t) = t {
                let _ = writeln!(
                    md,
                    "- **{label}:** {}",
                    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
                );
            }
        }
        for (title, text) in sections(self) {
            let _ = writeln!(
                md,
                "\n## {title}\n\n{}",
                if text.trim().is_empty() {
                    "—"
                } else {
                    text.trim()
                }
            );
        }
        let s = &self.postmortem.sections;
        let _ = writeln!(md, "\n## Timeline\n");
        for e in &s.timeline {
            let _ = writeln!(
                md,
                "- `{}` {}",
                e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
                e.text
            );
        }
        let _ = writeln!(md, "\n## Follow-up actions\n");
        for f in &s.follow_ups {
            let _ = writeln!(md, "- [ ] {f}");
        }
        if !self.shots.is_empty() {
            let _ = writeln!(md, "\n## Screenshots\n");
            for shot in &self.shots {
                let _ = writeln!(
                    md,
                    "![{}]({})\n\n*{} — {}*\n",
                    shot.evidence.title.replace(['[', ']'], ""),
                    shot_path(shot),
                    shot.evidence.title,
                    shot.evidence
                        .occurred_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
                );
            }
        }
        md
    }

    /// The postmortem as one HTML file: styles inline, screenshots as `data:` URLs.
    pub fn to_html(&self) -> String {
        let i = &self.incident;
        let mut h = String::new();
        let _ = write!(
            h,
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Postmortem #{} — {}</title>\
             <style>body{{font:15px/1.5 system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#1d2430}}\
             h1{{font-size:1.6em}}h2{{margin-top:1.6em;border-bottom:1px solid #ddd}}time{{font-family:monospace;color:#555}}\
             figure{{margin:1em 0}}img{{max-width:100%;border:1px solid #ccc}}p{{white-space:pre-wrap}}</style></head><body>",
            i.id,
            esc(&i.title)
        );
        let _ = write!(
            h,
            "<h1>Postmortem: incident #{} — {}</h1><ul>",
            i.id,
            esc(&i.title)
        );
        let _ = write!(
            h,
            "<li><b>Severity:</b> {}</li><li><b>Status:</b> {}</li>",
            i.severity, i.status
        );
        for (label, t) in [
            ("Opened", Some(i.created_at)),
            ("Mitigated", i.mitigated_at),
            ("Resolved", i.resolved_at),
        ] {
            if let Some(t) = t {
                let iso = t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
                let _ = write!(
                    h,
                    "<li><b>{label}:</b> <time datetime=\"{iso}\">{iso}</time></li>"
                );
            }
        }
        h.push_str("</ul>");
        for (title, text) in sections(self) {
            let body = if text.trim().is_empty() {
                "—"
            } else {
                text.trim()
            };
            let _ = write!(h, "<h2>{title}</h2><p>{}</p>", esc(body));
        }
        let s = &self.postmortem.sections;
        h.push_str("<h2>Timeline</h2><ul>");
        for e in &s.timeline {
            let iso = e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
            let _ = write!(
                h,
                "<li><time datetime=\"{iso}\">{iso}</time> {}</li>",
                esc(&e.text)
            );
        }
        h.push_str("</ul><h2>Follow-up actions</h2><ul>");
        for f in &s.follow_ups {
            let _ = write!(h, "<li>{}</li>", esc(f));
        }
        h.push_str("</ul>");
        if !self.shots.is_empty() {
            h.push_str("<h2>Screenshots</h2>");
            for shot in &self.shots {
                let data = base64::engine::general_purpose::STANDARD.encode(&shot.bytes);
                let _ = write!(
                    h,
                    "<figure><img alt=\"{}\" src=\"data:{};base64,{data}\"><figcaption>{} — <time>{}</time></figcaption></figure>",
                    esc(&shot.evidence.title),
                    esc(&shot.mime),
                    esc(&shot.evidence.title),
                    shot.evidence.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
                );
            }
        }
        h.push_str("</body></html>\n");
        h
    }

    /// `postmortem.md` and `screenshots/…` in a zip (stored: images are compressed already).
    pub fn to_zip(&self) -> Vec<u8> {
        let mut files: Vec<(String, &[u8])> = Vec::new();
        let md = self.to_markdown();
        files.push(("postmortem.md".into(), md.as_bytes()));
        for s in &self.shots {
            files.push((shot_path(s), &s.bytes));
        }
        zip_stored(&files)
    }
}

/// HTML text escaping (content and attribute values).
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A zip of `files` without compression (screenshots are PNG/JPEG/WebP already), written by
/// the `zip` crate; UTF-8 names.
fn zip_stored(files: &[(String, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in files {
        // Writing into memory cannot fail but for a name zip refuses; none of ours is.
        z.start_file(name.as_str(), opts).expect("zip entry");
        z.write_all(data).expect("zip entry into memory");
    }
    z.finish().expect("zip into memory").into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_zip_has_each_file_where_its_directory_says() {
        let files = vec![
            ("a.md".to_string(), &b"# hi"[..]),
            ("screenshots/b.png".into(), &[1u8, 2, 3][..]),
        ];
        let z = zip_stored(&files);
        let eocd = z.len() - 22;
        assert_eq!(&z[eocd..eocd + 4], &0x0605_4b50u32.to_le_bytes());
        assert_eq!(u16::from_le_bytes([z[eocd + 10], z[eocd + 11]]), 2);
        let cd = u32::from_le_bytes(z[eocd + 16..eocd + 20].try_into().unwrap()) as usize;
        // Second central entry's local header offset points at a local header naming it.
        let first_name_len = u16::from_le_bytes([z[cd + 28], z[cd + 29]]) as usize;
        let second = cd + 46 + first_name_len;
        let off = u32::from_le_bytes(z[second + 42..second + 46].try_into().unwrap()) as usize;
        assert_eq!(&z[off..off + 4], &0x0403_4b50u32.to_le_bytes());
        assert_eq!(&z[off + 30..off + 30 + 17], b"screenshots/b.png");
        assert_eq!(&z[off + 47..off + 50], &[1, 2, 3]);
        assert_eq!(esc("<b>\"&'"), "&lt;b&gt;&quot;&amp;&#39;");
    }
}
