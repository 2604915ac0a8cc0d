//! WhatsApp Business Accounts and phone numbers: `GET /{v}/{waba-id}`,
//! `GET /{v}/{waba-id}/phone_numbers`, `GET /{v}/{phone-number-id}`.

use serde_json::{Value, json};

use super::accounts::{paged, window};
use super::errors::GraphError;
use super::fields::Field;
use super::nodes::{render, requested};
use super::request::{GraphRequest, Reply};
use super::world::{Auth, Node, Phone, World};

const PHONE_DEFAULT_FIELDS: &[&str] = &[
    "verified_name",
    "code_verification_status",
    "display_phone_number",
    "quality_rating",
    "platform_type",
    "throughput",
    "id",
];

fn require_management(auth: &Auth) -> Result<(), GraphError> {
    if auth.has("whatsapp_business_management") {
        Ok(())
    } else {
        Err(GraphError::missing_permission("whatsapp_business_management"))
    }
}

/// `GET` on a WABA or phone number.
pub fn get(world: &World, auth: &Auth, req: &GraphRequest, node: &Node) -> Result<Reply, GraphError> {
    match node {
        Node::Waba(id) => {
            if !world.can_access_waba(auth, id) {
                return Err(GraphError::unsupported(&req.method, id));
            }
            require_management(auth)?;
            let name = world.waba(id).map(|w| w.name.clone()).unwrap_or_default();
            let fields = requested(req, &["id", "name", "timezone_id", "message_template_namespace"])?;
            let v = render(&fields, id, |f| {
                Ok(Some(match f.name.as_str() {
                    "id" => return Ok(None),
                    "name" => name.clone().into(),
                    "currency" => "USD".into(),
                    "timezone_id" => "1".into(),
                    "message_template_namespace" => format!("sim_{id}").into(),
                    "account_review_status" => "APPROVED".into(),
                    other => return Err(GraphError::nonexisting_field(other, node.type_name())),
                }))
            })?;
            Ok(Reply::Json(v))
        }
        Node::Phone(id) => {
            let Some(phone) = world
                .phone(id)
                .filter(|p| world.can_access_waba(auth, &p.waba_id))
            else {
                return Err(GraphError::unsupported(&req.method, id));
            };
            if !auth.has("whatsapp_business_management") && !auth.has("whatsapp_business_messaging") {
                return Err(GraphError::missing_permission("whatsapp_business_management"));
            }
            Ok(Reply::Json(phone_fields(
                phone,
                &requested(req, PHONE_DEFAULT_FIELDS)?,
            )?))
        }
        other => Err(GraphError::unsupported(&req.method, other.id())),
    }
}

fn phone_fields(phone: &Phone, fields: &[Field]) -> Result<Value, GraphError> {
    render(fields, &phone.id, |f| {
        Ok(Some(match f.name.as_str() {
            "id" => return Ok(None),
            "display_phone_number" => phone.display.clone().into(),
            "verified_name" => phone.verified_name.clone().into(),
            "quality_rating" => phone.quality_rating.clone().into(),
            "code_verification_status" => "VERIFIED".into(),
            "platform_type" => "CLOUD_API".into(),
            "throughput" => json!({"level": "STANDARD"}),
            "name_status" => "APPROVED".into(),
            "status" => "CONNECTED".into(),
            other => {
                return Err(GraphError::nonexisting_field(
                    other,
                    "WhatsAppBusinessPhoneNumber",
                ));
            }
        }))
    })
}

/// `GET /{v}/{waba-id}/phone_numbers`.
pub fn phone_numbers(
    world: &World,
    auth: &Auth,
    req: &GraphRequest,
    node: &Node,
) -> Result<Reply, GraphError> {
    let Node::Waba(waba_id) = node else {
        return Err(GraphError::nonexisting_field("phone_numbers", node.type_name()));
    };
    if !world.can_access_waba(auth, waba_id) {
        return Err(GraphError::unsupported(&req.method, waba_id));
    }
    require_management(auth)?;
    let fields = requested(req, PHONE_DEFAULT_FIELDS)?;
    let phones = world.phones_of(waba_id);
    let ids: Vec<String> = phones.iter().map(|p| p.id.clone()).collect();
    let (start, end) = window(req, &ids)?;
    let data = phones[start..end]
        .iter()
        .map(|p| phone_fields(p, &fields))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Reply::Json(paged(req, data, &ids, start, end)))
}
