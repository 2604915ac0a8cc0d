//! Meta's error envelope (meta-platform.md §8.1) and the one place a [`GraphError`] becomes an
//! HTTP status.

use http::StatusCode;
use serde_json::{Value, json};

/// The `type` of an error envelope. Clients must key on `code`/`error_subcode`, but the type is
/// part of the wire format, so it is reproduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// `OAuthException`: most errors, despite the name.
    OAuth,
    /// `GraphMethodException`: unknown objects, appsecret_proof problems.
    GraphMethod,
}

impl ErrorType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OAuth => "OAuthException",
            Self::GraphMethod => "GraphMethodException",
        }
    }
}

/// A Graph API error as Meta sends it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} (code {code}, subcode {subcode:?})")]
pub struct GraphError {
    /// `code`.
    pub code: u32,
    /// `error_subcode`, omitted from the body when `None`.
    pub subcode: Option<u32>,
    /// `type`.
    pub error_type: ErrorType,
    /// `message`.
    pub message: String,
    /// `is_transient`.
    pub is_transient: bool,
    /// `error_data` (WhatsApp errors carry `{"messaging_product","details"}`).
    pub error_data: Option<Value>,
}

impl GraphError {
    /// An `OAuthException` with `code` and `message`.
    pub fn new(code: u32, message: impl Into<String>) -> Self {
        Self {
            code,
            subcode: None,
            error_type: ErrorType::OAuth,
            message: message.into(),
            is_transient: false,
            error_data: None,
        }
    }

    /// With `error_subcode`.
    pub fn with_subcode(mut self, subcode: u32) -> Self {
        self.subcode = Some(subcode);
        self
    }

    /// As a `GraphMethodException`.
    pub fn method_exception(mut self) -> Self {
        self.error_type = ErrorType::GraphMethod;
        self
    }

    /// Marked `is_transient: true`.
    pub fn transient(mut self) -> Self {
        self.is_transient = true;
        self
    }

    /// With WhatsApp's `error_data.details`.
    pub fn whatsapp_details(mut self, details: impl Into<String>) -> Self {
        self.error_data = Some(json!({"messaging_product": "whatsapp", "details": details.into()}));
        self
    }

    /// The only mapping to HTTP. Meta answers 400 for almost everything (the IG docs list 400
    /// for their whole table); 5xx is reserved for its own transient failures (codes 1/2 with
    /// `is_transient`). A non-transient code 1 ("Error validating client secret.") is a 400.
    pub fn http_status(&self) -> StatusCode {
        match self.code {
            1 | 2 if self.is_transient => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The envelope `{"error":{...}}` with `fbtrace_id` (the same value as the `x-fb-trace-id`
    /// header).
    pub fn to_body(&self, fbtrace_id: &str) -> Value {
        let mut e = serde_json::Map::new();
        e.insert("message".into(), self.message.clone().into());
        e.insert("type".into(), self.error_type.as_str().into());
        e.insert("code".into(), self.code.into());
        if let Some(s) = self.subcode {
            e.insert("error_subcode".into(), s.into());
        }
        if let Some(d) = &self.error_data {
            e.insert("error_data".into(), d.clone());
        }
        e.insert("is_transient".into(), self.is_transient.into());
        e.insert("fbtrace_id".into(), fbtrace_id.into());
        json!({ "error": e })
    }

    // --- the errors the simulator produces, worded like Meta's ---

    /// 104: no token at all.
    pub fn missing_token() -> Self {
        Self::new(104, "An access token is required to request this resource.")
    }

    /// 190 without subcode: a token Meta never issued.
    pub fn unparsable_token() -> Self {
        Self::new(190, "Invalid OAuth access token - Cannot parse access token")
    }

    /// 190 with a subcode: an invalidated or expired token.
    pub fn invalid_token(subcode: u32, message: impl Into<String>) -> Self {
        Self::new(190, message).with_subcode(subcode)
    }

    /// 100/33: unknown object, or one the token may not see.
    pub fn unsupported(method: &http::Method, id: &str) -> Self {
        let verb = method.as_str().to_ascii_lowercase();
        Self::new(
            100,
            format!(
                "Unsupported {verb} request. Object with ID '{id}' does not exist, cannot be loaded due to \
                 missing permissions, or does not support this operation. Please read the Graph API \
                 documentation at https://developers.facebook.com/docs/graph-api"
            ),
        )
        .with_subcode(33)
        .method_exception()
    }

    /// 100: a field or edge the node type does not have.
    pub fn nonexisting_field(field: &str, node_type: &str) -> Self {
        Self::new(
            100,
            format!("(#100) Tried accessing nonexisting field ({field}) on node type ({node_type})"),
        )
    }

    /// 2500: a path with more components than any endpoint.
    pub fn unknown_path(rest: &str) -> Self {
        Self::new(2500, format!("Unknown path components: {rest}"))
    }

    /// 100: a required parameter is missing.
    pub fn missing_param(name: &str) -> Self {
        Self::new(100, format!("(#100) The parameter {name} is required"))
    }

    /// 100: a parameter has a bad value.
    pub fn invalid_param(message: impl Into<String>) -> Self {
        Self::new(100, format!("(#100) {}", message.into()))
    }

    /// 10: the token lacks a permission the endpoint needs.
    pub fn missing_permission(scope: &str) -> Self {
        Self::new(
            10,
            format!("(#10) This endpoint requires the '{scope}' permission."),
        )
    }

    /// 200: generic permissions error (e.g. a Page token used on another Page).
    pub fn permissions_error() -> Self {
        Self::new(200, "(#200) Permissions error")
    }

    /// 210: a Page token was needed.
    pub fn page_token_required() -> Self {
        Self::new(
            210,
            "(#210) A page access token is required to request this resource.",
        )
    }

    /// 230: the messaging permission is missing on a Send API call.
    pub fn messaging_permission(scope: &str) -> Self {
        Self::new(
            230,
            format!("(#230) Requires {scope} permission to manage the object"),
        )
    }

    /// 100: appsecret_proof did not match.
    pub fn invalid_proof() -> Self {
        Self::new(100, "Invalid appsecret_proof provided in the API argument").method_exception()
    }

    /// 100: appsecret_proof is required but absent.
    pub fn proof_required() -> Self {
        Self::new(
            100,
            "API calls from the server require an appsecret_proof argument",
        )
        .method_exception()
    }

    /// 10/2018278 (Messenger) or 10/2534022 (Instagram): sent outside the allowed window. The
    /// Instagram subcode is observed in third-party code, not confirmed by Meta (UNCERTAIN).
    pub fn outside_window(instagram: bool) -> Self {
        let subcode = if instagram { 2_534_022 } else { 2_018_278 };
        Self::new(
            10,
            "(#10) This message is sent outside of allowed window. Learn more about the new policy here: \
             https://developers.facebook.com/docs/messenger-platform/policy-overview",
        )
        .with_subcode(subcode)
    }

    /// 100/2018001: the PSID/IGSID names nobody who wrote to the Page.
    pub fn no_matching_user() -> Self {
        Self::new(100, "(#100) No matching user found").with_subcode(2_018_001)
    }

    /// 10/2018300: another app owns the thread (Conversation Routing). Meta documents only "a
    /// permission-class error"; the subcode is made up (UNCERTAIN, meta-platform.md §3.4/§4).
    pub fn not_thread_owner() -> Self {
        Self::new(
            10,
            "(#10) This person is being handled by another app: the app is not the thread owner",
        )
        .with_subcode(2_018_300)
    }

    /// WhatsApp 131047, when reported synchronously.
    pub fn whatsapp_reengagement() -> Self {
        Self::new(131_047, "(#131047) Re-engagement message").whatsapp_details(
            "Message failed to send because more than 24 hours have passed since the customer last \
             replied to this number.",
        )
    }

    /// WhatsApp 132001: no approved template with this name in this language.
    pub fn template_missing(name: &str, language: &str) -> Self {
        Self::new(
            132_001,
            "(#132001) Template name does not exist in the translation",
        )
        .whatsapp_details(format!("template name ({name}) does not exist in {language}"))
    }

    /// WhatsApp 132000: the body parameters do not match the template's placeholders.
    pub fn template_param_count(got: usize, expected: usize) -> Self {
        Self::new(
            132_000,
            "(#132000) Number of parameters does not match the expected number of params",
        )
        .whatsapp_details(format!(
            "body: number of localizable_params ({got}) does not match the expected number of params ({expected})"
        ))
    }

    /// WhatsApp 132015: the template is paused for low quality.
    pub fn template_paused(name: &str) -> Self {
        Self::new(132_015, "(#132015) Template is Paused").whatsapp_details(format!(
            "Template ({name}) is paused due to low quality so it cannot be sent in a template message"
        ))
    }

    /// WhatsApp 132016: the template was paused too often and is disabled for good.
    pub fn template_disabled(name: &str) -> Self {
        Self::new(132_016, "(#132016) Template is disabled").whatsapp_details(format!(
            "Template ({name}) has been paused too many times due to low quality and is now permanently disabled"
        ))
    }

    /// 2500: `me` with an app token.
    pub fn no_current_user() -> Self {
        Self::new(
            2500,
            "An active access token must be used to query information about the current user.",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_omits_absent_subcode_and_carries_trace_id() {
        let e = GraphError::missing_token().to_body("AbC");
        assert_eq!(
            e,
            json!({"error":{"message":"An access token is required to request this resource.",
                "type":"OAuthException","code":104,"is_transient":false,"fbtrace_id":"AbC"}})
        );
        let e = GraphError::invalid_token(460, "x").to_body("t");
        assert_eq!(e["error"]["error_subcode"], 460);
    }

    #[test]
    fn only_transient_codes_1_and_2_are_500() {
        assert_eq!(
            GraphError::new(2, "x").transient().http_status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            GraphError::new(1, "Error validating client secret.").http_status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            GraphError::new(4, "x").transient().http_status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            GraphError::invalid_proof().to_body("t")["error"]["type"],
            "GraphMethodException"
        );
    }
}
