//! Reading the model's answer and fitting it to the channel. Pure: no I/O.

use serde_json::{Map, Value};

use crate::request::Measure;
use crate::{AiError, Channel};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParsedAnswer {
    pub reply: String,
    pub confidence: f32,
    pub wants_human: bool,
}

/// Reads `{"reply", "confidence", "wants_human"}` from the message content, tolerating a
/// ```` ```json ```` fence or prose around the object. Content that is not JSON at all becomes the
/// reply with confidence 0; content that starts like JSON but does not parse (typically cut off
/// by the token limit) is [`AiError::Malformed`], so raw JSON never reaches an agent as a draft.
pub(crate) fn parse_content(content: &str) -> Result<ParsedAnswer, AiError> {
    let trimmed = content.trim();
    if trimmed.is_empty() {
        return Err(AiError::Malformed("the answer is empty".into()));
    }
    let body = strip_fence(trimmed);
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(obj)) => return from_object(&obj),
        Ok(Value::String(s)) => return Ok(plain_text(s.trim())),
        Ok(_) => return Err(AiError::Malformed("the answer is JSON but not an object".into())),
        Err(_) => {}
    }
    if let (Some(start), Some(end)) = (body.find('{'), body.rfind('}'))
        && start < end
        && let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(&body[start..=end])
    {
        return from_object(&obj);
    }
    if body.starts_with('{') {
        return Err(AiError::Malformed(
            "the answer starts as JSON but does not parse (cut off?)".into(),
        ));
    }
    // Never log the content itself: it is about a customer.
    tracing::warn!(
        content_chars = body.chars().count(),
        "model did not answer with the requested JSON object; using its text as the reply"
    );
    Ok(plain_text(body))
}

fn plain_text(text: &str) -> ParsedAnswer {
    ParsedAnswer {
        reply: text.to_owned(),
        confidence: 0.0,
        wants_human: false,
    }
}

fn from_object(obj: &Map<String, Value>) -> Result<ParsedAnswer, AiError> {
    let Some(Value::String(reply)) = obj.get("reply") else {
        return Err(AiError::Malformed(
            "the JSON answer has no \"reply\" string".into(),
        ));
    };
    let confidence = match obj.get("confidence") {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|c| c.is_finite())
    .map_or(0.0, |c| c.clamp(0.0, 1.0) as f32);
    let wants_human = match obj.get("wants_human") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.trim().eq_ignore_ascii_case("true"),
        _ => false,
    };
    Ok(ParsedAnswer {
        reply: reply.trim().to_owned(),
        confidence,
        wants_human,
    })
}

/// Drops a Markdown code fence (```` ```json … ``` ````) around the answer.
fn strip_fence(s: &str) -> &str {
    let Some(rest) = s.strip_prefix("```") else {
        return s;
    };
    // The info string ("json") runs to the end of the first line; on a one-line fence it stays,
    // and the search for the object in `parse_content` skips it.
    let rest = rest.split_once('\n').map_or(rest, |(_, body)| body);
    rest.trim_end().strip_suffix("```").unwrap_or(rest).trim()
}

const ELLIPSIS: char = '…';

/// Cuts `text` to what `channel` accepts, on a char boundary, preferring a word break near the end
/// and marking the cut with "…". Returns the text and whether it was cut.
pub fn truncate_for_channel(text: &str, channel: Channel) -> (String, bool) {
    let measure = channel.limit_measure();
    let limit = channel.max_reply_len();
    let len_of = |c: char| match measure {
        Measure::Utf16Units => c.len_utf16(),
        Measure::Utf8Bytes => c.len_utf8(),
    };
    if text.chars().map(len_of).sum::<usize>() <= limit {
        return (text.to_owned(), false);
    }
    let budget = limit.saturating_sub(len_of(ELLIPSIS));
    let mut used = 0;
    let mut cut = 0;
    for (i, c) in text.char_indices() {
        if used + len_of(c) > budget {
            break;
        }
        used += len_of(c);
        cut = i + c.len_utf8();
    }
    let mut kept = &text[..cut];
    // Back off to a word break if one is near; a long unbroken run (CJK, a URL) is cut as is.
    if let Some(ws) = kept.rfind(char::is_whitespace)
        && ws >= cut - cut / 5
    {
        kept = &kept[..ws];
    }
    let mut out = kept.trim_end().to_owned();
    out.push(ELLIPSIS);
    (out, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(content: &str) -> ParsedAnswer {
        parse_content(content).expect("parses")
    }

    #[test]
    fn plain_json_answer() {
        let a = parsed(r#"{"reply": " We open at 8. ", "confidence": 0.82, "wants_human": false}"#);
        assert_eq!(
            a,
            ParsedAnswer {
                reply: "We open at 8.".into(),
                confidence: 0.82,
                wants_human: false
            }
        );
    }

    #[test]
    fn fenced_json_answer() {
        let a = parsed("```json\n{\"reply\": \"Hi!\", \"confidence\": 0.5, \"wants_human\": true}\n```");
        assert_eq!(
            a,
            ParsedAnswer {
                reply: "Hi!".into(),
                confidence: 0.5,
                wants_human: true
            }
        );
        let bare = parsed("```\n{\"reply\": \"Hi!\", \"confidence\": 0.5}\n```");
        assert_eq!(bare.reply, "Hi!");
        let one_line = parsed("```json {\"reply\": \"Yo\", \"confidence\": 0.5}```");
        assert_eq!(one_line.reply, "Yo");
    }

    #[test]
    fn json_with_prose_around_it() {
        let a = parsed("Sure! Here it is: {\"reply\": \"Hello\", \"confidence\": 0.4} Hope it helps.");
        assert_eq!(a.reply, "Hello");
        assert_eq!(a.confidence, 0.4);
    }

    #[test]
    fn non_json_becomes_the_reply_with_zero_confidence() {
        let a = parsed("  Our shop opens at {8} tomorrow.  ");
        assert_eq!(
            a,
            ParsedAnswer {
                reply: "Our shop opens at {8} tomorrow.".into(),
                confidence: 0.0,
                wants_human: false
            }
        );
    }

    #[test]
    fn confidence_is_clamped_and_defaults_to_zero() {
        assert_eq!(parsed(r#"{"reply":"a","confidence":1.7}"#).confidence, 1.0);
        assert_eq!(parsed(r#"{"reply":"a","confidence":-0.3}"#).confidence, 0.0);
        assert_eq!(parsed(r#"{"reply":"a","confidence":"0.6"}"#).confidence, 0.6);
        assert_eq!(parsed(r#"{"reply":"a"}"#).confidence, 0.0);
        assert_eq!(parsed(r#"{"reply":"a","confidence":"high"}"#).confidence, 0.0);
    }

    #[test]
    fn wants_human_is_read() {
        assert!(parsed(r#"{"reply":"","confidence":0.1,"wants_human":true}"#).wants_human);
        assert!(parsed(r#"{"reply":"a","wants_human":"True"}"#).wants_human);
        assert!(!parsed(r#"{"reply":"a","wants_human":false}"#).wants_human);
        assert!(!parsed(r#"{"reply":"a"}"#).wants_human);
    }

    #[test]
    fn unusable_answers_are_malformed() {
        for content in [
            "",
            "   ",
            r#"{"reply": "Hel"#,
            r#"{"text": "no reply field"}"#,
            "[1, 2]",
            r#"{"reply": 42}"#,
        ] {
            assert!(
                matches!(parse_content(content), Err(AiError::Malformed(_))),
                "{content:?}"
            );
        }
    }

    #[test]
    fn a_json_string_is_taken_as_text() {
        assert_eq!(parsed(r#""Just text""#).reply, "Just text");
    }

    fn measured(s: &str, channel: Channel) -> usize {
        match channel.limit_measure() {
            Measure::Utf16Units => s.encode_utf16().count(),
            Measure::Utf8Bytes => s.len(),
        }
    }

    #[test]
    fn short_text_is_untouched() {
        let text = "é".repeat(500);
        assert_eq!(
            truncate_for_channel(&text, Channel::Instagram),
            (text.clone(), false)
        );
        let exact = "a".repeat(2000);
        assert_eq!(
            truncate_for_channel(&exact, Channel::Messenger),
            (exact.clone(), false)
        );
    }

    #[test]
    fn instagram_limit_counts_utf8_bytes() {
        let text = "é".repeat(600); // 1200 bytes, 600 chars
        let (out, cut) = truncate_for_channel(&text, Channel::Instagram);
        assert!(cut);
        assert!(out.len() <= 1000, "{} bytes", out.len());
        assert!(out.len() >= 990, "cut too much: {} bytes", out.len());
        assert!(out.ends_with('…'));
        assert!(out.trim_end_matches('…').chars().all(|c| c == 'é'));
    }

    #[test]
    fn messenger_limit_counts_utf16_units_and_keeps_emoji_whole() {
        let text = "😀".repeat(1200); // 2 UTF-16 units each
        let (out, cut) = truncate_for_channel(&text, Channel::Messenger);
        assert!(cut);
        assert!(measured(&out, Channel::Messenger) <= 2000);
        assert_eq!(out.chars().filter(|&c| c == '😀').count(), 999);
        assert!(out.ends_with('…'));
    }

    #[test]
    fn cuts_at_a_word_break_when_one_is_near() {
        let text = "mot ".repeat(1200); // 4800 chars, ASCII
        let (out, cut) = truncate_for_channel(&text, Channel::WhatsApp);
        assert!(cut);
        assert!(measured(&out, Channel::WhatsApp) <= 4096);
        assert!(out.ends_with("mot…"), "{}", &out[out.len() - 10..]);
    }

    #[test]
    fn every_channel_result_fits_for_mixed_scripts() {
        let text = "Grüße 你好 😀 مرحبا ".repeat(400);
        for channel in [Channel::Messenger, Channel::Instagram, Channel::WhatsApp] {
            let (out, cut) = truncate_for_channel(&text, channel);
            assert!(cut, "{channel}");
            let len = measured(&out, channel);
            assert!(len <= channel.max_reply_len(), "{channel}: {len}");
            assert!(
                len > channel.max_reply_len() * 3 / 4,
                "{channel}: cut too much ({len})"
            );
        }
    }
}
