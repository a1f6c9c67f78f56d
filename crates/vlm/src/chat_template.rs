//! The model's own chat template, rendered with a Jinja engine as transformers renders it.
//!
//! A hand-written prompt format drifts from the model it serves (a new system-prompt rule, a
//! vision-id prefix, a changed generation prompt) and nothing notices; rendering the template
//! the model ships keeps the prompt exactly what the model was trained on. The template is
//! read where transformers reads it — `chat_template.jinja`, then `chat_template.json`, then
//! the `chat_template` key of `tokenizer_config.json` — and rendered by `minijinja` with
//! transformers' settings (`trim_blocks`, `lstrip_blocks`, Python string methods,
//! `raise_exception`).

use std::path::{Path, PathBuf};

use minijinja::{context, Environment, ErrorKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::VlmError;

/// One part of a message's content, in the shape chat templates expect (OpenAI-style parts).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    /// An image placeholder; the processor expands it into the image's tokens.
    Image,
    /// Plain text.
    Text {
        /// The text.
        text: String,
    },
}

/// One chat message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// Its parts, in order.
    pub content: Vec<Part>,
}

impl Message {
    /// A message of `role` made of `parts`.
    pub fn new(role: &str, content: Vec<Part>) -> Self {
        Message {
            role: role.into(),
            content,
        }
    }
}

/// A loaded chat template, ready to render.
#[derive(Debug)]
pub struct ChatTemplate {
    env: Environment<'static>,
    /// Where the template came from, for error messages.
    source: PathBuf,
    bos_token: Option<String>,
    eos_token: Option<String>,
}

const NAME: &str = "chat";

impl ChatTemplate {
    /// Reads the template of the model in `dir`; a model without one is refused with a message
    /// naming the files looked at, since guessing a format would silently degrade its answers.
    pub fn from_dir(dir: &Path) -> Result<Self, VlmError> {
        let tok_cfg_path = dir.join("tokenizer_config.json");
        let tok_cfg: Option<Value> = read_json_opt(&tok_cfg_path)?;
        let special = |key: &str| -> Option<String> {
            match tok_cfg.as_ref()?.get(key)? {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => o.get("content")?.as_str().map(str::to_owned),
                _ => None,
            }
        };
        let (bos_token, eos_token) = (special("bos_token"), special("eos_token"));
        let jinja = dir.join("chat_template.jinja");
        if jinja.exists() {
            let text = std::fs::read_to_string(&jinja).map_err(|source| VlmError::Io {
                path: jinja.clone(),
                source,
            })?;
            return Self::new(text, jinja, bos_token, eos_token);
        }
        let json_path = dir.join("chat_template.json");
        if let Some(v) = read_json_opt(&json_path)? {
            if let Some(text) = template_in(&v) {
                return Self::new(text, json_path, bos_token, eos_token);
            }
        }
        if let Some(text) = tok_cfg.as_ref().and_then(template_in) {
            return Self::new(text, tok_cfg_path, bos_token, eos_token);
        }
        Err(VlmError::Model(format!(
            "{} has no chat template (looked for chat_template.jinja, chat_template.json and the \
             chat_template key of tokenizer_config.json); OpsLens renders the model's own \
             template and will not guess one",
            dir.display()
        )))
    }

    /// Compiles `text` (from `source`) with transformers' Jinja settings.
    pub fn new(
        text: String,
        source: PathBuf,
        bos_token: Option<String>,
        eos_token: Option<String>,
    ) -> Result<Self, VlmError> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
            },
        );
        env.add_template_owned(NAME, text)
            .map_err(|e| VlmError::Model(format!("{}: chat template: {e}", source.display())))?;
        Ok(ChatTemplate {
            env,
            source,
            bos_token,
            eos_token,
        })
    }

    /// Renders `messages`, ending with the assistant's generation prompt when asked;
    /// `add_vision_id` numbers the pictures ("Picture 1: …") for prompts with several images.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
        add_vision_id: bool,
    ) -> Result<String, VlmError> {
        let t = self
            .env
            .get_template(NAME)
            .map_err(|e| VlmError::Model(e.to_string()))?;
        t.render(context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            add_vision_id => add_vision_id,
            bos_token => self.bos_token,
            eos_token => self.eos_token,
        })
        .map_err(|e| {
            VlmError::Model(format!(
                "{}: rendering the chat template failed: {e}",
                self.source.display()
            ))
        })
    }

    /// Where the template was read from.
    pub fn source(&self) -> &Path {
        &self.source
    }
}

/// The template text in a `chat_template.json` or `tokenizer_config.json` value: a string, or
/// a list of named templates of which `default` is taken (as transformers does).
fn template_in(v: &Value) -> Option<String> {
    match v.get("chat_template")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(named) => named
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
            .and_then(|t| t.get("template")?.as_str().map(str::to_owned)),
        _ => None,
    }
}

fn read_json_opt(path: &Path) -> Result<Option<Value>, VlmError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| VlmError::Json {
                path: path.to_owned(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(VlmError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn a_model_without_a_template_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "tokenizer_config.json",
            r#"{"eos_token": "<|im_end|>"}"#,
        );
        let e = ChatTemplate::from_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("has no chat template"), "{e}");
        assert!(e.contains("chat_template.jinja"), "{e}");
    }

    #[test]
    fn reads_where_transformers_reads_in_its_order() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "tokenizer_config.json",
            r#"{"chat_template": "cfg", "eos_token": {"content": "<e>"}}"#,
        );
        let t = ChatTemplate::from_dir(dir.path()).unwrap();
        assert_eq!(t.render(&[], false, false).unwrap(), "cfg");
        assert_eq!(t.eos_token.as_deref(), Some("<e>"));
        write(
            dir.path(),
            "chat_template.json",
            r#"{"chat_template": [{"name": "tool_use", "template": "x"}, {"name": "default", "template": "json"}]}"#,
        );
        let t = ChatTemplate::from_dir(dir.path()).unwrap();
        assert_eq!(t.render(&[], false, false).unwrap(), "json");
        write(dir.path(), "chat_template.jinja", "jinja {{ eos_token }}");
        let t = ChatTemplate::from_dir(dir.path()).unwrap();
        assert_eq!(t.render(&[], false, false).unwrap(), "jinja <e>");
        assert!(t.source().ends_with("chat_template.jinja"));
    }

    #[test]
    fn python_string_methods_and_raise_exception_work() {
        let t = ChatTemplate::new(
            "{% for m in messages %}{{ m.role.upper() }}:{{ m.content[0].text.strip() }}{% if m.content[0].text.startswith(' ') %}!{% endif %}{% endfor %}\
             {% if not add_generation_prompt %}{{ raise_exception('no prompt') }}{% endif %}"
                .into(),
            "t".into(),
            None,
            None,
        )
        .unwrap();
        let m = [Message::new(
            "user",
            vec![Part::Text {
                text: " hi ".into(),
            }],
        )];
        assert_eq!(t.render(&m, true, false).unwrap(), "USER:hi!");
        let e = t.render(&m, false, false).unwrap_err().to_string();
        assert!(e.contains("no prompt"), "{e}");
    }

    #[test]
    fn a_broken_template_names_its_file() {
        let e = ChatTemplate::new(
            "{% if %}".into(),
            "/m/chat_template.jinja".into(),
            None,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("/m/chat_template.jinja"), "{e}");
    }
}
