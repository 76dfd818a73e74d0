//! Prompts (`prompts/list`, `prompts/get`) and argument completion
//! (`completion/complete`).

use crate::mcp::table::Listed;
use crate::mcp::tool::{Content, ToolContext, ToolError};
use futures_lite::future::BoxedLocal;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

/// A prompt as listed by `prompts/list`.
#[derive(Debug, Clone, Serialize)]
pub struct Prompt {
    name: String,
    description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    arguments: Vec<PromptArgument>,
}

/// One argument a prompt accepts.
#[derive(Debug, Clone, Serialize)]
pub struct PromptArgument {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    required: bool,
}

impl Prompt {
    /// Describes a prompt without arguments.
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        Prompt {
            name: name.into(),
            description: description.into(),
            arguments: Vec::new(),
        }
    }

    /// Adds an argument; `prompts/get` rejects calls missing a required one.
    pub fn argument(
        mut self,
        name: impl Into<String>,
        description: impl Into<String>,
        required: bool,
    ) -> Self {
        self.arguments.push(PromptArgument {
            name: name.into(),
            description: Some(description.into()),
            required,
        });
        self
    }

    /// The prompt's unique name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The first required argument `arguments` lacks, if any.
    pub(crate) fn missing_argument(&self, arguments: &HashMap<String, String>) -> Option<&str> {
        self.arguments
            .iter()
            .find(|a| a.required && !arguments.contains_key(&a.name))
            .map(|a| a.name.as_str())
    }
}

impl Listed for Prompt {
    fn key(&self) -> &str {
        &self.name
    }
}

/// Who speaks a prompt message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The user.
    User,
    /// The model.
    Assistant,
}

/// One message of a `prompts/get` result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromptMessage {
    role: Role,
    content: Content,
}

impl PromptMessage {
    /// A message from `role` with one content item.
    pub fn new(role: Role, content: Content) -> Self {
        PromptMessage { role, content }
    }
}

/// The result of `prompts/get`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromptResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    messages: Vec<PromptMessage>,
}

impl PromptResult {
    /// A result with these messages and no description.
    pub fn new(messages: Vec<PromptMessage>) -> Self {
        PromptResult {
            description: None,
            messages,
        }
    }

    /// Sets the optional `description`.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }
}

/// What a prompt handler returns: a future that may be `!Send`.
pub type PromptFuture = BoxedLocal<Result<PromptResult, ToolError>>;

/// A type-erased prompt handler; it gets the call's string arguments.
pub(crate) type PromptHandler =
    Arc<dyn Fn(ToolContext, HashMap<String, String>) -> PromptFuture + Send + Sync>;

/// What `completion/complete` completes an argument of.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CompletionRef {
    /// `ref/prompt`: an argument of the prompt with this name.
    Prompt(String),
    /// `ref/resource`: a variable of the resource template with this `uriTemplate`.
    Resource(String),
}

/// What a completion handler is asked to complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletionRequest {
    /// The argument or template variable being completed.
    pub argument: String,
    /// What the user has typed so far.
    pub value: String,
    /// Values of arguments already resolved (`context.arguments`).
    pub context: HashMap<String, String>,
}

/// What a completion handler returns: candidate values, best first.
pub type CompletionFuture = BoxedLocal<Result<Vec<String>, ToolError>>;

/// A type-erased completion handler.
pub(crate) type CompletionHandler =
    Arc<dyn Fn(ToolContext, CompletionRequest) -> CompletionFuture + Send + Sync>;

/// Spec (completion): "Maximum 100 items per response".
const MAX_COMPLETIONS: usize = 100;

/// The `completion` member of a `completion/complete` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Completion {
    values: Vec<String>,
    total: usize,
    has_more: bool,
}

impl Completion {
    /// Keeps the first 100 values and reports how many there were.
    pub(crate) fn from_values(mut values: Vec<String>) -> Self {
        let total = values.len();
        values.truncate(MAX_COMPLETIONS);
        Completion {
            has_more: total > values.len(),
            values,
            total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn completion_caps_at_100() {
        let c = Completion::from_values((0..150).map(|i| i.to_string()).collect());
        let v = serde_json::to_value(&c).expect("json");
        assert_eq!(v["values"].as_array().map(Vec::len), Some(100));
        assert_eq!((&v["total"], &v["hasMore"]), (&json!(150), &json!(true)));
        assert_eq!(
            serde_json::to_value(Completion::from_values(Vec::new())).expect("json"),
            json!({"values":[],"total":0,"hasMore":false})
        );
    }

    #[test]
    fn prompt_arguments_serialize_and_validate() {
        let p = Prompt::new("p", "d")
            .argument("a", "first", true)
            .argument("b", "second", false);
        assert_eq!(
            serde_json::to_value(&p).expect("json"),
            json!({"name":"p","description":"d","arguments":[
                {"name":"a","description":"first","required":true},
                {"name":"b","description":"second","required":false}]})
        );
        let mut args = HashMap::new();
        assert_eq!(p.missing_argument(&args), Some("a"));
        args.insert("a".to_owned(), String::new());
        assert_eq!(p.missing_argument(&args), None);
        assert_eq!(
            serde_json::to_value(Prompt::new("q", "e")).expect("json"),
            json!({"name":"q","description":"e"})
        );
    }
}
