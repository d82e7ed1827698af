//! What the geometry engines' readers are built from: reading one element's output straight from a
//! worker's answer text into the engine's typed input, in one pass, without a JSON tree.
//!
//! Each engine owns its reader (`boxes.rs`: [`BoxAnswer`](super::boxes::BoxAnswer), `spans.rs`:
//! [`EntityAnswer`](super::spans::EntityAnswer), `segmentation.rs`:
//! [`SegmentationAnswer`](super::segmentation::SegmentationAnswer)); its driver reads each answer with
//! [`Answer::read_output`](super::answers::Answer::read_output). The readers are as lenient as Ground
//! Truth's templates need: a field of the wrong JSON type is a problem of that field (a dropped box, a
//! skipped worker), never a parse error, and a name given twice keeps its last value, as a JSON object map
//! does.
//!
//! A reader sees every value the way `serde_json::Value`'s accessors would ([`Scalar`]: `as_f64`,
//! `as_u64`, `as_str`), and checks what it does not keep exactly as a tree parse would (numbers in
//! range, nesting within serde_json's limit, escapes), so an answer a tree parse refuses is refused with
//! the same message.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON value as a reader sees it: a scalar kept, an array or an object checked and dropped.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar<'a> {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    Str(Cow<'a, str>),
    /// An array or an object (read by a reader that takes them, else checked and dropped).
    Composite,
}

impl<'a> Scalar<'a> {
    /// As `Value::as_f64`: any number.
    pub(crate) fn as_f64(&self) -> Option<f64> {
        match *self {
            Scalar::U64(u) => Some(u as f64),
            Scalar::I64(i) => Some(i as f64),
            Scalar::F64(f) => Some(f),
            _ => None,
        }
    }

    /// As `Value::as_u64`: a non-negative integer.
    pub(crate) fn as_u64(&self) -> Option<u64> {
        match *self {
            Scalar::U64(u) => Some(u),
            Scalar::I64(i) => u64::try_from(i).ok(),
            _ => None,
        }
    }

    /// The string, when it is one.
    pub(crate) fn into_str(self) -> Option<Cow<'a, str>> {
        match self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }

    /// `true`/`false`, also as the strings Liquid templates sometimes produce.
    pub(crate) fn as_flag(&self) -> Option<bool> {
        match self {
            Scalar::Bool(flag) => Some(*flag),
            Scalar::Str(text) if text.eq_ignore_ascii_case("true") => Some(true),
            Scalar::Str(text) if text.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }
}

/// A reader of one JSON value of any type. Each JSON type it does not take gives [`Self::other`], after
/// the value was checked.
pub(crate) trait ReadJson<'de>: Sized {
    /// A value of a JSON type this reader does not take.
    fn other() -> Self;

    /// `null`, a boolean, a number or a string.
    fn scalar(_value: Scalar<'de>) -> Self {
        Self::other()
    }

    /// An array.
    fn seq<S: SeqAccess<'de>>(seq: S) -> Result<Self, S::Error> {
        check_seq(seq)?;
        Ok(Self::other())
    }

    /// An object.
    fn map<M: MapAccess<'de>>(map: M) -> Result<Self, M::Error> {
        check_map(map)?;
        Ok(Self::other())
    }
}

/// Reads every item of an array and drops it.
pub(crate) fn check_seq<'de, S: SeqAccess<'de>>(mut seq: S) -> Result<(), S::Error> {
    while seq.next_element::<Read<Scalar<'de>>>()?.is_some() {}
    Ok(())
}

/// Reads every member of an object and drops it.
pub(crate) fn check_map<'de, M: MapAccess<'de>>(mut map: M) -> Result<(), M::Error> {
    while map.next_key::<Read<Scalar<'de>>>()?.is_some() {
        map.next_value::<Read<Scalar<'de>>>()?;
    }
    Ok(())
}

/// The next key of an object (keys are strings in JSON; a reader over a tree gets them as strings too).
pub(crate) fn next_key<'de, M: MapAccess<'de>>(
    map: &mut M,
) -> Result<Option<Cow<'de, str>>, M::Error> {
    Ok(map
        .next_key::<Read<Scalar<'de>>>()?
        .map(|Read(key)| key.into_str().unwrap_or_default()))
}

/// The next value of an object, read by `T`.
pub(crate) fn next_value<'de, T: ReadJson<'de>, M: MapAccess<'de>>(
    map: &mut M,
) -> Result<T, M::Error> {
    map.next_value::<Read<T>>().map(|Read(value)| value)
}

impl<'de> ReadJson<'de> for Scalar<'de> {
    fn other() -> Self {
        Scalar::Composite
    }

    fn scalar(value: Scalar<'de>) -> Self {
        value
    }
}

/// `T` as a `Deserialize` (from an answer's text, or from a `serde_json::Value` a caller holds).
#[derive(Debug)]
pub(crate) struct Read<T>(pub(crate) T);

impl<'de, T: ReadJson<'de>> Deserialize<'de> for Read<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ReadVisitor<T>(PhantomData<T>);
        impl<'de, T: ReadJson<'de>> Visitor<'de> for ReadVisitor<T> {
            type Value = Read<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Read<T>, E> {
                Ok(Read(T::scalar(Scalar::Null)))
            }
            fn visit_none<E: de::Error>(self) -> Result<Read<T>, E> {
                Ok(Read(T::scalar(Scalar::Null)))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Read<T>, D::Error> {
                Read::deserialize(d)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Read<T>, E> {
                Ok(Read(T::scalar(Scalar::Bool(v))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Read<T>, E> {
                Ok(Read(T::scalar(Scalar::U64(v))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Read<T>, E> {
                Ok(Read(T::scalar(Scalar::I64(v))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Read<T>, E> {
                Ok(Read(T::scalar(Scalar::F64(v))))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Read<T>, E> {
                Ok(Read(T::scalar(Scalar::Str(Cow::Borrowed(v)))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Read<T>, E> {
                Ok(Read(T::scalar(Scalar::Str(Cow::Owned(v.to_owned())))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Read<T>, E> {
                Ok(Read(T::scalar(Scalar::Str(Cow::Owned(v)))))
            }
            fn visit_seq<S: SeqAccess<'de>>(self, seq: S) -> Result<Read<T>, S::Error> {
                T::seq(seq).map(Read)
            }
            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Read<T>, M::Error> {
                T::map(map).map(Read)
            }
        }
        deserializer.deserialize_any(ReadVisitor(PhantomData))
    }
}

/// Reads a caller's JSON tree with `T` (tests, benches and tools that hold one; the batch reads answer
/// texts).
pub(crate) fn read_tree<'a, T: ReadJson<'a>>(value: &'a serde_json::Value) -> T {
    // A tree is valid JSON and the readers never refuse a type: reading one cannot fail.
    Read::<T>::deserialize(value).map_or_else(|_| T::other(), |Read(read)| read)
}

/// An array whose items are read by `T`, with their positions; `null` is no array, anything else is
/// not a list.
pub(crate) enum List<T> {
    /// `null`.
    Null,
    /// The items in order.
    Items(Vec<T>),
    /// Neither an array nor `null`.
    Other,
}

impl<'de, T: ReadJson<'de>> ReadJson<'de> for List<T> {
    fn other() -> Self {
        List::Other
    }

    fn scalar(value: Scalar<'de>) -> Self {
        match value {
            Scalar::Null => List::Null,
            _ => List::Other,
        }
    }

    fn seq<S: SeqAccess<'de>>(mut seq: S) -> Result<Self, S::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(4));
        while let Some(Read(item)) = seq.next_element::<Read<T>>()? {
            items.push(item);
        }
        Ok(List::Items(items))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_read_as_a_tree_s_accessors_see_them() {
        fn read(text: &str) -> Scalar<'_> {
            serde_json::from_str::<Read<Scalar<'_>>>(text).unwrap().0
        }
        assert_eq!(read("3").as_u64(), Some(3));
        assert_eq!(read("3").as_f64(), Some(3.0));
        assert_eq!(read("-3").as_u64(), None);
        assert_eq!(read("-3").as_f64(), Some(-3.0));
        assert_eq!(read("2.5").as_u64(), None);
        assert_eq!(read(r#""TRUE""#).as_flag(), Some(true));
        assert_eq!(read(r#"{"a":[1,{"b":2}]}"#), Scalar::Composite);
        assert_eq!(read(r#""caf\u00e9""#).into_str().as_deref(), Some("café"));
        for tree in ["3", "-3", "2.5", "true", "null", r#""x""#] {
            let value: serde_json::Value = serde_json::from_str(tree).unwrap();
            assert_eq!(read_tree::<Scalar<'_>>(&value), read(tree), "{tree}");
        }
    }

    #[test]
    fn what_a_reader_drops_is_checked_as_a_tree_parse_checks_it() {
        for text in [
            r#"{"a":1e400}"#,
            r#"[1,"\ud800"]"#,
            &format!("{}{}", "[".repeat(200), "]".repeat(200)),
        ] {
            let tree = serde_json::from_str::<serde_json::Value>(text).unwrap_err();
            let read = serde_json::from_str::<Read<Scalar<'_>>>(text).unwrap_err();
            assert_eq!(read.to_string(), tree.to_string(), "{text}");
        }
    }

    use proptest::prelude::*;

    use crate::TaskType;
    use crate::consolidate::answers::{Answer, AnswerError, parse_content};
    use crate::consolidate::boxes::{BoxOutput, parse_box_answer};
    use crate::consolidate::segmentation::{SegmentationOutput, parse_segmentation_answer};
    use crate::consolidate::spans::{EntityOutput, parse_entity_answer};

    /// JSON text near the geometry outputs' shapes: their keys, numbers as integers, floats and strings,
    /// flags as strings, escapes, and (rarely) a number out of range, a lone surrogate or deep nesting.
    fn json() -> impl Strategy<Value = String> {
        let scalar = prop_oneof![
            1 => prop::sample::select(vec!["1e400".to_owned(), "\"\\ud800\"".to_owned(), format!("{}{}", "[".repeat(130), "]".repeat(130))]),
            6 => prop::sample::select(vec!["null", "true", "false", "4.0", "-0", "1e2", "-3", "2.5", "9.5e15"]).prop_map(str::to_owned),
            10 => (-5i64..700).prop_map(|n| n.to_string()),
            12 => prop::sample::select(vec!["\"a\"", "\"car\"", "\"TRUE\"", "\"#fff\"", "\"#2ca02c\"", "\"#GGG\"", "\"caf\\u00e9\"", "\"12\"", "\" \""]).prop_map(str::to_owned),
        ];
        let key = prop::sample::select(vec![
            "boundingBoxes",
            "inputImageProperties",
            "initialValueModified",
            "label",
            "left",
            "top",
            "width",
            "height",
            "entities",
            "startOffset",
            "endOffset",
            "labelMappings",
            "labeledImage",
            "pngImageData",
            "color",
            "x",
            "Bird",
            "caf\\u00e9",
        ]);
        scalar.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec((key.clone(), inner), 0..7).prop_map(|members| {
                    let members: Vec<String> = members
                        .iter()
                        .map(|(k, v)| format!("\"{k}\":{v}"))
                        .collect();
                    format!("{{{}}}", members.join(","))
                }),
            ]
        })
    }

    /// An answer with an output `el`, maybe beside another element or given twice.
    fn answer_text() -> impl Strategy<Value = String> {
        prop_oneof![
            json().prop_map(|v| format!("{{\"el\":{v}}}")),
            (json(), json()).prop_map(|(v, w)| format!("{{\"el\":{v},\"other\":{w}}}")),
            (json(), json()).prop_map(|(v, w)| format!("{{\"el\":{v},\"el\":{w}}}")),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]
        /// Read from the answer's text, an output is what the same reader makes of the answer's tree,
        /// and the text is refused exactly when (and as) a tree parse refuses it.
        #[test]
        fn an_output_read_from_text_is_the_output_read_from_its_tree(text in answer_text()) {
            let Ok(answer) = Answer::parse(&text) else { return Ok(()) };
            for task in [TaskType::BoundingBox, TaskType::NamedEntityRecognition, TaskType::SemanticSegmentation] {
                let Ok(element) = answer.element_for(task) else { continue };
                let tree = parse_content(&text).and_then(|mut tree| {
                    tree.remove(element.name.as_ref())
                        .ok_or_else(|| AnswerError::Invalid("no such element".to_owned()))
                });
                match &tree {
                    Err(refused) => {
                        let read = answer.read_output::<Read<Scalar<'_>>>(element).map(|_| ());
                        prop_assert_eq!(read, Err(refused.clone()), "{}", text);
                    }
                    Ok(tree) => match task {
                        TaskType::BoundingBox => prop_assert_eq!(
                            answer.read_output::<Read<BoxOutput<'_>>>(element).map(|r| r.0),
                            Ok(parse_box_answer(tree)), "{}", text),
                        TaskType::NamedEntityRecognition => prop_assert_eq!(
                            answer.read_output::<Read<EntityOutput<'_>>>(element).map(|r| r.0),
                            Ok(parse_entity_answer(tree)), "{}", text),
                        _ => prop_assert_eq!(
                            answer.read_output::<Read<SegmentationOutput<'_>>>(element).map(|r| r.0),
                            Ok(parse_segmentation_answer(tree)), "{}", text),
                    },
                }
            }
        }
    }
}
