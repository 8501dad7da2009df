//! Schema pieces the derive macros cannot state, such as bounds on the items of a list.

use std::borrow::Cow;

use utoipa::openapi::schema::{Schema, Type};
use utoipa::openapi::{ObjectBuilder, RefOr};

/// Printable text with at least one visible character: what `valid_name`-style checks accept.
pub const PRINTABLE: &str = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$";

/// Text with no control character (`char::is_control`: C0, DEL and C1), what credential checks
/// accept beside their length.
pub const NO_CONTROL: &str = r"^[^\x00-\x1f\x7f-\x9f]*$";

/// A string of `MIN` to `MAX` printable characters, for list items (`Vec<Text<1, 200>>` in
/// `value_type`).
#[derive(Debug)]
pub struct Text<const MIN: usize, const MAX: usize>;

impl<const MIN: usize, const MAX: usize> utoipa::PartialSchema for Text<MIN, MAX> {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(MIN))
            .max_length(Some(MAX))
            .pattern(Some(PRINTABLE))
            .into()
    }
}

impl<const MIN: usize, const MAX: usize> utoipa::ToSchema for Text<MIN, MAX> {
    fn name() -> Cow<'static, str> {
        Cow::Owned(format!("Text{MIN}To{MAX}"))
    }
}

/// No body field may hold U+0000 (`extract::parse_json` refuses it, PostgreSQL text cannot store
/// it): the pattern that says so, for request text with no pattern of its own.
pub const NUL_FREE: &str = r"^[^\x00]*$";

/// Gives every free-text string a request body can carry (no pattern, format or enum of its own)
/// the [`NUL_FREE`] pattern, map keys included, so the document excludes exactly what the server
/// refuses. Runs over the finished document, so a new field cannot be forgotten.
pub fn forbid_nul_in_request_text(document: &mut utoipa::openapi::OpenApi) {
    let mut pending = Vec::new();
    for item in document.paths.paths.values_mut() {
        let operations =
            [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch].into_iter().flatten();
        for operation in operations {
            let Some(body) = operation.request_body.as_mut() else { continue };
            for content in body.content.values_mut() {
                if let Some(schema) = content.schema.as_mut() {
                    visit(schema, &mut pending);
                }
            }
        }
    }
    let Some(components) = document.components.as_mut() else { return };
    let mut done = std::collections::BTreeSet::new();
    while let Some(name) = pending.pop() {
        if !done.insert(name.clone()) {
            continue;
        }
        if let Some(schema) = components.schemas.get_mut(&name) {
            visit(schema, &mut pending);
        }
    }
}

fn visit(schema: &mut RefOr<Schema>, pending: &mut Vec<String>) {
    match schema {
        RefOr::Ref(reference) => {
            if let Some(name) = reference.ref_location.strip_prefix("#/components/schemas/") {
                pending.push(name.to_owned());
            }
        }
        RefOr::T(schema) => visit_schema(schema, pending),
    }
}

fn visit_schema(schema: &mut Schema, pending: &mut Vec<String>) {
    use utoipa::openapi::schema::{AdditionalProperties, ArrayItems};
    match schema {
        Schema::Object(object) => {
            if is_free_text(object) {
                object.pattern = Some(NUL_FREE.to_owned());
            }
            for property in object.properties.values_mut() {
                visit(property, pending);
            }
            if let Some(additional) = object.additional_properties.as_deref_mut()
                && let AdditionalProperties::RefOr(values) = additional
            {
                visit(values, pending);
                match object.property_names.as_deref_mut() {
                    Some(Schema::Object(keys)) if is_free_text(keys) => keys.pattern = Some(NUL_FREE.to_owned()),
                    Some(_) => {}
                    None => {
                        let keys = ObjectBuilder::new().schema_type(Type::String).pattern(Some(NUL_FREE)).build();
                        object.property_names = Some(Box::new(Schema::Object(keys)));
                    }
                }
            }
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                visit(items, pending);
            }
        }
        Schema::OneOf(one_of) => one_of.items.iter_mut().for_each(|item| visit(item, pending)),
        Schema::AllOf(all_of) => all_of.items.iter_mut().for_each(|item| visit(item, pending)),
        Schema::AnyOf(any_of) => any_of.items.iter_mut().for_each(|item| visit(item, pending)),
        _ => {}
    }
}

fn is_free_text(object: &utoipa::openapi::schema::Object) -> bool {
    use utoipa::openapi::schema::SchemaType;
    let text = match &object.schema_type {
        SchemaType::Type(kind) => *kind == Type::String,
        SchemaType::Array(kinds) => kinds.contains(&Type::String),
        SchemaType::AnyValue => false,
    };
    text && object.pattern.is_none() && object.format.is_none() && object.enum_values.is_none()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// `NO_CONTROL` refuses exactly the characters `char::is_control` does.
    #[test]
    fn no_control_is_char_is_control() {
        let pattern = regex::Regex::new(NO_CONTROL).unwrap();
        // Every white space and control character is below U+3100; a few above stand for the rest.
        for c in (0..=0x3100).chain([0xfeff, 0xffff, 0x1_0000, 0x10_ffff]).filter_map(char::from_u32) {
            assert_eq!(pattern.is_match(&c.to_string()), !c.is_control(), "{:?}", c);
        }
    }
}
